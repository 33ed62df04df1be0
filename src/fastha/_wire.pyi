"""Type contract of the compiled fastha._wire module."""
