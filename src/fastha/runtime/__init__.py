"""The child processes' runtime: what runs the pure core against the kernel."""
