"""What the BFD side tells its consumers: a `bfd_instance` went Up or Down.

keepalived's BFD process writes a `bfd_event_t` (instance name, state, time sent) down a
pipe to the VRRP child and another to the checker child; this is the same message. It
is the one interface between the BFD session owner and `track_bfd` / `BFD_CHECK`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BfdStateChange:
    """`bfd_instance` `name` went Up (`up`) or left Up (Down, AdminDown, Init timeout).

    `sent_ns` is CLOCK_MONOTONIC when the BFD owner decided (the failover benchmarks
    measure the relay from it); `diag` is RFC 5880 §4.1's diagnostic code of the change.
    """

    name: str
    up: bool
    sent_ns: int = 0
    diag: int = 0
