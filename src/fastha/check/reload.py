"""Reload of the checker side: the new config's health model, seeded with the old one's
state (pure: no I/O, no clocks).

keepalived migrates what survives a reload (check_daemon.c / ipwrapper.c): a checker
that is identical in the old and new config keeps its state (up/down, retry count,
dynamic weight), so an unchanged real server neither flaps nor waits for a first probe;
a virtual server that is still configured keeps its quorum state and sorry server. New
checkers start as at start-up (up, or down with ``alpha``); new virtual servers have
their quorum evaluated as at start-up.

    new_health, actions, diff = carry(old_health, old_table, new_plan, new_table)
    diff.changed    # new indices of virtual servers whose IPVS entries may differ
    diff.removed    # old indices of virtual servers no longer configured
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastha.check.desired import DesiredTable
from fastha.check.health import Action, Health, Notify
from fastha.check.spec import Plan


@dataclass(slots=True)
class ReloadDiff:
    added: list[int] = field(default_factory=list)  # new indices
    removed: list[int] = field(default_factory=list)  # old indices
    changed: list[int] = field(default_factory=list)  # new indices, IPVS entries differ
    unchanged: list[int] = field(default_factory=list)  # new indices
    old_index: dict[int, int] = field(default_factory=dict)  # new index -> old index
    checks_kept: int = 0
    checks_new: int = 0
    checks_gone: int = 0

    def summary(self) -> str:
        n = len(self.added) + len(self.changed) + len(self.unchanged)
        return (
            f"{n} virtual servers ({len(self.added)} added, {len(self.removed)} removed, "
            f"{len(self.changed)} changed, {len(self.unchanged)} unchanged), "
            f"{self.checks_kept + self.checks_new} checks ({self.checks_kept} kept, "
            f"{self.checks_new} started, {self.checks_gone} stopped)"
        )


def carry(
    old: Health, old_table: DesiredTable, plan: Plan, table: DesiredTable
) -> tuple[Health, list[Action], ReloadDiff]:
    """The health model of ``plan`` with ``old``'s surviving state; the actions its
    quorum re-evaluation produced; which virtual servers changed."""
    new = Health(plan)
    diff = ReloadDiff()
    old_cid = {c: i for i, c in enumerate(old.plan.checks)}
    for cid, check in enumerate(plan.checks):
        oi = old_cid.get(check)
        if oi is None:
            diff.checks_new += 1
        else:
            new.checkers[cid] = old.checkers[oi]
            diff.checks_kept += 1
    diff.checks_gone = len(old.plan.checks) - diff.checks_kept
    for v in new.vss:  # as Health.__init__, from the carried checkers
        for r in v.servers:
            r.failed = sum(not new.checkers[c].up for c in r.plan.checks)
            r.alive = r.failed == 0
            r.weight = new._weight(r)

    old_by_name: dict[str, int] = {}
    for oi, ov in enumerate(old.vss):
        old_by_name.setdefault(ov.plan.name, oi)
    out: list[Action] = []
    for vi, v in enumerate(new.vss):
        oi = old_by_name.pop(v.plan.name, None)
        if oi is None:
            new.init_quorum(vi, out)  # as at start: quorum gained, quorum_up, VS UP
            diff.added.append(vi)
            continue
        diff.old_index[vi] = oi
        o = old.vss[oi]
        v.quorum_up = o.quorum_up
        v.sorry_active = o.sorry_active and v.plan.sorry_server is not None
        # keepalived clear_diff_rs: a live real server the new config drops goes down
        # (its notify_down, the FIFO's RS line), then the quorum follows.
        kept = {r.key for r in v.servers}
        for r in o.servers:
            if r.alive and r.key not in kept:
                out.append(Notify(r.plan.notify_down, "notify_down", vi, r.key))
        new._quorum(vi, out)
        same = table.vss[vi] == old_table.vss[oi] and new.desired(vi) == old.desired(oi)
        (diff.unchanged if same else diff.changed).append(vi)
    diff.removed = sorted(old_by_name.values())
    return new, out, diff
