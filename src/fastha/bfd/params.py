"""A BFD session's configuration, as the session machine needs it (microseconds).

Built by the runtime from a `bfd_instance` (keepalived reads milliseconds with three
decimals and keeps microseconds; the defaults here are keepalived 2.2.7's, bfd.h).
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_RX_DEFAULT_US = 10_000
MIN_TX_DEFAULT_US = 10_000
IDLE_TX_DEFAULT_US = 1_000_000
MULTIPLIER_DEFAULT = 5
TTL_V4 = 255  # BFD_CONTROL_TTL, keepalived's default ttl for an IPv4 neighbour
HOPLIMIT_V6 = 64  # BFD_CONTROL_HOPLIMIT, keepalived's default hoplimit for IPv6
MAX_HOPS_NO_CHECK = 255  # max_hops 255: keepalived skips the GTSM check


@dataclass(frozen=True, slots=True)
class SessionParams:
    """`ttl` is what we send with and the GTSM reference: a packet is dropped when
    `max_hops + received_ttl < ttl` (keepalived's bfd_check_packet_ttl), unless
    `max_hops` is 255."""

    name: str
    min_rx_us: int = MIN_RX_DEFAULT_US
    min_tx_us: int = MIN_TX_DEFAULT_US
    idle_tx_us: int = IDLE_TX_DEFAULT_US
    multiplier: int = MULTIPLIER_DEFAULT
    passive: bool = False
    ttl: int = TTL_V4
    max_hops: int = 0

    def timers_differ(self, other: SessionParams) -> bool:
        """keepalived's bfd_cmp_timers: a reload changing these starts a Poll sequence."""
        return self.min_rx_us != other.min_rx_us or self.min_tx_us != other.min_tx_us
