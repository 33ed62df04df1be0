"""Helpers shared by the test suites (namespaces, prerequisites, oracles)."""
