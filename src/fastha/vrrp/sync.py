"""vrrp_sync_group: members move together (keepalived vrrp_sync.c).

- A member whose Master_Down_Timer fires may only become master when every other
  member also wants MASTER (vrrp_sync_can_goto_master) - "prefer backup to avoid
  thrashing"; once one member is MASTER the rest are commanded to follow.
- A master member dropping to BACKUP takes the other masters with it.
- A member in FAULT by its own trackers/link pulls every member to FAULT; they leave
  FAULT together when all members are up again.
- Group notifies (notify_master/backup/fault of the group) are `GroupNotify` actions.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastha.vrrp.actions import Action, GroupNotify, StateChanged
from fastha.vrrp.events import Event, JoinSyncGroup, Startup, SyncFault, SyncGoto
from fastha.vrrp.fsm import Machine
from fastha.vrrp.machine_view import MachineView
from fastha.vrrp.states import State


class SyncGroup:
    __slots__ = ("members", "name", "state", "tracking_weight")

    def __init__(
        self, name: str, members: Mapping[str, Machine], *, tracking_weight: bool = False
    ) -> None:
        self.name = name
        self.members = dict(members)
        # sync_group_tracking_weight: without it, build members' TrackerSets with
        # ignore_weights=True (see `member_ignores_weights`).
        self.tracking_weight = tracking_weight
        self.state = State.INIT
        for m in self.members.values():
            m.handle(JoinSyncGroup(self._can_goto_master))

    @property
    def member_ignores_weights(self) -> bool:
        return not self.tracking_weight

    def _can_goto_master(self, member: MachineView) -> bool:
        if self.state == State.MASTER:
            return True
        return all(m.wantstate == State.MASTER for m in self.members.values() if m is not member)

    def handle(self, member: str, event: Event, now_ns: int) -> tuple[tuple[str, Action], ...]:
        """Feed `event` to one member; returns (member name, action) pairs for every
        member the group moved, plus ("", GroupNotify) for the group itself."""
        out: list[tuple[str, Action]] = []
        self._feed(member, event, now_ns, out)
        return tuple(out)

    def handle_all(self, event: Event, now_ns: int) -> tuple[tuple[str, Action], ...]:
        out: list[tuple[str, Action]] = []
        for name in self.members:
            self._feed(name, event, now_ns, out)
        return tuple(out)

    def _feed(self, name: str, event: Event, now_ns: int, out: list[tuple[str, Action]]) -> None:
        member = self.members[name]
        if isinstance(event, Startup) and self.state == State.INIT:
            # keepalived's vrrp_init_state: a group starting in BACKUP or FAULT sends its
            # notifies before any of its instances'.
            up = all(m.own_up for m in self.members.values())
            self._group_to(State.BACKUP if up else State.FAULT, out)
        if (
            not member.own_up
            and not member.sync_fault
            and any(not m.own_up for m in self.members.values() if m is not member)
        ):
            # keepalived's try_up_instance counts the group's members in fault
            # (`--sync->num_member_fault`): a member whose own fault clears stays in
            # FAULT while another member is still down; the group leaves FAULT once.
            # Held before the event, so it never passes through BACKUP and back.
            out.extend((name, a) for a in member.handle(SyncFault(True), now_ns))
        actions = member.handle(event, now_ns)
        out.extend((name, a) for a in actions)
        for a in actions:
            if isinstance(a, StateChanged):
                self._follow(name, a, now_ns, out)
        self._sync_faults(now_ns, out)

    def _group_to(self, state: State, out: list[tuple[str, Action]]) -> None:
        if self.state != state:
            self.state = state
            out.append(("", GroupNotify(self.name, state)))

    def _follow(
        self, name: str, change: StateChanged, now_ns: int, out: list[tuple[str, Action]]
    ) -> None:
        # keepalived's vrrp_sync_master/backup/fault: the group's state is set, the
        # other members follow, and then the group's notifies are sent.
        others = [(n, m) for n, m in self.members.items() if n != name]
        if change.new == State.MASTER and self.state != State.MASTER:
            self.state = State.MASTER
            for n, m in others:
                if m.state == State.BACKUP:
                    self._feed(n, SyncGoto(State.MASTER), now_ns, out)
            out.append(("", GroupNotify(self.name, State.MASTER)))
        elif change.new == State.BACKUP and change.old == State.MASTER:
            if self.state == State.MASTER:
                self.state = State.BACKUP
                for n, m in others:
                    if m.state == State.MASTER:
                        self._feed(n, SyncGoto(State.BACKUP), now_ns, out)
                out.append(("", GroupNotify(self.name, State.BACKUP)))
        elif change.new == State.FAULT:
            if self.state != State.FAULT:
                self.state = State.FAULT
                self._sync_faults(now_ns, out)
                out.append(("", GroupNotify(self.name, State.FAULT)))
        elif change.new == State.BACKUP and all(
            m.state == State.BACKUP for m in self.members.values()
        ):
            self._group_to(State.BACKUP, out)

    def _sync_faults(self, now_ns: int, out: list[tuple[str, Action]]) -> None:
        any_down = any(not m.own_up for m in self.members.values())
        for n, m in self.members.items():
            want = any_down and m.own_up
            if m.sync_fault != want:
                self._feed(n, SyncFault(want), now_ns, out)
