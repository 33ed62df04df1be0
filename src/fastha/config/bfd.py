"""Which `bfd_instance`s each process runs with, as keepalived 2.2.7 decides it.

keepalived parses `bfd_instance` three times: the BFD process builds sessions
(bfd/bfd_parser.c, bfd_data.c) and drops a bad one; the VRRP and checker processes only
note the name (and, VRRP, the `weight`) of each instance routed to them by `vrrp` /
`checker`. So `track_bfd` may name an instance the BFD process refused (it then never
comes Up), but not one routed to the checker only. One place decides all three; the
validation prints what it says, and the BFD owner and the consumers run what it keeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastha.config.model_bfd import BfdInstance
from fastha.config.model_vrrp import Tracked
from fastha.config.source import Where, where_of

if TYPE_CHECKING:
    from fastha.config.model import Config

NAME_MAX = 32  # BFD_INAME_MAX, with its NUL


@dataclass(frozen=True, slots=True)
class Said:
    """What keepalived says about one instance (where, message)."""

    where: Where | None
    message: str


def sessions(instances: tuple[BfdInstance, ...]) -> tuple[list[BfdInstance], list[Said]]:
    """The instances the BFD process runs, and keepalived's messages for the others."""
    kept: list[BfdInstance] = []
    said: list[Said] = []
    names: set[str] = set()
    for b in instances:
        prefix = f"Configuration error: BFD instance {b.name}"
        if len(b.name) >= NAME_MAX:
            said.append(
                Said(
                    b.where,
                    f"{prefix} name too long (maximum length is {NAME_MAX - 1} characters)"
                    " - ignoring",
                )
            )
            continue
        if b.name in names:
            said.append(Said(b.where, f"{prefix} already configured - ignoring"))
            continue
        names.add(b.name)
        end = where_of(b, "}")  # bfd_end_handler: at the block's closing line
        nbr, src = b.neighbor_ip, b.source_ip
        if nbr is None:
            said.append(Said(end, f"{prefix} has no neighbor address set, disabling instance"))
            continue
        if src is not None and src.version != nbr.version:
            said.append(
                Said(
                    end,
                    f"{prefix} source address {src} and neighbor address {nbr} are not of"
                    " the same family, disabling instance",
                )
            )
            continue
        dup = next((o for o in kept if _same_addr(o, nbr, src)), None)
        if dup is not None:
            what = f"source/neighbor address {src}/{nbr}" if src else f"neighbor address {nbr}"
            said.append(Said(end, f"{prefix} has duplicate {what}, ignoring instance"))
            continue
        if b.max_hops & 0xFF > b.hops:  # bfd_end_handler compares the two uint8_t
            said.append(
                Said(
                    end,
                    f"BFD instance {b.name}: max_hops exceeds ttl/hoplimit - setting to"
                    " ttl/hoplimit",
                )
            )
        kept.append(b)
    return kept, said


def _same_addr(other: BfdInstance, nbr: object, src: object) -> bool:
    # bfd_data.c find_bfd_by_addr: same neighbour, and either side without a source
    # address, or the same source address.
    if other.neighbor_ip != nbr:
        return False
    return other.source_ip is None or src is None or other.source_ip == src


def tracked(
    instances: tuple[BfdInstance, ...], *, vrrp: bool
) -> tuple[dict[str, BfdInstance], list[Said]]:
    """The names the VRRP (`vrrp=True`) or checker process knows, by name, and its
    messages (vrrp_track.c alloc_vrrp_tracked_bfd, bfd_parser.c bfd_checker_handler):
    the first of a name wins; the VRRP side refuses a name too long."""
    known: dict[str, BfdInstance] = {}
    said: list[Said] = []
    for b in instances:
        if not (b.to_vrrp if vrrp else b.to_checker):
            continue
        if vrrp and len(b.name) >= NAME_MAX:
            said.append(Said(b.where, f"BFD name {b.name} too long"))
        elif b.name in known:
            said.append(Said(b.where, f"BFD {b.name} already specified"))
        else:
            known[b.name] = b
    return known, said


@dataclass(frozen=True, slots=True)
class TrackLine:
    """One track_bfd line as the VRRP child runs it: the weight and `reverse` resolved
    (the line's own, else the bfd_instance's `weight N [reverse]`, else 0)."""

    name: str
    weight: int
    reverse: bool
    where: Where | None = None


def track_lines(instances: tuple[BfdInstance, ...], refs: tuple[Tracked, ...]) -> list[TrackLine]:
    """vrrp_track.c alloc_track_bfd: lines naming a bfd the VRRP process knows, the
    first line per name, weights resolved. (A line with `weight` but no `reverse` takes
    the instance's `reverse`, as keepalived initialises it; `noreverse` reads as no word.)"""
    known = tracked(instances, vrrp=True)[0]
    out: list[TrackLine] = []
    seen: set[str] = set()
    for ref in refs:
        b = known.get(ref.name)
        if b is None or ref.name in seen:
            continue
        seen.add(ref.name)
        w = b.weight.value if b.weight is not None else 0
        r = b.weight.reverse if b.weight is not None else False
        weight = ref.weight if ref.weight is not None else w
        out.append(TrackLine(ref.name, weight, ref.reverse or r, ref.where))
    return out


def weighted_lines(config: Config, refs: tuple[Tracked, ...]) -> Iterator[tuple[TrackLine, int]]:
    """The weighted lines keepalived drops from an instance in a sync group without
    sync_group_tracking_weight, or from an address owner ("ignoring tracked bfd")."""
    for line in track_lines(config.bfd_instances, refs):
        if line.weight:
            yield line, line.weight
