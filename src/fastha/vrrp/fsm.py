"""The sans-I/O VRRP state machine: `Machine.handle(event, now_ns) -> tuple[Action, ...]`.

RFC 5798 §6.4 (and RFC 3768 §6.4 for v2) with keepalived's behaviour where the RFC is
silent or keepalived differs (vrrp.c: vrrp_state_backup, vrrp_state_master_rx,
vrrp_state_leave_master, vrrp_state_leave_fault; vrrp_scheduler.c: vrrp_init_state).
Every state change goes through `_set_state`, which enforces `TRANSITIONS`.

The machine is the only writer of its state: its fields are read-only properties
(`MachineView`), and a reload, a sync group or an owner's priority reach it as events
like everything else (`tests/unit/test_vrrp_fsm_owner.py` holds every other module to
that). The decisions it applies live in pure modules named for their job: `election`
(what an advert means), `timers` (the timer book), `faults` (why it is down),
`defence` (ARP/ND claims), `garp` (announcement timers), `timing` (the arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastha.vrrp.actions import (
    Action,
    AddVips,
    Notify,
    NotifyKind,
    RemoveVips,
    SendAdvert,
    SendGratuitous,
    StateChanged,
)
from fastha.vrrp.counters import Counters
from fastha.vrrp.election import (
    BackupRx,
    KnownMaster,
    MasterRx,
    backup_rx,
    compare_addresses,
    master_rx,
)
from fastha.vrrp.events import (
    AdvertReceived,
    BfdMasterDown,
    Event,
    JoinSyncGroup,
    LeaveSyncGroup,
    LinkChanged,
    PriorityChanged,
    Reconfigure,
    Shutdown,
    Startup,
    SyncFault,
    SyncGoto,
    TimerExpired,
    TimerKind,
    TrackFault,
    VipClaimed,
    VipDeleted,
)
from fastha.vrrp.garp import burst, master_timers
from fastha.vrrp.machine_view import MachineView
from fastha.vrrp.params import PRIO_OWNER
from fastha.vrrp.priority import tracked_priority
from fastha.vrrp.states import IllegalTransition, State, check_transition
from fastha.vrrp.timers import moved_deadline
from fastha.vrrp.timing import adver_int_ns, state_master_wait_ns

__all__ = ["Machine", "compare_addresses"]

_NOTIFY = {
    State.MASTER: NotifyKind.MASTER,
    State.BACKUP: NotifyKind.BACKUP,
    State.FAULT: NotifyKind.FAULT,
    State.STOP: NotifyKind.STOP,
}
_GARP_TIMERS = (
    TimerKind.GARP_DELAY,
    TimerKind.GARP_REFRESH,
    TimerKind.GARP_LOWER_PRIO,
    TimerKind.GARP_DEFEND,
)
# Events that read no clock: `handle` takes them without `now_ns`.
_TIMELESS = (JoinSyncGroup, LeaveSyncGroup)
# The advert for each priority, built once: actions are frozen, so a master's every
# Adver_Timer tick hands out the same one. `Machine.advert_tick` is the runtime's path for
# that tick (100 a second per instance at advert_int 0.01): the answer and the counts of
# `handle(TimerExpired(ADVER))`, with no event, handler lookup or action allocated.
_ADVERT: tuple[tuple[SendAdvert], ...] = tuple((SendAdvert(p),) for p in range(256))


class Machine(MachineView):
    """One VRRP instance. Pure: feed it events and the current monotonic time; it is
    the only writer of the fields `MachineView` shows."""

    __slots__ = ()

    def handle(self, event: Event, now_ns: int | None = None) -> tuple[Action, ...]:
        """The actions for `event`, in order. `now_ns` may be left out only for the
        events that read no clock (joining or leaving a sync group)."""
        handler = _HANDLERS.get(type(event))
        if handler is None:
            raise TypeError(f"not a VRRP event: {event!r}")
        if now_ns is None and type(event) not in _TIMELESS:
            raise TypeError(f"{type(event).__name__} needs now_ns")
        out: list[Action] = []
        handler(self, event, now_ns or 0, out)  # 0: read by none of the timeless
        return tuple(out)

    def advert_tick(self, deadline_ns: int) -> tuple[SendAdvert, ...]:
        """`handle(TimerExpired(ADVER, deadline_ns), now)` without allocating (above)."""
        if not self._timers.fired(TimerKind.ADVER, deadline_ns):
            return ()
        return _counted_advert(self._counters, self._effective_priority)

    # -- plumbing (timers: `self._timers.arm/cancel` record and emit the action) -------

    def _set_state(self, new: State, reason: str, out: list[Action]) -> None:
        check_transition(self._state, new)
        out.append(StateChanged(self._state, new, reason))
        self._state = new
        self._master = self._master._replace(hold_until_ns=None)  # preempt_delay: one stay

    def _notify(self, out: list[Action]) -> None:
        out.append(Notify(_NOTIFY[self._state], self._effective_priority))

    # -- transitions ------------------------------------------------------------------

    def _enter_backup(self, now_ns: int, reason: str, down_ns: int, out: list[Action]) -> None:
        self._set_state(State.BACKUP, reason, out)
        self._timers.arm(TimerKind.MASTER_DOWN, now_ns + down_ns, 0, out)
        self._notify(out)

    def _become_master(self, now_ns: int, reason: str, out: list[Action]) -> None:
        p = self._params
        self._set_state(State.MASTER, reason, out)
        self._wantstate = State.MASTER
        self._counters.become_master += 1
        self._master = KnownMaster.ourselves(p, self._effective_priority)
        self._timers.cancel(TimerKind.MASTER_DOWN, out)
        # keepalived vrrp_state_master_tx: advert first, so the old master drops the
        # VIPs before our gratuitous ARPs go out (RFC 5798 §6.4.2).
        out += _counted_advert(self._counters, self._effective_priority)
        self._timers.restart(TimerKind.ADVER, now_ns, adver_int_ns(p.adver_int_cs), out)
        out.append(AddVips(p.accept_mode))
        self._vips_set = True
        if p.garp_master_repeat:
            out.append(SendGratuitous(p.garp_master_repeat))
        for kind, delay, interval in master_timers(p):
            self._timers.arm(kind, now_ns + delay, interval, out)
        self._notify(out)

    def _release_master(self, send_prio0: bool, out: list[Action]) -> None:
        for kind in (TimerKind.ADVER, *_GARP_TIMERS):
            self._timers.cancel(kind, out)
        self._defence.clear()
        if send_prio0:
            # RFC 5798 §6.4.3 / keepalived: tell backups to take over after Skew_Time.
            out += _counted_advert(self._counters, 0)
        out.append(RemoveVips())
        self._vips_set = False
        self._counters.release_master += 1

    def _leave_master(self, now: int, why: str, down: int, prio0: bool, out: list[Action]) -> None:
        """MASTER -> BACKUP, the Master_Down_Timer at `down` ns from now."""
        self._wantstate = State.BACKUP
        self._release_master(prio0, out)
        self._enter_backup(now, why, down, out)

    def _enter_fault(self, now_ns: int, reason: str, out: list[Action]) -> None:
        if self._state == State.MASTER:
            self._release_master(True, out)
        else:
            self._timers.cancel_all(out)
        self._set_state(State.FAULT, reason, out)
        self._notify(out)

    def _leave_fault(self, now_ns: int, reason: str, out: list[Action]) -> None:
        # keepalived vrrp_state_leave_fault / try_up_instance: master_adver_int is
        # reset to ours; only the owner goes straight to MASTER.
        self._master = self._master._replace(adver_int_cs=self._params.adver_int_cs)
        if self._base_priority == PRIO_OWNER and self._gate_open():
            self._become_master(now_ns, reason, out)
        else:
            self._wantstate = State.BACKUP
            self._enter_backup(now_ns, reason, self.down_interval_ns, out)

    # -- event handlers ---------------------------------------------------------------

    def _on_fault(
        self, ev: LinkChanged | TrackFault | SyncFault, now_ns: int, out: list[Action]
    ) -> None:
        self._faults, reason = self._faults.after(ev)
        if not self._started or self._state == State.STOP:
            return
        up = self.is_up
        if not up and self._state in (State.BACKUP, State.MASTER):
            self._enter_fault(now_ns, reason, out)
        elif up and self._state == State.FAULT:
            self._leave_fault(now_ns, reason, out)

    def _on_gate(self, ev: JoinSyncGroup | LeaveSyncGroup, now_ns: int, out: list[Action]) -> None:
        self._gate = ev.can_goto_master if isinstance(ev, JoinSyncGroup) else None

    def _on_startup(self, _: Startup, now_ns: int, out: list[Action]) -> None:
        if self._state != State.INIT or self._started:
            raise IllegalTransition(self._state, None, "Startup when already started")
        self._started = True
        p = self._params
        if not self.is_up:
            self._enter_fault(now_ns, "startup with a fault", out)
        elif self._base_priority == PRIO_OWNER and self._gate_open():
            # RFC 5798 §6.4.1: Priority 255 -> send an advert and become Master.
            self._become_master(now_ns, "address owner", out)
        elif p.initial_state == State.MASTER:
            down = state_master_wait_ns(p.version, self._master.adver_int_cs)
            self._enter_backup(now_ns, "startup (state MASTER)", down, out)
        else:
            self._enter_backup(now_ns, "startup", self.down_interval_ns, out)

    def _on_shutdown(self, _: Shutdown, now_ns: int, out: list[Action]) -> None:
        if self._state == State.STOP:
            return
        self._timers.cancel_all(out)
        if self._state == State.MASTER:
            out += _counted_advert(self._counters, 0)
            out.append(RemoveVips())
            self._vips_set = False
        self._set_state(State.STOP, "shutdown", out)
        self._notify(out)

    def _on_reconfigure(self, ev: Reconfigure, now_ns: int, out: list[Action]) -> None:
        old = self._params
        p, self._warnings = ev.params.normalised()
        self._params = p
        if p.priority != old.priority:
            self._base_priority = p.priority
        master = self._state == State.MASTER
        if p.adver_int_cs != old.adver_int_cs and (master or p.version == 2):
            # RFC 5798 §6.4.3 (a master's own interval, a new grid); v2 peers agree.
            self._master = self._master._replace(adver_int_cs=p.adver_int_cs)
            if master:
                self._timers.restart(TimerKind.ADVER, now_ns, adver_int_ns(p.adver_int_cs), out)

    def _on_timer(self, ev: TimerExpired, now_ns: int, out: list[Action]) -> None:
        if not self._timers.fired(ev.kind, ev.deadline_ns):
            return  # stale: cancelled or re-armed since
        if ev.kind == TimerKind.ADVER:  # as `advert_tick`
            out += _counted_advert(self._counters, self._effective_priority)
        elif ev.kind == TimerKind.MASTER_DOWN:
            # RFC 5798 §6.4.2: Master_Down_Timer fired -> become Master; keepalived
            # vrrp_sync_can_goto_master: a sync group member waits for the rest of it.
            self._wantstate = State.MASTER
            if self._gate_open():
                self._become_master(now_ns, "master down timer expired", out)
            else:
                self._timers.arm(TimerKind.MASTER_DOWN, now_ns + self.down_interval_ns, 0, out)
        else:  # an announcement; a defence one announces only the claimed VIPs
            defend = ev.kind == TimerKind.GARP_DEFEND
            out.append(
                SendGratuitous(burst(self._params, ev.kind), self._defence.take() if defend else ())
            )

    def _on_vip_claimed(self, ev: VipClaimed, now_ns: int, out: list[Action]) -> None:
        # Another MAC announced one of our VIPs: see `defence` for when we answer.
        if self._state != State.MASTER:
            return
        self._counters.vip_claimed += 1
        interval = adver_int_ns(self._params.adver_int_cs)
        if not self._defence.claim(ev.address, ev.mac, now_ns, interval):
            self._counters.vip_claim_ignored += 1
        elif TimerKind.GARP_DEFEND not in self._timers:
            self._timers.arm(TimerKind.GARP_DEFEND, now_ns + interval, 0, out)

    def _on_vip_deleted(self, _: VipDeleted, now_ns: int, out: list[Action]) -> None:
        # keepalived set_vrrp_backup: release as a stop does (priority 0, VIPs removed),
        # then BACKUP with Master_Down_Timer = Skew_Time: unless another router takes
        # over, this one is master again at once and puts the VIPs back.
        if self._state != State.MASTER:
            return
        self._leave_master(now_ns, "VIP deleted", self.skew_ns, True, out)

    def _on_sync_goto(self, ev: SyncGoto, now_ns: int, out: list[Action]) -> None:
        if ev.state == State.MASTER and self._state == State.BACKUP:
            self._become_master(now_ns, "sync group", out)
        elif ev.state == State.BACKUP and self._state == State.MASTER:
            self._leave_master(now_ns, "sync group", self.down_interval_ns, False, out)

    def _on_priority(self, ev: PriorityChanged, now_ns: int, out: list[Action]) -> None:
        prio = self._effective_priority
        new, moves = tracked_priority(self._base_priority, prio, ev.priority)
        old_down = self.down_interval_ns
        self._effective_priority = new
        deadline = self._timers.deadline(TimerKind.MASTER_DOWN)
        if moves and self._state == State.BACKUP and deadline is not None:
            moved = moved_deadline(deadline, now_ns, old_down, self.down_interval_ns)
            if moved != deadline:
                self._timers.arm(TimerKind.MASTER_DOWN, moved, 0, out)

    def _on_advert(self, ev: AdvertReceived, now_ns: int, out: list[Action]) -> None:
        if self._state not in (State.BACKUP, State.MASTER):
            return
        self._counters.advert_rcvd += 1
        if ev.priority == 0:
            self._counters.pri_zero_rcvd += 1
        if self._state == State.MASTER:
            self._master_rx(ev, now_ns, out)
            return
        # A backup (see `election.backup_rx`): a preempting one leaves the
        # Master_Down_Timer running, so it becomes master when the timer fires.
        prio = self._effective_priority
        verdict, self._master = backup_rx(self._params, prio, self._master, ev, now_ns)
        self._lower_ignored = verdict is BackupRx.PREEMPT
        if verdict is BackupRx.ACCEPT:
            self._wantstate = State.BACKUP
            self._timers.arm(TimerKind.MASTER_DOWN, now_ns + self.down_interval_ns, 0, out)
        elif verdict is BackupRx.LEAVING:
            self._timers.arm(TimerKind.MASTER_DOWN, now_ns + self.skew_ns, 0, out)

    def _master_rx(self, ev: AdvertReceived, now_ns: int, out: list[Action]) -> None:
        p = self._params
        verdict, answer = master_rx(p, self._effective_priority, ev.src, ev.priority)
        if answer:
            out += _counted_advert(self._counters, self._effective_priority)
        if verdict == MasterRx.PRIO_ZERO:
            self._timers.restart(TimerKind.ADVER, now_ns, adver_int_ns(p.adver_int_cs), out)
        elif verdict in (MasterRx.HIGHER, MasterRx.OWNER_CONFLICT):
            if verdict == MasterRx.OWNER_CONFLICT:
                self._base_priority = self._effective_priority = PRIO_OWNER - 1
            self._master = self._master.followed(p, ev)
            self._leave_master(now_ns, "higher priority advert", self.down_interval_ns, False, out)
        elif verdict == MasterRx.LOWER:
            # The RFC says ignore; keepalived re-asserts with an advert unless
            # lower_prio_no_advert, and refreshes ARP.
            if not p.lower_prio_no_advert:
                out += _counted_advert(self._counters, self._effective_priority)
            if p.garp_lower_prio_repeat:
                out.append(SendGratuitous(p.garp_lower_prio_repeat))
                if delay := p.garp_lower_prio_delay_ns:
                    self._timers.arm(TimerKind.GARP_LOWER_PRIO, now_ns + delay, 0, out)
            out.append(Notify(NotifyKind.MASTER_RX_LOWER_PRI, self._effective_priority))


def _counted_advert(counters: Counters, priority: int) -> tuple[SendAdvert]:
    """The advert for `priority` (prebuilt for 0..255), counted as sent."""
    counters.advert_sent += 1
    if priority == 0:
        counters.pri_zero_sent += 1
    return _ADVERT[priority] if 0 <= priority <= 255 else (SendAdvert(priority),)


def _on_bfd_master_down(m: Machine, ev: BfdMasterDown, now_ns: int, out: list[Action]) -> None:
    # fastha's extension: a BACKUP's Master_Down_Timer expires now (as if it had fired).
    deadline = m.armed_timers.get(TimerKind.MASTER_DOWN)
    if m.state == State.BACKUP and deadline is not None:
        m._on_timer(TimerExpired(TimerKind.MASTER_DOWN, deadline[0]), now_ns, out)


_HANDLERS: dict[type, Callable[[Machine, Any, int, list[Action]], None]] = {
    AdvertReceived: Machine._on_advert,
    TimerExpired: Machine._on_timer,
    PriorityChanged: Machine._on_priority,
    LinkChanged: Machine._on_fault,
    TrackFault: Machine._on_fault,
    BfdMasterDown: _on_bfd_master_down,
    SyncFault: Machine._on_fault,
    SyncGoto: Machine._on_sync_goto,
    Startup: Machine._on_startup,
    Shutdown: Machine._on_shutdown,
    VipClaimed: Machine._on_vip_claimed,
    VipDeleted: Machine._on_vip_deleted,
    Reconfigure: Machine._on_reconfigure,
    JoinSyncGroup: Machine._on_gate,
    LeaveSyncGroup: Machine._on_gate,
}
