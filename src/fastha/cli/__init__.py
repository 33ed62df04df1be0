"""Command-line interface: one click command per module."""
