"""The child processes' runtime: the VRRP and checker children and what they share."""
