"""Outputs of the BFD session machine: what the driver must do, in order.

`SendControl.payload` is the encoded 24-byte Control packet: send it to the neighbour
now. Timers are one-shot: `ArmTimer(kind, deadline_ns)` replaces any timer of that kind
and the driver reports it as `TimerExpired(kind, deadline_ns, now_ns)`.
`BfdStateChange` (fastha.bfd.events) is the record for the vrrp/checker pipes: route it
by the instance's `vrrp`/`checker` settings. The others are for the logs, in keepalived
2.2.7's wording (see each), and for the counters.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastha.bfd.events import BfdStateChange
from fastha.bfd.inputs import TimerKind
from fastha.bfd.states import Diag, State
from fastha.wire.bfd import BfdDropReason


@dataclass(frozen=True, slots=True)
class SendControl:
    payload: bytes


@dataclass(frozen=True, slots=True)
class ArmTimer:
    kind: TimerKind
    deadline_ns: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    kind: TimerKind


@dataclass(frozen=True, slots=True)
class StateChanged:
    """keepalived logs entering Up ("(%s) Entering Up state", LOG_INFO), leaving Up for
    Down ("(%s) Entering Down state (Local diagnostic - %s, Remote diagnostic - %s)",
    LOG_WARNING) and AdminDown ("(%s) Entering AdminDown state"); the other changes
    only at its extra-detail level. `old`/`new` say which."""

    old: State
    new: State
    local_diag: Diag
    remote_diag: int


@dataclass(frozen=True, slots=True)
class Expired:
    """Detection Time passed without a packet. keepalived, when the session was Up:
    "(%s) Expired after %u ms (%u usec overdue)" (after_ns // 1e6, overdue_ns // 1e3)."""

    after_ns: int
    overdue_ns: int
    was_up: bool


@dataclass(frozen=True, slots=True)
class DetectTimeChanged:
    """keepalived (LOG_INFO): "%*s Detection time is %u us (was %u us)" with the padding
    len(name) + 2."""

    detect_us: int
    was_us: int


@dataclass(frozen=True, slots=True)
class PollStarted:
    """keepalived (detail level): "(%s) Starting poll sequence"."""


@dataclass(frozen=True, slots=True)
class Dropped:
    """A packet for this session dropped by a session check (TTL, ADMIN_DOWN)."""

    reason: BfdDropReason


Action = (
    SendControl
    | ArmTimer
    | CancelTimer
    | StateChanged
    | Expired
    | DetectTimeChanged
    | PollStarted
    | Dropped
    | BfdStateChange
)
