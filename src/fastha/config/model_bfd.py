"""`bfd_instance` of the keepalived.conf model, and the `weight N [reverse]` it shares
with FILE_CHECK.

Apart from model_lvs (which re-exports both) so that the VRRP child, which reads BFD
instances for track_bfd, loads neither the LVS model nor its cost (~0.5 MB of RSS) when
no virtual server is configured: the snapshot it unpickles names this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastha.config.source import Positions, Where, no_positions
from fastha.config.values import IPAddress


@dataclass(frozen=True, slots=True, kw_only=True)
class Weight:
    """`weight N [reverse]` (FILE_CHECK)."""

    value: int
    reverse: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BfdInstance:
    """A `bfd_instance` as keepalived 2.2.7 reads it (bfd/bfd_parser.c, bfd_data.c)."""

    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    name: str
    neighbor_ip: IPAddress | None = None
    source_ip: IPAddress | None = None
    min_rx: float = 10.0  # ms, to the microsecond
    min_tx: float = 10.0  # ms
    idle_tx: float = 1000.0  # ms
    multiplier: int = 5
    passive: bool = False
    ttl: int | None = None  # `ttl` or `hoplimit` (one value); None: see `hops`
    max_hops: int = 0  # -1..255
    weight: Weight | None = None  # track_bfd's default weight (the VRRP side only)
    vrrp: bool = False  # `vrrp` / `checker` given; neither: both (see `to_vrrp`)
    checker: bool = False

    @property
    def hops(self) -> int:
        """The TTL / hop limit sent: `ttl`/`hoplimit`, else 255 for IPv4 and 64 for IPv6
        (bfd_end_handler: BFD_CONTROL_TTL, BFD_CONTROL_HOPLIMIT)."""
        if self.ttl is not None:
            return self.ttl
        return 64 if self.neighbor_ip is not None and self.neighbor_ip.version == 6 else 255

    @property
    def hoplimit(self) -> int:
        """`hoplimit` is `ttl` under another name (one variable in keepalived)."""
        return self.hops

    @property
    def max_hops_used(self) -> int:
        """max_hops as keepalived stores it (uint8_t: -1 is 255, UCHAR_MAX, "no check"),
        cut to `hops` when above it ("max_hops exceeds ttl/hoplimit - setting to ...")."""
        stored = self.max_hops & 0xFF
        return self.hops if stored > self.hops else stored

    @property
    def to_vrrp(self) -> bool:
        """Events go to the VRRP child: `vrrp` given, or neither `vrrp` nor `checker`."""
        return self.vrrp or not self.checker

    @property
    def to_checker(self) -> bool:
        return self.checker or not self.vrrp
