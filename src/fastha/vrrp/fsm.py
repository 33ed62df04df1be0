"""The sans-I/O VRRP state machine: `Machine.handle(event, now_ns) -> tuple[Action, ...]`.

RFC 5798 §6.4 (and RFC 3768 §6.4 for v2) with keepalived's behaviour where the RFC is
silent or keepalived differs (vrrp.c: vrrp_state_backup, vrrp_state_master_rx,
vrrp_state_leave_master, vrrp_state_leave_fault; vrrp_scheduler.c: vrrp_init_state).
Every state change goes through `_set_state`, which enforces `TRANSITIONS`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from fastha.vrrp.actions import (
    Action,
    AddVips,
    ArmTimer,
    CancelTimer,
    Notify,
    NotifyKind,
    RemoveVips,
    SendAdvert,
    SendGratuitous,
    StateChanged,
)
from fastha.vrrp.counters import Counters
from fastha.vrrp.events import (
    AdvertReceived,
    Event,
    LinkChanged,
    PriorityChanged,
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
from fastha.vrrp.params import PRIO_OWNER, InstanceParams
from fastha.vrrp.priority import clamp_priority
from fastha.vrrp.states import IllegalTransition, State, check_transition
from fastha.vrrp.timing import (
    adver_int_ns,
    master_down_interval_ns,
    skew_time_min_ns,
    skew_time_ns,
)

_NOTIFY = {
    State.MASTER: NotifyKind.MASTER,
    State.BACKUP: NotifyKind.BACKUP,
    State.FAULT: NotifyKind.FAULT,
    State.STOP: NotifyKind.STOP,
}
# ARP/ND defence (_on_vip_claimed): the longest back-off for one claiming MAC, in advert
# intervals, and how many claiming MACs are remembered.
CLAIM_BACKOFF_MAX = 64
CLAIMERS_MAX = 256

_GARP_TIMERS = (
    TimerKind.GARP_DELAY,
    TimerKind.GARP_REFRESH,
    TimerKind.GARP_LOWER_PRIO,
    TimerKind.GARP_DEFEND,
)


def compare_addresses(theirs: str, ours: str | None) -> int:
    """Sign of (theirs - ours) as numbers (RFC 5798 §6.4.3 tie-break); 0 when not
    comparable (unknown or different families), as keepalived's vrrp_saddr_cmp does."""
    if ours is None:
        return 0
    try:
        a = ipaddress.ip_address(theirs)
        b = ipaddress.ip_address(ours)
    except ValueError:
        return 0
    if a.version != b.version:
        return 0
    return (a > b) - (a < b)


class Machine:
    """One VRRP instance. Pure: feed it events and the current monotonic time."""

    __slots__ = (
        "_armed",
        "_claimers",
        "_defend",
        "_link_up",
        "_preempt_until_ns",
        "_started",
        "_sync_fault",
        "_track_fault",
        "base_priority",
        "counters",
        "effective_priority",
        "master_address",
        "master_adver_int_cs",
        "master_priority",
        "params",
        "state",
        "sync_gate",
        "vips_set",
        "wantstate",
        "warnings",
    )

    def __init__(self, params: InstanceParams) -> None:
        p, warnings = params.normalised()
        self.params = p
        self.warnings = warnings
        self.state = State.INIT
        # keepalived's wantstate: where we would be disregarding any sync group.
        self.wantstate = p.initial_state
        self.base_priority = p.priority
        self.effective_priority = p.priority
        self.master_adver_int_cs = p.adver_int_cs
        self.master_address: str | None = None
        self.master_priority = 0
        self.counters = Counters()
        self.vips_set = False
        # kind -> (deadline_ns or grid anchor, interval_ns; 0 = one-shot)
        self._armed: dict[TimerKind, tuple[int, int]] = {}
        # ARP/ND defence: the claimed VIPs the pending GARP_DEFEND answers, and per
        # claiming MAC (until_ns, backoff_ns): no new answer for it before until_ns.
        self._defend: set[str] = set()
        self._claimers: dict[str, tuple[int, int]] = {}
        self._preempt_until_ns: int | None = None
        self._started = False
        self._link_up = True
        self._track_fault = False
        self._sync_fault = False
        # Set by a SyncGroup: may this member become master now?
        self.sync_gate: Callable[[Machine], bool] | None = None

    # -- public read-only views -------------------------------------------------

    @property
    def armed_timers(self) -> dict[TimerKind, tuple[int, int]]:
        return dict(self._armed)

    @property
    def own_up(self) -> bool:
        """Up by the instance's own interface and trackers (ignoring its sync group)."""
        return (self._link_up or self.params.dont_track_primary) and not self._track_fault

    @property
    def sync_fault(self) -> bool:
        """Held in FAULT by its sync group (another member is down)."""
        return self._sync_fault

    @property
    def is_up(self) -> bool:
        return self.own_up and not self._sync_fault

    @property
    def down_interval_ns(self) -> int:
        p = self.params
        return master_down_interval_ns(
            p.version, self.effective_priority, self.master_adver_int_cs, p.down_timer_adverts
        )

    # -- entry point --------------------------------------------------------------

    def handle(self, event: Event, now_ns: int) -> tuple[Action, ...]:
        out: list[Action] = []
        match event:
            case AdvertReceived():
                self._on_advert(event, now_ns, out)
            case TimerExpired():
                self._on_timer(event, now_ns, out)
            case PriorityChanged():
                self._on_priority(event.priority, now_ns, out)
            case LinkChanged():
                self._link_up = event.up
                self._reevaluate(now_ns, "interface up" if event.up else "interface down", out)
            case TrackFault():
                self._track_fault = event.fault
                self._reevaluate(now_ns, event.reason or "tracking", out)
            case SyncFault():
                self._sync_fault = event.fault
                self._reevaluate(now_ns, "sync group", out)
            case SyncGoto():
                self._on_sync_goto(event.state, now_ns, out)
            case Startup():
                self._on_startup(now_ns, out)
            case Shutdown():
                self._on_shutdown(out)
            case VipClaimed():
                self._on_vip_claimed(event.address, event.mac, now_ns, out)
            case VipDeleted():
                self._on_vip_deleted(now_ns, out)
            case _:
                raise TypeError(f"not a VRRP event: {event!r}")
        return tuple(out)

    # -- plumbing -------------------------------------------------------------------

    def _set_state(self, new: State, reason: str, out: list[Action]) -> None:
        check_transition(self.state, new)
        out.append(StateChanged(self.state, new, reason))
        self.state = new

    def _notify(self, out: list[Action]) -> None:
        out.append(Notify(_NOTIFY[self.state], self.effective_priority))

    def _arm(self, kind: TimerKind, deadline_ns: int, interval_ns: int, out: list[Action]) -> None:
        self._armed[kind] = (deadline_ns, interval_ns)
        out.append(ArmTimer(kind, deadline_ns, interval_ns))

    def _cancel(self, kind: TimerKind, out: list[Action]) -> None:
        if self._armed.pop(kind, None) is not None:
            out.append(CancelTimer(kind))

    def _cancel_all(self, out: list[Action]) -> None:
        for kind in list(self._armed):
            self._cancel(kind, out)

    def _timer_is_current(self, kind: TimerKind, deadline_ns: int) -> bool:
        armed = self._armed.get(kind)
        if armed is None:
            return False
        anchor, interval = armed
        if interval == 0:
            return deadline_ns == anchor
        return deadline_ns >= anchor and (deadline_ns - anchor) % interval == 0

    def _skew_ns(self) -> int:
        return skew_time_ns(self.params.version, self.effective_priority, self.master_adver_int_cs)

    def _send_advert(self, priority: int, out: list[Action]) -> None:
        out.append(SendAdvert(priority))
        self.counters.advert_sent += 1
        if priority == 0:
            self.counters.pri_zero_sent += 1

    # -- transitions ------------------------------------------------------------------

    def _enter_backup(self, now_ns: int, reason: str, down_ns: int, out: list[Action]) -> None:
        self._set_state(State.BACKUP, reason, out)
        self._preempt_until_ns = None
        self._arm(TimerKind.MASTER_DOWN, now_ns + down_ns, 0, out)
        self._notify(out)

    def _become_master(self, now_ns: int, reason: str, out: list[Action]) -> None:
        p = self.params
        self._set_state(State.MASTER, reason, out)
        self.wantstate = State.MASTER
        self.counters.become_master += 1
        # A new master advertises its own configured interval (RFC 5798 §6.4.3).
        self.master_adver_int_cs = p.adver_int_cs
        self.master_address = p.primary_address
        self.master_priority = self.effective_priority
        self._preempt_until_ns = None
        self._cancel(TimerKind.MASTER_DOWN, out)
        # keepalived vrrp_state_master_tx: advert first, so the old master drops the
        # VIPs before our gratuitous ARPs go out (RFC 5798 §6.4.2).
        self._send_advert(self.effective_priority, out)
        interval = adver_int_ns(p.adver_int_cs)
        self._arm(TimerKind.ADVER, now_ns + interval, interval, out)
        out.append(AddVips(p.accept_mode))
        self.vips_set = True
        if p.garp_master_repeat:
            out.append(SendGratuitous(p.garp_master_repeat))
        if p.garp_master_delay_ns:
            self._arm(TimerKind.GARP_DELAY, now_ns + p.garp_master_delay_ns, 0, out)
        if p.garp_master_refresh_ns:
            self._arm(
                TimerKind.GARP_REFRESH,
                now_ns + p.garp_master_refresh_ns,
                p.garp_master_refresh_ns,
                out,
            )
        self._notify(out)

    def _leave_master(
        self,
        now_ns: int,
        new: State,
        reason: str,
        send_prio0: bool,
        out: list[Action],
        down_ns: int | None = None,
    ) -> None:
        self._cancel(TimerKind.ADVER, out)
        for kind in _GARP_TIMERS:
            self._cancel(kind, out)
        self._defend.clear()
        self._claimers.clear()
        if send_prio0:
            # RFC 5798 §6.4.3 / keepalived: tell backups to take over after Skew_Time.
            self._send_advert(0, out)
        out.append(RemoveVips())
        self.vips_set = False
        self.counters.release_master += 1
        if new == State.BACKUP:
            down = self.down_interval_ns if down_ns is None else down_ns
            self._enter_backup(now_ns, reason, down, out)
        else:
            self._set_state(new, reason, out)
            self._notify(out)

    def _enter_fault(self, now_ns: int, reason: str, out: list[Action]) -> None:
        self._preempt_until_ns = None
        if self.state == State.MASTER:
            self._leave_master(now_ns, State.FAULT, reason, True, out)
            return
        self._cancel_all(out)
        self._set_state(State.FAULT, reason, out)
        self._notify(out)

    def _leave_fault(self, now_ns: int, reason: str, out: list[Action]) -> None:
        # keepalived vrrp_state_leave_fault / try_up_instance: master_adver_int is
        # reset to ours; only the owner goes straight to MASTER.
        self.master_adver_int_cs = self.params.adver_int_cs
        if self.base_priority == PRIO_OWNER and self._gate_open():
            self._become_master(now_ns, reason, out)
        else:
            self.wantstate = State.BACKUP
            self._enter_backup(now_ns, reason, self.down_interval_ns, out)

    def _gate_open(self) -> bool:
        return self.sync_gate is None or self.sync_gate(self)

    def _reevaluate(self, now_ns: int, reason: str, out: list[Action]) -> None:
        if not self._started or self.state == State.STOP:
            return
        up = self.is_up
        if not up and self.state in (State.BACKUP, State.MASTER):
            self._enter_fault(now_ns, reason, out)
        elif up and self.state == State.FAULT:
            self._leave_fault(now_ns, reason, out)

    # -- event handlers ---------------------------------------------------------------

    def _on_startup(self, now_ns: int, out: list[Action]) -> None:
        if self.state != State.INIT or self._started:
            raise IllegalTransition(self.state, None, "Startup when already started")
        self._started = True
        p = self.params
        if not self.is_up:
            self._enter_fault(now_ns, "startup with a fault", out)
        elif self.base_priority == PRIO_OWNER and self._gate_open():
            # RFC 5798 §6.4.1: Priority 255 -> send an advert and become Master.
            self._become_master(now_ns, "address owner", out)
        elif p.initial_state == State.MASTER:
            # keepalived vrrp_init_state: `state MASTER` waits one interval plus the
            # minimum skew, so a running master is heard first.
            down = adver_int_ns(self.master_adver_int_cs) + skew_time_min_ns(
                p.version, self.master_adver_int_cs
            )
            self._enter_backup(now_ns, "startup (state MASTER)", down, out)
        else:
            self._enter_backup(now_ns, "startup", self.down_interval_ns, out)

    def _on_shutdown(self, out: list[Action]) -> None:
        if self.state == State.STOP:
            return
        if self.state == State.MASTER:
            self._cancel_all(out)
            self._send_advert(0, out)
            out.append(RemoveVips())
            self.vips_set = False
        else:
            self._cancel_all(out)
        self._set_state(State.STOP, "shutdown", out)
        self._notify(out)

    def _on_timer(self, ev: TimerExpired, now_ns: int, out: list[Action]) -> None:
        if not self._timer_is_current(ev.kind, ev.deadline_ns):
            return  # stale: cancelled or re-armed since
        if self._armed[ev.kind][1] == 0:
            del self._armed[ev.kind]
        p = self.params
        match ev.kind:
            case TimerKind.ADVER:
                self._send_advert(self.effective_priority, out)
            case TimerKind.MASTER_DOWN:
                self._on_master_down(now_ns, out)
            case TimerKind.GARP_DELAY:
                out.append(SendGratuitous(p.garp_master_repeat))
            case TimerKind.GARP_REFRESH:
                out.append(SendGratuitous(p.garp_master_refresh_repeat))
            case TimerKind.GARP_LOWER_PRIO:
                out.append(SendGratuitous(p.garp_lower_prio_repeat or 0))
            case TimerKind.GARP_DEFEND:
                addresses = tuple(sorted(self._defend))
                self._defend.clear()
                out.append(SendGratuitous(p.garp_master_repeat, addresses))

    def _on_vip_claimed(self, address: str, mac: str, now_ns: int, out: list[Action]) -> None:
        # A node that was master for a moment (our adverts lost on the way to it) may
        # have pointed hosts' ARP caches at itself, and we may never have heard its
        # advert: announce again, one advert interval after the first claim, so that
        # our burst lands after the rest of its burst, and a lower-priority master that
        # hears ours has had an interval to hear our advert and step down instead of
        # answering. Claims while the answer is pending are absorbed in it.
        #
        # The answer announces only the addresses claimed (a claim for one VIP must not
        # make us re-announce all of them: a cheap amplifier on the segment), and a MAC
        # that keeps claiming is answered less and less often: after an answer, none
        # for its claims for one interval, then 2, 4 ... up to CLAIM_BACKOFF_MAX
        # intervals; a MAC quiet for as long as its back-off starts again at one.
        if self.state != State.MASTER:
            return
        self.counters.vip_claimed += 1
        interval = adver_int_ns(self.params.adver_int_cs)
        seen = self._claimers.get(mac)
        if seen is not None and now_ns < seen[0]:
            self.counters.vip_claim_ignored += 1
            return
        if seen is None or now_ns - seen[0] >= seen[1]:
            backoff = interval
        else:
            backoff = min(2 * seen[1], CLAIM_BACKOFF_MAX * interval)
        self._claimers.pop(mac, None)
        if len(self._claimers) >= CLAIMERS_MAX:
            # Many MACs (spoofed ones cost an attacker nothing): forget the oldest.
            del self._claimers[next(iter(self._claimers))]
        self._claimers[mac] = (now_ns + backoff, backoff)
        self._defend.add(address)
        if TimerKind.GARP_DEFEND in self._armed:
            return
        self._arm(TimerKind.GARP_DEFEND, now_ns + interval, 0, out)

    def _on_vip_deleted(self, now_ns: int, out: list[Action]) -> None:
        # keepalived set_vrrp_backup: release as a stop does (priority 0, VIPs removed),
        # then BACKUP with Master_Down_Timer = Skew_Time: unless another router takes
        # over, this one is master again at once and puts the VIPs back.
        if self.state != State.MASTER:
            return
        self.wantstate = State.BACKUP
        self._leave_master(now_ns, State.BACKUP, "VIP deleted", True, out, self._skew_ns())

    def _on_master_down(self, now_ns: int, out: list[Action]) -> None:
        # RFC 5798 §6.4.2: Master_Down_Timer fired -> become Master.
        self.wantstate = State.MASTER
        if not self._gate_open():
            # keepalived vrrp_sync_can_goto_master: wait for the rest of the group.
            self._arm(TimerKind.MASTER_DOWN, now_ns + self.down_interval_ns, 0, out)
            return
        self._become_master(now_ns, "master down timer expired", out)

    def _on_sync_goto(self, target: State, now_ns: int, out: list[Action]) -> None:
        if target == State.MASTER and self.state == State.BACKUP:
            self._become_master(now_ns, "sync group", out)
        elif target == State.BACKUP and self.state == State.MASTER:
            self.wantstate = State.BACKUP
            self._leave_master(now_ns, State.BACKUP, "sync group", False, out)

    def _on_priority(self, priority: int, now_ns: int, out: list[Action]) -> None:
        # keepalived vrrp_set_effective_priority: the owner's priority never moves.
        if self.base_priority == PRIO_OWNER:
            return
        new = clamp_priority(priority)
        if new == self.effective_priority:
            return
        old_down = self.down_interval_ns
        self.effective_priority = new
        armed = self._armed.get(TimerKind.MASTER_DOWN)
        if self.state == State.BACKUP and armed is not None:
            # Skew_Time depends on our priority: move the running timer by the change
            # in Master_Down_Interval, as keepalived does (not a restart).
            deadline = max(now_ns, armed[0] + self.down_interval_ns - old_down)
            if deadline != armed[0]:
                self._arm(TimerKind.MASTER_DOWN, deadline, 0, out)

    def _on_advert(self, ev: AdvertReceived, now_ns: int, out: list[Action]) -> None:
        if self.state not in (State.BACKUP, State.MASTER):
            return
        self.counters.advert_rcvd += 1
        if ev.priority == 0:
            self.counters.pri_zero_rcvd += 1
        if self.state == State.BACKUP:
            self._backup_rx(ev, now_ns, out)
        else:
            self._master_rx(ev, now_ns, out)

    def _backup_rx(self, ev: AdvertReceived, now_ns: int, out: list[Action]) -> None:
        p = self.params
        if ev.priority == 0:
            # RFC 5798 §6.4.2: the master is leaving; take over after Skew_Time.
            self._arm(TimerKind.MASTER_DOWN, now_ns + self._skew_ns(), 0, out)
            return
        held = p.preempt_delay_ns > 0 and (
            self._preempt_until_ns is None or self._preempt_until_ns > now_ns
        )
        if p.nopreempt or ev.priority >= self.effective_priority or held:
            # §6.4.2: accept the master: learn its interval (v3), restart the timer.
            if p.version == 3 and ev.adver_int_cs > 0:
                self.master_adver_int_cs = ev.adver_int_cs
            self._arm(TimerKind.MASTER_DOWN, now_ns + self.down_interval_ns, 0, out)
            self.master_address = ev.src
            self.master_priority = ev.priority
            if p.preempt_delay_ns:
                # keepalived: the delay starts at the first lower-priority advert
                # heard and is cancelled by a higher/equal one.
                if ev.priority >= self.effective_priority:
                    self._preempt_until_ns = None
                elif self._preempt_until_ns is None:
                    self._preempt_until_ns = now_ns + p.preempt_delay_ns
            self.wantstate = State.BACKUP
        else:
            # §6.4.2: preempt: discard a lower-priority advert and leave the
            # Master_Down_Timer running, so we become master when it fires.
            self.master_address = ev.src

    def _master_rx(self, ev: AdvertReceived, now_ns: int, out: list[Action]) -> None:
        p = self.params
        cmp = compare_addresses(ev.src, p.primary_address)
        higher = ev.priority > self.effective_priority or (
            ev.priority == self.effective_priority and cmp > 0
        )
        if ev.priority == 0 or (p.higher_prio_send_advert and higher):
            self._send_advert(self.effective_priority, out)
            if ev.priority == 0:
                # §6.4.3: send an advert at once and reset the Adver_Timer.
                interval = adver_int_ns(p.adver_int_cs)
                self._arm(TimerKind.ADVER, now_ns + interval, interval, out)
                return
        if ev.priority == self.effective_priority:
            if cmp == 0:
                return  # our own address: a loop or a clone; keepalived only warns
            if self.effective_priority == PRIO_OWNER:
                # keepalived: two owners is a configuration error; step down to 254.
                self.base_priority = self.effective_priority = PRIO_OWNER - 1
                higher = True
        if higher:
            # §6.4.3: a better master exists: stop the Adver_Timer, go Backup.
            if p.version == 3 and ev.adver_int_cs > 0:
                self.master_adver_int_cs = ev.adver_int_cs
            self.master_address = ev.src
            self.master_priority = ev.priority
            self.wantstate = State.BACKUP
            self._leave_master(now_ns, State.BACKUP, "higher priority advert", False, out)
            return
        # Lower priority (or equal with a lower address): RFC says ignore; keepalived
        # re-asserts with an advert unless lower_prio_no_advert, and refreshes ARP.
        if not p.lower_prio_no_advert:
            self._send_advert(self.effective_priority, out)
        if p.garp_lower_prio_repeat:
            out.append(SendGratuitous(p.garp_lower_prio_repeat))
            if p.garp_lower_prio_delay_ns:
                self._arm(TimerKind.GARP_LOWER_PRIO, now_ns + p.garp_lower_prio_delay_ns, 0, out)
        out.append(Notify(NotifyKind.MASTER_RX_LOWER_PRI, self.effective_priority))
