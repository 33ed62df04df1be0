"""Effective priority arithmetic, as keepalived's vrrp_track.c does it.

A weighted tracked item (interface, script, process) with multiplier m (-1 when
`reverse`) contributes `weight * m` when it is in the state its sign selects: a
positive weight counts while the item is OK, a negative weight while it has failed,
otherwise 0. A weight of 0 means "FAULT when failed" (or when OK, with `reverse`).
The total is clamped to 1..254; the address owner (255) never changes.
"""

from __future__ import annotations

PRIO_OWNER = 255
PRIO_MIN = 1
PRIO_MAX = PRIO_OWNER - 1
FILE_FAULT = -254  # keepalived track_file: a status of -254 means FAULT


def clamp_priority(total: int) -> int:
    # keepalived vrrp_set_effective_priority
    return PRIO_MIN if total < PRIO_MIN else min(total, PRIO_MAX)


def tracked_priority(base: int, current: int, total: int) -> tuple[int, bool]:
    """The effective priority after tracking's `total`, and whether a running
    Master_Down_Timer moves with it (it changed). keepalived vrrp_set_effective_priority:
    the owner's never moves from PRIO_OWNER; a reload that made us the owner sets it so
    (moving no timer)."""
    if base == PRIO_OWNER:
        return (PRIO_OWNER if total == PRIO_OWNER else current), False
    new = clamp_priority(total)
    return new, new != current


def weighted_contribution(ok: bool, weight: int, reverse: bool = False) -> int:
    if weight == 0 or ok != (weight > 0):
        return 0
    return -weight if reverse else weight


def weightless_fault(ok: bool, reverse: bool = False) -> bool:
    # keepalived: `IF_FLAGS_UP(ifp) != (weight_multiplier == 1)` -> FAULT
    return ok == reverse


def file_status(value: int, weight: int, reverse: bool = False) -> int:
    """keepalived update_track_file_status: the priority offset for a tracked file's
    value, or FILE_FAULT."""
    if weight == 0:
        return FILE_FAULT if (value != 0) != reverse else 0
    status = value * weight * (-1 if reverse else 1)
    return max(FILE_FAULT, min(status, 253))


def effective_priority(base: int, offsets: int) -> int:
    if base == PRIO_OWNER:
        return PRIO_OWNER
    return clamp_priority(base + offsets)
