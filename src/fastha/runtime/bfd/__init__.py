"""The BFD child (`python -m fastha.runtime.child bfd`, "fastha: bfd"): every
`bfd_instance` as a session on one loop, its Up/Down relayed to the VRRP and checker
children (drivers/bfd_channel), as keepalived 2.2.7's BFD process does."""
