"""Tracked items and their aggregation into an effective priority and a fault flag.

Pure classes: the driver runs scripts, watches links and reads files, then feeds the
results here. A tracker's state is shared by every instance that tracks it; the
per-instance weight and `reverse` live in the `TrackerSet` binding, as
`track_script { chk weight -20 reverse }` allows in keepalived.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fastha.vrrp.events import PriorityChanged, TrackFault
from fastha.vrrp.priority import (
    FILE_FAULT,
    PRIO_OWNER,
    effective_priority,
    file_status,
    weighted_contribution,
    weightless_fault,
)
from fastha.vrrp.proctrack import ProcessTracker


@dataclass(slots=True)
class ScriptTracker:
    """A vrrp_script's rise/fall state (keepalived vrrp_scheduler.c,
    vrrp_script_child_thread). `result` runs 0..rise+fall-1; OK when >= rise.

    Until its first exit the script is in its init state: one success is enough to be
    OK, and one failure makes it failed; `init_fail` starts it failed instead.
    A timed-out run is fed as a failure.
    """

    name: str
    weight: int = 0
    reverse: bool = False
    rise: int = 1
    fall: int = 1
    init_fail: bool = False
    interval_ns: int = 1_000_000_000  # for the driver
    timeout_ns: int = 0  # for the driver; 0 = interval
    result: int = field(init=False)
    pending_init: bool = field(init=False)

    def __post_init__(self) -> None:
        self.rise = max(1, self.rise)
        self.fall = max(1, self.fall)
        self.pending_init = not self.init_fail
        # keepalived vrrp_init_script
        self.result = 0 if self.init_fail else self.rise - 1

    @property
    def ok(self) -> bool:
        return not self.pending_init and self.result >= self.rise

    def feed(self, success: bool) -> bool:
        """Record one run's outcome; True if the OK/failed status (or init) changed."""
        top = self.rise + self.fall - 1
        changed = False
        if success:
            if self.result < self.rise - 1:
                self.result += 1
            elif self.result != top or self.pending_init:
                changed = self.result < self.rise or self.pending_init
                self.result = top
        elif self.result > self.rise:
            self.result -= 1
        else:
            changed = self.result == self.rise or self.pending_init
            self.result = 0
        self.pending_init = False
        return changed


@dataclass(slots=True)
class InterfaceTracker:
    """track_interface: up/down from netlink."""

    name: str
    up: bool = True

    def set(self, up: bool) -> bool:
        changed = up != self.up
        self.up = up
        return changed


@dataclass(slots=True)
class BfdTracker:
    """track_bfd: a bfd_instance's Up/Down as the BFD side last reported it. Down until
    the first Up event (keepalived alloc_vrrp_tracked_bfd: bfd_up = false)."""

    name: str
    up: bool = False

    def set(self, up: bool) -> bool:
        changed = up != self.up
        self.up = up
        return changed


_INT_PREFIX = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


@dataclass(slots=True)
class FileTracker:
    """track_file: an integer read from a file, multiplied by the binding's weight."""

    name: str
    weight: int = 1
    reverse: bool = False
    value: int = 0

    @staticmethod
    def parse(text: str) -> int:
        """C strtol(buf, NULL, 0) on the file's content; garbage reads as 0, and the
        value is clamped to -254..254 (keepalived process_track_file)."""
        m = _INT_PREFIX.match(text)
        if m is None:
            return 0
        sign, digits = m.groups()
        if digits.lower().startswith("0x"):
            v = int(digits, 16)
        elif digits.startswith("0") and len(digits) > 1:
            v = int(digits, 8)
        else:
            v = int(digits)
        v = -v if sign == "-" else v
        return max(-254, min(v, 254))

    def set_value(self, value: int) -> bool:
        value = max(-254, min(value, 254))
        changed = value != self.value
        self.value = value
        return changed

    def set_text(self, text: str) -> bool:
        return self.set_value(self.parse(text))


@dataclass(frozen=True, slots=True)
class Evaluation:
    priority: int
    faults: tuple[str, ...]

    @property
    def fault(self) -> bool:
        return bool(self.faults)


class TrackerSet:
    """One instance's tracked items -> effective priority and fault reasons.

    `ignore_weights` is for sync-group members without sync_group_tracking_weight:
    keepalived then treats every weight as 0, so any failure faults the member (and
    so the group).
    """

    __slots__ = (
        "_bfds",
        "_files",
        "_ifaces",
        "_last",
        "_procs",
        "_scripts",
        "base_priority",
        "ignore_weights",
    )

    def __init__(self, base_priority: int, *, ignore_weights: bool = False) -> None:
        self.base_priority = base_priority
        self.ignore_weights = ignore_weights
        self._scripts: list[tuple[ScriptTracker, int, bool]] = []
        self._ifaces: list[tuple[InterfaceTracker, int, bool]] = []
        self._files: list[tuple[FileTracker, int, bool]] = []
        self._procs: list[tuple[ProcessTracker, int, bool]] = []
        self._bfds: list[tuple[BfdTracker, int, bool]] = []
        self._last: Evaluation | None = None

    @staticmethod
    def _bind(items: list[Any], tracker: Any, weight: int | None, reverse: bool | None) -> None:
        """The instance's own weight (and its `reverse`) where its line gives one, else
        the tracked object's."""
        w = tracker.weight if weight is None else weight
        r = tracker.reverse if reverse is None else reverse
        items.append((tracker, w, r))

    def track_script(
        self, script: ScriptTracker, weight: int | None = None, reverse: bool | None = None
    ) -> None:
        self._bind(self._scripts, script, weight, reverse)

    def track_interface(
        self, iface: InterfaceTracker, weight: int = 0, reverse: bool = False
    ) -> None:
        self._ifaces.append((iface, weight, reverse))

    def track_file(
        self, tfile: FileTracker, weight: int | None = None, reverse: bool | None = None
    ) -> None:
        self._bind(self._files, tfile, weight, reverse)

    def track_process(
        self, proc: ProcessTracker, weight: int | None = None, reverse: bool | None = None
    ) -> None:
        self._bind(self._procs, proc, weight, reverse)

    def track_bfd(self, bfd: BfdTracker, weight: int, reverse: bool) -> None:
        """`weight` as the configuration resolved it: a sync group's member has its
        weighted lines dropped there (keepalived), so `ignore_weights` does not apply."""
        self._bfds.append((bfd, weight, reverse))

    def evaluate(self) -> Evaluation:
        offsets = 0
        faults: list[str] = []
        iw = self.ignore_weights
        # Up/down items: a link, a process quorum. (ok, weight, reverse, what).
        flags = [(i.up, w, r, f"interface {i.name}") for i, w, r in self._ifaces]
        flags += [(p.ok, w, r, f"process {p.name} ({p.count} running)") for p, w, r in self._procs]
        for ok, w, r, what in flags:
            w = 0 if iw else w
            if w == 0:
                if weightless_fault(ok, r):
                    faults.append(f"{what} {'up' if ok else 'down'}")
            else:
                offsets += weighted_contribution(ok, w, r)
        for bfd, w, r in self._bfds:  # vrrp_track.c initialise_track_bfd_state
            if w == 0:
                if weightless_fault(bfd.up, r):
                    faults.append(f"bfd {bfd.name} {'up' if bfd.up else 'down'}")
            else:
                offsets += weighted_contribution(bfd.up, w, r)
        for script, w, r in self._scripts:
            w = 0 if iw else w
            if w == 0:
                if script.pending_init:
                    faults.append(f"script {script.name} init")
                elif weightless_fault(script.ok, r):
                    faults.append(f"script {script.name} {'ok' if script.ok else 'failed'}")
            elif not script.pending_init:
                offsets += weighted_contribution(script.ok, w, r)
        for tfile, w, r in self._files:
            status = file_status(tfile.value, 0 if iw else w, r)
            if status == FILE_FAULT:
                faults.append(f"file {tfile.name} value {tfile.value}")
            else:
                offsets += status
        prio = (
            PRIO_OWNER
            if self.base_priority == PRIO_OWNER
            else effective_priority(self.base_priority, offsets)
        )
        return Evaluation(prio, tuple(faults))

    def events(self) -> tuple[PriorityChanged | TrackFault, ...]:
        """Events for the machine describing what changed since the last call
        (everything non-default on the first call)."""
        now = self.evaluate()
        last = self._last or Evaluation(self.base_priority, ())
        self._last = now
        out: list[PriorityChanged | TrackFault] = []
        if now.priority != last.priority:
            out.append(PriorityChanged(now.priority))
        if now.fault != last.fault:
            out.append(TrackFault(now.fault, "; ".join(now.faults) or "tracking recovered"))
        return tuple(out)
