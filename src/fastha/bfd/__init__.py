"""fastha.bfd: BFD (RFC 5880/5881), pure: the session state machine, its timers and the
events a session's state change sends to the VRRP and checker children."""
