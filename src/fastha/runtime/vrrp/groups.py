"""vrrp_sync_groups over the running instances, rebuilt at start and on reload."""

from __future__ import annotations

from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.from_config import GroupSpec
from fastha.vrrp.events import LeaveSyncGroup, SyncFault
from fastha.vrrp.states import State
from fastha.vrrp.sync import SyncGroup


def rebuild_groups(ctx: Context, specs: tuple[GroupSpec, ...]) -> None:
    """A group that existed keeps its state; members whose group changed are released
    or held as the group says."""
    old = ctx.groups
    for inst in ctx.instances.values():
        inst.group = None
        inst.machine.handle(LeaveSyncGroup())
    ctx.groups, ctx.group_notify = {}, {}
    for g in specs:
        members = {m: ctx.instances[m].machine for m in g.members if m in ctx.instances}
        group = SyncGroup(g.name, members, tracking_weight=g.tracking_weight)
        prev = old.get(g.name)
        if prev is not None and prev.members.keys() == members.keys():
            group.state = prev.state
        else:
            states = {m.state for m in members.values()}
            if len(states) == 1 and states <= {State.MASTER, State.BACKUP, State.FAULT}:
                group.state = next(iter(states))
        ctx.groups[g.name] = group
        ctx.group_notify[g.name] = g.notify
        for member in members:
            ctx.instances[member].group = group
    for inst in ctx.instances.values():
        m = inst.machine
        if inst.group is None:
            want = False
        else:
            want = m.own_up and any(not o.own_up for o in inst.group.members.values())
        if m.sync_fault != want:
            inst.feed(SyncFault(want))
