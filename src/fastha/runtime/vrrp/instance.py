"""One running vrrp_instance: the state machine wired to its parts.

The hot paths are synchronous: a received advert is decoded, checked and fed to the
machine inside the socket's reader callback, and an advert is sent inside the timer
callback. Only address changes, GARP bursts and scripts are asynchronous; they run
in order on the instance's own queue so that "advert, then VIPs, then GARP" holds.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from fastha.drivers.vrrp_socket import VrrpSocket
from fastha.runtime.vrrp.advert_receive import AdvertReceiver
from fastha.runtime.vrrp.advert_send import AdvertSender
from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.from_config import InstanceSpec
from fastha.runtime.vrrp.gratuitous import Announcer
from fastha.runtime.vrrp.instance_status import instance_status
from fastha.runtime.vrrp.ipsec_ah import IpsecAh
from fastha.runtime.vrrp.jobs import JobQueue
from fastha.runtime.vrrp.notify import Notifier
from fastha.runtime.vrrp.timers import InstanceTimers
from fastha.runtime.vrrp.transition_log import (
    log_lower_discarded,
    log_master_rx_lower,
    log_transition,
)
from fastha.runtime.vrrp.vips import Vips
from fastha.vrrp.actions import (
    Action,
    AddVips,
    ArmTimer,
    CancelTimer,
    GroupNotify,
    Notify,
    RemoveVips,
    SendAdvert,
    SendGratuitous,
    StateChanged,
)
from fastha.vrrp.events import (
    AdvertReceived,
    Event,
    PriorityChanged,
    Reconfigure,
    TimerExpired,
    TimerKind,
    TrackFault,
    VipClaimed,
)
from fastha.vrrp.fsm import Machine
from fastha.vrrp.states import State
from fastha.wire.timer import monotonic_ns as _monotonic_ns

if TYPE_CHECKING:
    from fastha.vrrp.sync import SyncGroup

log = logging.getLogger("fastha.vrrp")


class Instance:
    def __init__(self, spec: InstanceSpec, ctx: Context, primary_address: str) -> None:
        self.spec = spec
        self.ctx = ctx
        self.name = spec.name
        p = spec.params
        self.machine = Machine(p)
        self.counters = self.machine.counters
        self.family = spec.family
        self.src = spec.src or primary_address
        self.ah = IpsecAh()
        self.tx = AdvertSender(self.name, self.family, bool(spec.unicast_peers), self.ah)
        self.rx = AdvertReceiver(self.name, self.family, spec, self.machine, self.ah)
        self._build_codec()
        self.sock: VrrpSocket | None = None
        self.timers = InstanceTimers(ctx.timer, self._on_timer, self._on_adver)
        self.jobs = JobQueue(ctx.loop, self.name)
        self.vips = Vips(ctx, self.name)
        self.vips.prepare(spec)
        self._garp_follows: object | None = None  # the fast VIP job a burst may start behind
        self.announcer = Announcer(ctx, self.name, self.machine)
        if ctx.rtnl is not None:  # the fast path's: the running child's
            self.announcer.prepare(spec)
        self.notifier = Notifier(ctx)
        self.event: Event | None = None  # the last one fed: the cause a transition logs
        self.track_reason = ""  # the last TrackFault's
        self.sent_prio0 = False  # "sent 0 priority" is logged after the state line
        self.group: SyncGroup | None = None
        self.vmac: str | None = None  # use_vmac: the macvlan this instance sends from

    def _build_codec(self) -> None:
        """The advert template and the receive-side expectations, from the spec."""
        p = self.machine.params
        self.ah.rekey(self.spec)
        self.tx.rebuild(self.spec, p, self.src)
        self.rx.rebuild(self.spec, p)

    # -- reload -----------------------------------------------------------------------

    def reconfigure(self, spec: InstanceSpec, now_ns: int | None = None) -> None:
        """Reload: take `spec` (same interface, VRID, family and socket) in place.

        The machine keeps its state and timers. A new base priority is set here; the
        runner then feeds the new effective priority through tracking. A new advert
        interval re-arms a master's Adver_Timer; the VIP list is diffed and, while the
        VIPs are set, only the addresses that differ are removed or added (with a
        gratuitous ARP burst for the new ones only): the others never flap."""
        old = self.spec
        m = self.machine
        now = _monotonic_ns() if now_ns is None else now_ns
        actions = m.handle(Reconfigure(spec.params), now)
        for w in m.warnings:
            log.warning("%s", w)
        self.spec = spec
        self._build_codec()
        self.vips.prepare(spec)
        if self.ctx.rtnl is not None:
            self.announcer.prepare(spec)
        for action in actions:
            self.execute(action)
        addrs = (old.vips, old.excluded, old.routes, old.rules)
        if m.vips_set and addrs != (spec.vips, spec.excluded, spec.routes, spec.rules):
            self.jobs.put(lambda: self._swap_vips(old, spec))

    # -- receive ----------------------------------------------------------------------

    def on_packet(self, payload: memoryview, src: str, dst: str, ttl: int, ifindex: int) -> None:
        event = self.rx.receive(payload, src, dst, ttl)
        if event is not None:
            was = self.machine.state
            self.feed(event)
            log_lower_discarded(self.name, event, was, self.machine)

    # -- the machine --------------------------------------------------------------------

    def feed(self, event: Event, now_ns: int | None = None) -> None:
        now = _monotonic_ns() if now_ns is None else now_ns
        if type(event) is AdvertReceived and event.priority == 0:
            # keepalived logs these with -D only (LOG_DETAIL): here at debug, which -D shows.
            who = "Master" if self.machine.state == State.MASTER else "Backup"
            what = "message" if who == "Master" else "advertisement"
            log.debug("(%s) %s received priority 0 %s", self.name, who, what)
        self.event = event
        if type(event) is TrackFault:
            self.track_reason = event.reason
        if self.group is not None:
            for member, action in self.group.handle(self.name, event, now):
                target = self.ctx.instances.get(member) if member else None
                if target is None:
                    self.ctx_group_action(action)
                else:
                    target.execute(action)
            return
        for action in self.machine.handle(event, now):
            self.execute(action)

    def change_priority(self, priority: int) -> None:
        """A new effective priority from tracking (keepalived's
        vrrp_set_effective_priority): logged, on the notify FIFO with
        notify_priority_changes, then fed to the machine."""
        m = self.machine
        if priority == m.effective_priority:
            return
        log.info(
            "(%s) Changing effective priority from %d to %d",
            self.name,
            m.effective_priority,
            priority,
        )
        if self.spec.notify_priority_changes and self.ctx.fifo is not None:
            # keepalived's send_instance_priority_notifies: the state the new priority
            # has not yet had any effect on, and the new priority.
            kind = "MASTER_PRIORITY" if m.state == State.MASTER else "BACKUP_PRIORITY"
            self.ctx.fifo.notify_instance(self.name, kind, priority)
        self.feed(PriorityChanged(priority))

    def on_vip_claimed(self, address: str, mac: str) -> None:
        # Not through the sync group: a re-announcement changes no state.
        now = _monotonic_ns()
        for action in self.machine.handle(VipClaimed(address, mac), now):
            if isinstance(action, ArmTimer):
                log.info(
                    "(%s) %s announced by %s, announcing it again in %.0f ms",
                    self.name,
                    address,
                    mac,
                    (action.deadline_ns - now) / 1e6,
                )
            self.execute(action)

    def ctx_group_action(self, action: Action) -> None:
        if isinstance(action, GroupNotify) and self.group is not None:
            self.notifier.group(action)

    def notify_group_stop(self, group: str) -> None:
        """keepalived's notify_shutdown for a sync group: its notify_stop, its generic
        notify (GROUP name STOP 0) and the FIFO line."""
        self.notifier.group_stop(group)

    def execute(self, action: Action) -> None:
        if isinstance(action, SendAdvert):
            self._send(action.priority)
        elif isinstance(action, ArmTimer):
            self.timers.arm(action)
        elif isinstance(action, CancelTimer):
            self.timers.cancel(action.kind)
        elif isinstance(action, StateChanged):
            if action.new == State.MASTER:
                self.ah.on_master()
            elif action.old == State.INIT and action.new in (State.BACKUP, State.FAULT):
                self.vips.log_removal(self.spec)  # at startup (Vips.log_removal)
                self.jobs.put(lambda: self.vips.remove(self.spec, logged=True))
            log_transition(
                self.name,
                action,
                self.event,
                self.machine.effective_priority,
                self.track_reason,
                self.sent_prio0,
            )
            self.sent_prio0 = False
            if self.ctx.on_state_change is not None:
                self.ctx.on_state_change(self, action)
        elif isinstance(action, AddVips):
            self._add_vips()
        elif isinstance(action, RemoveVips):
            self.announcer.cancel()
            self.jobs.put(lambda: self.vips.remove(self.spec))
        elif isinstance(action, SendGratuitous):
            repeat = action.repeat
            only = action.addresses
            vips = [v for v in self.spec.vips if v.address in only] if only else None
            # A new master's burst starts right behind its addresses (the fast path sent
            # them just now), unless something else has been queued in between.
            started = (
                self._garp_follows is not None
                and self.jobs.tail is self._garp_follows
                and self.announcer.start(self.spec, vips)
            )
            self._garp_follows = None
            self.jobs.put(lambda: self.announcer.announce(self.spec, repeat, vips, started))
        elif isinstance(action, Notify):
            log_master_rx_lower(self.name, self.event, self.machine, action)
            self.notifier.instance(self.name, self.spec.notify, action)
        elif isinstance(action, GroupNotify):
            self.ctx_group_action(action)

    def _add_vips(self) -> None:
        """keepalived's order: the advert, the addresses, the gratuitous ARPs. With
        nothing queued before them (and time left in this timer pass) the addresses go
        now (the fast path); the kernel's answers are logged from the queue."""
        spec = self.spec
        self._garp_follows = None
        if not self.jobs.busy and self.ctx.fast_vips_allowed():
            start = _monotonic_ns()
            sock = self.sock
            if sock is not None and sock.tx is not None:
                sock.tx.flush()  # the advert this pass queued leaves first
            acks = self.vips.add_now(spec)
            self.ctx.fast_vips_spent(_monotonic_ns() - start)
            if acks is not None:

                async def job() -> None:
                    await self.vips.added(spec, acks)

                self.jobs.put(job)
                if not (spec.routes or spec.rules):  # those go before the burst
                    self._garp_follows = job
                return
        self.jobs.put(lambda: self.vips.add(self.spec))

    def _send(self, priority: int) -> None:
        sock = self.sock
        if sock is None:
            return
        if priority == 0:
            self.sent_prio0 = True
        self.tx.send(sock, priority)

    def _on_timer(self, deadline_ns: int, now_ns: int, kind: TimerKind) -> None:
        self.feed(TimerExpired(kind, deadline_ns), now_ns)

    def _on_adver(self, deadline_ns: int, now_ns: int) -> None:
        """The advert timer's tick, a master's every 10 ms at advert_int 0.01: the
        machine's `advert_tick` answers it as `feed(TimerExpired(ADVER))` would, without
        the event (which no transition logs: this tick never changes state). A sync
        group member goes through its group, as every other event does."""
        if self.group is not None:
            self.feed(TimerExpired(TimerKind.ADVER, deadline_ns), now_ns)
            return
        for advert in self.machine.advert_tick(deadline_ns):
            self._send(advert.priority)

    # -- addresses and gratuitous ARP, in order ---------------------------------------------

    async def _swap_vips(self, old: InstanceSpec, new: InstanceSpec) -> None:
        """Reload while master: swap the addresses that differ, announce the new ones."""
        added = await self.vips.swap(old, new)
        if added:
            await self.announcer.announce(
                self.spec, max(1, self.machine.params.garp_master_repeat), added
            )

    async def drain(self) -> None:
        """Wait until every queued address/GARP job has run."""
        await self.jobs.drain()

    def status(self) -> dict[str, Any]:
        """keepalived's JSON signal entry (fastha.runtime.vrrp.instance_status)."""
        return instance_status(self.name, self.spec, self.machine, self.vips.installed, self.vmac)
