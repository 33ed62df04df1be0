"""Tracked objects (track_interface, track_script, track_file, track_process, track_bfd)
shared by the instances that use them, each instance's TrackerSet, and the events a
change sends."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastha.runtime.vrrp.from_config import VrrpSpec
from fastha.vrrp.events import PriorityChanged, TrackFault
from fastha.vrrp.params import PRIO_OWNER
from fastha.vrrp.proctrack import ProcessTracker
from fastha.vrrp.trackers import (
    BfdTracker,
    Evaluation,
    FileTracker,
    InterfaceTracker,
    ScriptTracker,
    TrackerSet,
)
from fastha.wire.timer import monotonic_ns

if TYPE_CHECKING:
    from fastha.runtime.vrrp.context import Context
    from fastha.runtime.vrrp.instance import Instance

log = logging.getLogger("fastha.vrrp")


@dataclass(slots=True)
class Tracking:
    """Shared tracked objects and the instances that use each."""

    interfaces: dict[str, InterfaceTracker] = field(default_factory=dict)
    scripts: dict[str, ScriptTracker] = field(default_factory=dict)
    files: dict[str, FileTracker] = field(default_factory=dict)
    processes: dict[str, ProcessTracker] = field(default_factory=dict)
    bfds: dict[str, BfdTracker] = field(default_factory=dict)
    users: dict[str, list[Instance]] = field(default_factory=dict)  # "kind:name" -> users
    sets: dict[str, TrackerSet] = field(default_factory=dict)  # instance name -> set

    def changed(self, key: str) -> None:
        for inst in self.users.get(key, ()):
            for event in self.sets[inst.name].events():
                if isinstance(event, PriorityChanged):
                    inst.change_priority(event.priority)
                else:
                    inst.feed(event)


class Trackers:
    """The tracking in force: rebuilt at start and on every reload."""

    def __init__(self) -> None:
        self.now = Tracking()

    def changed(self, key: str) -> None:
        self.now.changed(key)

    def rebuild(self, ctx: Context, spec: VrrpSpec, old_spec: VrrpSpec | None) -> Tracking:
        """Tracked objects and every instance's TrackerSet, from `spec`; returns the
        tracking it replaces.

        On reload (`old_spec` given) a tracker whose definition did not change is reused
        with its state (a script's rise/fall count, a file's value, a link's state), so
        an unchanged instance evaluates exactly as before."""
        old = self.now
        t = Tracking()
        group_of = {m: g.name for g in spec.groups for m in g.members}
        for inst in ctx.instances.values():
            group = ctx.groups.get(group_of.get(inst.name, ""))
            ignore = group.member_ignores_weights if group else False
            _track(ctx, spec, t, old if old_spec is not None else None, old_spec, inst, ignore)
        self.now = t
        return old


def _track(
    ctx: Context,
    vspec: VrrpSpec,
    t: Tracking,
    old: Tracking | None,
    old_spec: VrrpSpec | None,
    inst: Instance,
    ignore_weights: bool,
) -> None:
    spec = inst.spec
    ts = TrackerSet(spec.params.priority, ignore_weights=ignore_weights)
    t.sets[inst.name] = ts
    links = {ls.ifname: ls.up for ls in ctx.netlink.links.values()}
    for name, weight, reverse in spec.track_interfaces:
        iface = t.interfaces.get(name) or (old.interfaces.get(name) if old else None)
        if iface is None:
            iface = InterfaceTracker(name, links.get(name, True))
        t.interfaces[name] = iface
        ts.track_interface(iface, weight, reverse)
        t.users.setdefault(f"if:{name}", []).append(inst)
    # A bfd keeps its Up/Down across a reload by name (vrrp.c clear_diff_bfd).
    for name, weight, reverse in spec.track_bfds:
        tbfd = t.bfds.get(name) or (old.bfds.get(name) if old else None) or BfdTracker(name)
        t.bfds[name] = tbfd
        ts.track_bfd(tbfd, weight, reverse)
        t.users.setdefault(f"bfd:{name}", []).append(inst)
    # Per kind: user key, keyword, the instance's lines, definitions now and before
    # the reload, trackers now and before, how to make one, how the set binds it.
    kinds: tuple[tuple[Any, ...], ...] = (
        (
            "script",
            "track_script",
            spec.track_scripts,
            vspec.scripts,
            old_spec.scripts if old_spec else None,
            t.scripts,
            old.scripts if old else None,
            lambda _, s: ScriptTracker(s.name, s.weight, s.reverse, s.rise, s.fall, s.init_fail),
            ts.track_script,
        ),
        (
            "file",
            "track_file",
            spec.track_files,
            vspec.track_files,
            old_spec.track_files if old_spec else None,
            t.files,
            old.files if old else None,
            lambda name, f: FileTracker(name, f[1], f[2]),
            ts.track_file,
        ),
        (
            "proc",
            "track_process",
            spec.track_processes,
            vspec.track_processes,
            old_spec.track_processes if old_spec else None,
            t.processes,
            old.processes if old else None,
            lambda _, p: p.tracker(),
            ts.track_process,
        ),
    )
    for key, keyword, tracked_items, defs, old_defs, now, before, make, bind in kinds:
        for tracked in tracked_items:
            d = defs.get(tracked.name)
            if d is None:
                log.warning(
                    "(%s) %s %s not found, ignoring",
                    inst.name,
                    keyword,
                    tracked.name,
                )
                continue
            # One tracker per definition; a reload keeps it (and its state) when the
            # definition did not change.
            tracker = now.get(tracked.name)
            if tracker is None and old_defs is not None and old_defs.get(tracked.name) == d:
                tracker = before.get(tracked.name) if before is not None else None
            if tracker is None:
                tracker = make(tracked.name, d)
            now[tracked.name] = tracker
            bind(tracker, tracked.weight, tracked.reverse if tracked.weight is not None else None)
            t.users.setdefault(f"{key}:{tracked.name}", []).append(inst)


def retrack(inst: Instance, before: Evaluation | None, now: Evaluation) -> None:
    """Reload: an instance kept running gets what its new evaluation changed."""
    m = inst.machine
    if m.base_priority == PRIO_OWNER:  # the owner's priority never moves
        for action in m.handle(PriorityChanged(PRIO_OWNER), monotonic_ns()):
            inst.execute(action)
    elif now.priority != m.effective_priority:
        inst.change_priority(now.priority)
    if (before.fault if before is not None else False) != now.fault:
        inst.feed(TrackFault(now.fault, "; ".join(now.faults) or "tracking recovered"))
