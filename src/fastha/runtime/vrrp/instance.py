"""One running vrrp_instance: the state machine wired to sockets, timers and netlink.

The hot paths are synchronous: a received advert is decoded, checked and fed to the
machine inside the socket's reader callback, and an advert is sent inside the timer
callback. Only address changes, GARP bursts and scripts are asynchronous; they run
in order on the instance's own queue so that "advert, then VIPs, then GARP" holds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastha.drivers.arpwatch import ArpWatch
from fastha.drivers.fifo import NotifyFifo
from fastha.drivers.netlink import Netlink
from fastha.drivers.packet import PacketSender, mac_str
from fastha.drivers.rxbudget import RxBudget
from fastha.drivers.scripts import Script, ScriptRunner
from fastha.drivers.vrrp_socket import VrrpSocket
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
    TimerExpired,
    TimerKind,
    TrackFault,
    VipClaimed,
)
from fastha.runtime.vrrp.from_config import InstanceSpec
from fastha.vrrp.fsm import Machine
from fastha.vrrp.states import State
from fastha.vrrp.timing import adver_int_ns
from fastha.wire import (
    AUTH_AH,
    AdvertTemplate,
    AhKey,
    DecodeError,
    DropReason,
    Expect,
    encode_ipv4,
    garp_frame,
    na_frame,
)
from fastha.wire.timer import Periodic, PreciseTimer, TimerHandle
from fastha.wire.timer import monotonic_ns as _monotonic_ns

if TYPE_CHECKING:
    from fastha.vrrp.sync import SyncGroup

log = logging.getLogger("fastha.vrrp")

_STATE_NAMES = {State.MASTER: "MASTER", State.BACKUP: "BACKUP", State.FAULT: "FAULT"}
_REASON_NAMES = {int(r): r.name for r in DropReason}


class Context:
    """What every instance of the VRRP child shares."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timer: PreciseTimer,
        netlink: Netlink,
        scripts: ScriptRunner,
        fifo: NotifyFifo | None,
        release_on_stop: bool = True,
    ) -> None:
        self.loop = loop
        self.timer = timer
        self.netlink = netlink
        self.scripts = scripts
        self.fifo = fifo
        self.release_on_stop = release_on_stop
        self.senders: dict[str, PacketSender] = {}
        self._gna_router: dict[str, tuple[bool, float]] = {}  # ifname -> (router, when)
        # Meters every flood-exposed reader (VRRP sockets, ARP/ND watches); enabled with
        # real-time scheduling (drivers/rxbudget: RLIMIT_RTTIME).
        self.rx_budget = RxBudget(loop)
        self.arp_watches: dict[tuple[str, int], ArpWatch] = {}
        self._claimed: dict[tuple[str, bytes], list[Instance]] = {}  # (ifname, VIP)
        self.instances: dict[str, Instance] = {}
        self.groups: dict[str, SyncGroup] = {}
        self.group_notify: dict[str, dict[str, Script]] = {}
        # Told of every state change after it is logged (the lvs_sync_daemon follows one).
        self.on_state_change: Callable[[Instance, StateChanged], None] | None = None

    def sender(self, ifname: str) -> PacketSender:
        s = self.senders.get(ifname)
        if s is None:
            s = PacketSender(ifname)
            s.open()
            self.senders[ifname] = s
        return s

    def gna_router(self, ifname: str) -> bool:
        """Whether unsolicited NAs on `ifname` set the Router flag: keepalived's
        set_ipv6_forwarding (net.ipv6.conf.IF.forwarding), read again at most every 5 s."""
        now = time.monotonic()
        seen = self._gna_router.get(ifname)
        if seen is None or now - seen[1] >= 5:
            try:
                with open(f"/proc/sys/net/ipv6/conf/{ifname}/forwarding") as fh:
                    router = int(fh.read()) != 0
            except (OSError, ValueError):
                router = False
            seen = self._gna_router[ifname] = (router, now)
        return seen[0]

    def update_arp_watches(self) -> None:
        """Watch ARP / Neighbor Advertisements on exactly the (interface, family) pairs
        where some instance is MASTER with a VIP (drivers/arpwatch: re-announce when
        another MAC claims one)."""
        claimed: dict[tuple[str, bytes], list[Instance]] = {}
        for inst in self.instances.values():
            if inst.machine.state != State.MASTER:
                continue
            for vip in inst.spec.vips:
                key = (vip.dev or inst.spec.ifname, socket.inet_pton(vip.family, vip.address))
                claimed.setdefault(key, []).append(inst)
        self._claimed = claimed
        wanted = {(ifname, _family_of(packed)) for ifname, packed in claimed}
        for key in list(self.arp_watches):
            if key not in wanted:
                self.arp_watches.pop(key).close()
        for ifname, family in wanted - self.arp_watches.keys():
            watch = ArpWatch(self.loop, ifname, self._on_arp_claim, family, self.rx_budget)
            try:
                watch.open()
            except OSError as exc:
                log.warning("cannot watch %s on %s: %s",
                            "ND" if family == socket.AF_INET6 else "ARP", ifname,
                            exc.strerror or exc)  # fmt: skip
                continue
            self.arp_watches[ifname, family] = watch

    def close_arp_watches(self) -> None:
        for watch in self.arp_watches.values():
            watch.close()
        self.arp_watches.clear()
        self._claimed = {}

    def _on_arp_claim(self, ifname: str, address: bytes, mac: bytes) -> None:
        instances = self._claimed.get((ifname, address))
        if not instances:
            return  # not one of our VIPs: most of a segment's ARP
        sender = self.senders.get(ifname)
        if sender is not None and mac == sender.mac_bytes:
            return  # ours, sent from another socket on this interface
        text = socket.inet_ntop(_family_of(address), address)
        for inst in instances:
            if inst.machine.state == State.MASTER:
                inst.on_vip_claimed(text, mac_str(mac))


def _family_of(packed: bytes) -> int:
    return socket.AF_INET6 if len(packed) == 16 else socket.AF_INET


def paced(
    frames: list[tuple[PacketSender, bytes, float, bool]], repeat: int
) -> list[tuple[PacketSender, bytes, float]]:
    """A burst's sends as keepalived makes them: (sender, frame, wait before it).

    Without vrrp_garp_interval / vrrp_gna_interval every address goes ``repeat`` times at
    once. With one, keepalived (vrrp_arp.c/vrrp_ndisc.c) sends only the first frame of an
    interface and family at once and queues the rest by address, a flag per address: an
    address queued again while still queued is sent once (so ``repeat`` 2 gives the first
    address twice and every other address once), one per interval."""
    out: list[tuple[PacketSender, bytes, float]] = []
    started: set[tuple[int, bool]] = set()
    pending: list[int] = []
    for _ in range(repeat):
        for i, (sender, frame, gap, v6) in enumerate(frames):
            if not gap:
                out.append((sender, frame, 0.0))
            elif (id(sender), v6) not in started:
                started.add((id(sender), v6))
                out.append((sender, frame, 0.0))
            elif i not in pending:
                pending.append(i)
    out += [(frames[i][0], frames[i][1], frames[i][2]) for i in pending]
    return out


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
        # IPv4 adverts carry our own IP header, as keepalived's (vrrp.c vrrp_update_pkt):
        # the ID counts adverts per instance and skips 0 (0 lets the kernel pick one).
        self.ip_id = 0
        # keepalived's AH sequence counter: one per instance, for what it sends and
        # what it has accepted (ipsecah_counter); `cycle` once it would pass 0xFFFFFFFD.
        self.ah_seq = 0
        self.ah_cycle = False
        self._frame = self._frame_ipv4
        self.peer_templates: tuple[AdvertTemplate, ...] = ()
        self._build_codec()
        self.peers = frozenset(spec.unicast_peers)
        self.peer_ttl = {addr: (lo, hi) for addr, lo, hi in spec.peer_ttl}
        self.sock: VrrpSocket | None = None
        self.timers: dict[TimerKind, TimerHandle | Periodic] = {}
        self.queue: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        # The running GARP/NA burst: its own task, so leaving MASTER cancels it instead
        # of queueing the VIP removal behind repeat x interval of sleeps.
        self.garp_task: asyncio.Task[None] | None = None
        self.event: Event | None = None  # the last one fed: the cause a transition logs
        self.track_reason = ""  # the last TrackFault's
        self.sent_prio0 = False  # "sent 0 priority" is logged after the state line
        self.vips_installed = False
        self.group: SyncGroup | None = None
        self.vmac: str | None = None  # use_vmac: the macvlan this instance sends from

    def _build_codec(self) -> None:
        """The advert template and the receive-side expectations, from the spec."""
        spec = self.spec
        p = self.machine.params
        addresses = spec.advert_addresses
        dst = spec.unicast_peers[0] if spec.unicast_peers else spec.mcast_group
        packed_src = socket.inet_pton(self.family, self.src)
        packed_dst = socket.inet_pton(self.family, dst)
        adver_int = p.adver_int_cs // 100 if p.version == 2 else p.adver_int_cs
        auth_data = b"" if spec.auth_type == AUTH_AH else spec.auth_data  # AH: 8 zero bytes

        def template(packed_dst: bytes) -> AdvertTemplate:
            return AdvertTemplate(p.version, p.vrid, p.priority, adver_int, addresses,
                                  self.family, packed_src, packed_dst, spec.auth_type,
                                  auth_data)  # fmt: skip

        self.template = template(packed_dst)
        self.packed_src = packed_src
        self.ip_ttl = spec.unicast_ttl if spec.unicast_peers else 255
        self.ah_key = AhKey(spec.auth_data) if spec.auth_type == AUTH_AH else None
        # VRRPv3's checksum covers the pseudo-header's destination (RFC 5798 5.2.8): with
        # several unicast peers each copy carries its own, as keepalived computes it per
        # peer; the first peer's bytes fail at every other peer (split brain).
        self.peer_templates = ()
        if p.version == 3 and len(spec.unicast_peers) > 1:
            self.peer_templates = tuple(
                template(socket.inet_pton(self.family, peer)) for peer in spec.unicast_peers
            )
        self.expect = Expect(
            p.version,
            spec.auth_type,
            spec.auth_data,
            adver_int,
            addresses,
            not p.skip_check_adv_addr,
            False,
            self.family,
        )

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
        params, warnings = spec.params.normalised()
        for w in warnings:
            log.warning("%s", w)
        old_params = m.params
        self.spec = spec
        m.params = params
        if params.priority != old_params.priority:
            m.base_priority = params.priority
        self._build_codec()
        if params.adver_int_cs != old_params.adver_int_cs:
            if m.state == State.MASTER:
                # RFC 5798 6.4.3: a master advertises its own configured interval.
                m.master_adver_int_cs = params.adver_int_cs
                now = _monotonic_ns() if now_ns is None else now_ns
                interval = adver_int_ns(params.adver_int_cs)
                out: list[Action] = []
                # Through the machine, so its timer bookkeeping accepts the new grid.
                m._arm(TimerKind.ADVER, now + interval, interval, out)
                for action in out:
                    self.execute(action)
            elif params.version == 2:
                m.master_adver_int_cs = params.adver_int_cs  # v2 peers must agree
        addrs = (old.vips, old.excluded, old.routes, old.rules)
        if m.vips_set and addrs != (spec.vips, spec.excluded, spec.routes, spec.rules):
            self._enqueue(lambda: self._swap_vips(old, spec))

    # -- receive ----------------------------------------------------------------------

    def on_packet(self, payload: memoryview, src: str, dst: str, ttl: int, ifindex: int) -> None:
        counters = self.counters
        if self.peers:
            # keepalived checks TTL 255 only for multicast: unicast crosses routers, and
            # keepalived 2.2.7 itself sends IPv6 unicast adverts with hop limit 64. A peer's
            # min_ttl/max_ttl, when configured, bounds it instead.
            lo, hi = self.peer_ttl.get(src, (0, 255))
            if not lo <= ttl <= hi:
                counters.count_drop("TTL")
                return
            ttl = -1
        try:
            if self.ah_key is not None:
                # An AH socket hands over the whole IPv4 packet: the ICV covers it.
                advert = self.expect.decode_ipv4(payload, ttl >= 0)
            else:
                advert = self.expect.decode(
                    payload,
                    self.family,
                    socket.inet_pton(self.family, src),
                    socket.inet_pton(self.family, dst),
                    ttl,
                )
        except DecodeError as exc:
            counters.count_drop(exc.reason.name)
            log.debug("(%s) dropped advert from %s: %s", self.name, src, exc)
            return
        # keepalived checks AH after version and auth type, before the rest.
        ah = advert.ah and advert.version == 2 and advert.auth_type == AUTH_AH
        if ah and not self._ah_accept(payload, advert):
            counters.count_drop("AUTH_FAILURE")
            return
        reason = self.expect.check(advert)
        if reason:
            counters.count_drop(_REASON_NAMES.get(reason, str(reason)))
            log.debug(
                "(%s) dropped advert from %s: %s",
                self.name,
                src,
                _REASON_NAMES.get(reason),
            )
            return
        if self.peers and self.spec.params.check_unicast_src and src not in self.peers:
            counters.count_drop("UNICAST_SRC")
            return
        self.feed(AdvertReceived(src, advert.priority, advert.adver_int_cs))

    def tracked_vip(self, address: str) -> str | None:
        """The interface of `address` if deleting it by hand makes us leave MASTER: a
        VIP or eVIP without `no_track` (keepalived_netlink.c address_is_ours)."""
        spec = self.spec
        if address in spec.untracked_vips:
            return None
        return next((v.dev for v in (*spec.vips, *spec.excluded) if v.address == address), None)

    def _ah_accept(self, packet: memoryview, advert: Any) -> bool:
        """keepalived's vrrp_in_chk_ipsecah: the ICV, SPI = source, then a sequence
        number above every one seen or sent (the counter is shared with sending)."""
        assert self.ah_key is not None
        if not self.ah_key.verify(packet, bool(self.peers)):
            log.info("(%s) IPSEC-AH : invalid IPSEC HMAC-MD5 value. Due to fields mutation"
                      " or bad password !", self.name)  # fmt: skip
            return False
        spi = int.from_bytes(advert.src, "big")
        if advert.ah_spi != spi:
            log.info("IPSEC AH : invalid IPSEC SPI value. %u and expect %u", spi, advert.ah_spi)
            return False
        seq = advert.ah_seq
        if seq <= self.ah_seq:
            log.info("(%s) IPSEC-AH : sequence number %u already processed. Packet dropped."
                      " Local(%u)", self.name, seq, self.ah_seq)  # fmt: skip
            return False
        self.ah_seq = seq
        m = self.machine
        if m.state == State.BACKUP:
            self.ah_cycle = False
        elif m.state == State.MASTER and 0 < advert.priority < m.effective_priority:
            # vrrp_state_master_rx: a lower priority advert syncs our counter past it.
            log.info("(%s) IPSEC-AH : Syncing seq_num - Increment seq", self.name)
            self.ah_seq = seq + 1
            self.ah_cycle = False
        return True

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
            self.name, m.effective_priority, priority,
        )  # fmt: skip
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
                log.info("(%s) %s announced by %s, announcing it again in %.0f ms",
                         self.name, address, mac, (action.deadline_ns - now) / 1e6)  # fmt: skip
            self.execute(action)

    def ctx_group_action(self, action: Action) -> None:
        if isinstance(action, GroupNotify) and self.group is not None:
            state = _STATE_NAMES.get(action.state, action.state.name)
            log.info("VRRP_Group(%s) Syncing instances to %s state", action.group, state)
            scripts = self.ctx.group_notify.get(action.group, {})
            self._run_notify(scripts, state, "GROUP", action.group, 0)
            if self.ctx.fifo is not None:
                self.ctx.fifo.notify_group(action.group, state)

    def notify_group_stop(self, group: str) -> None:
        """keepalived's notify_shutdown for a sync group: its notify_stop, its generic
        notify (GROUP name STOP 0) and the FIFO line."""
        self._run_notify(self.ctx.group_notify.get(group, {}), "STOP", "GROUP", group, 0)
        if self.ctx.fifo is not None:
            self.ctx.fifo.notify_group(group, "STOP")

    def execute(self, action: Action) -> None:
        if isinstance(action, SendAdvert):
            self._send(action.priority)
        elif isinstance(action, ArmTimer):
            self._arm(action)
        elif isinstance(action, CancelTimer):
            t = self.timers.pop(action.kind, None)
            if t is not None:
                t.cancel()
        elif isinstance(action, StateChanged):
            if action.new == State.MASTER and self.ah_cycle:
                # vrrp_state_goto_master: a cycled AH counter starts again.
                self.ah_cycle, self.ah_seq = False, 0
            self._log_state(action)
            if self.ctx.on_state_change is not None:
                self.ctx.on_state_change(self, action)
        elif isinstance(action, AddVips):
            self._enqueue(self._add_vips)
        elif isinstance(action, RemoveVips):
            self._cancel_garp()
            self._enqueue(self._remove_vips)
        elif isinstance(action, SendGratuitous):
            repeat = action.repeat
            only = action.addresses
            vips = [v for v in self.spec.vips if v.address in only] if only else None
            self._enqueue(lambda: self._gratuitous(repeat, vips))
        elif isinstance(action, Notify):
            self._notify(action)
        elif isinstance(action, GroupNotify):
            self.ctx_group_action(action)

    def _send(self, priority: int) -> None:
        sock = self.sock
        if sock is None:
            return
        if priority == 0:
            self.sent_prio0 = True
        # VRRPv3 to several unicast peers: one message per peer (its checksum covers it).
        each = [t.packet(priority) for t in self.peer_templates] if self.peer_templates else None
        if self.family != socket.AF_INET:
            if each is not None:
                sock.send_each(each)
            else:
                sock.send(self.template.packet(priority))
            return
        # One ID (and AH sequence number) per advert, whatever the number of peers.
        self.ip_id = self.ip_id % 0xFFFF + 1
        if self.ah_key is not None:
            if self.ah_seq > 0xFFFFFFFD:
                self.ah_cycle = True
            else:
                self.ah_seq += 1
        if each is not None:
            sock.send_each(each, self._frame)
        else:
            sock.send(self.template.packet(priority), self._frame)

    def _frame_ipv4(self, message: bytes | bytearray | memoryview, dst: bytes) -> bytes:
        return encode_ipv4(message, self.ip_id, self.ip_ttl, self.packed_src, dst,
                           self.ah_key, self.ah_seq, bool(self.peers))  # fmt: skip

    def _arm(self, action: ArmTimer) -> None:
        old = self.timers.pop(action.kind, None)
        if old is not None:
            old.cancel()
        timer = self.ctx.timer
        if action.interval_ns:
            self.timers[action.kind] = timer.every(
                action.interval_ns,
                self._on_timer,
                action.kind,
                first_deadline_ns=action.deadline_ns,
            )
        else:
            self.timers[action.kind] = timer.call_at(
                action.deadline_ns, self._on_timer, action.kind
            )

    def _on_timer(self, deadline_ns: int, now_ns: int, kind: TimerKind) -> None:
        self.feed(TimerExpired(kind, deadline_ns), now_ns)

    def _log_state(self, action: StateChanged) -> None:
        """The transition in keepalived 2.2.7's words, after the line keepalived logs
        for its cause (vrrp.c, vrrp_scheduler.c)."""
        new, event = action.new, self.event
        if action.reason == "higher priority advert" and type(event) is AdvertReceived:
            ours = self.machine.effective_priority
            if event.priority == ours:
                log.info("(%s) Master received advert from %s with same priority %d but "
                         "higher IP address than ours", self.name, event.src, event.priority)  # fmt: skip
            else:
                log.info("(%s) Master received advert from %s with higher priority %d, ours %d",
                         self.name, event.src, event.priority, ours)  # fmt: skip
        elif new == State.MASTER and action.reason == "master down timer expired":
            log.debug("(%s) Receive advertisement timeout", self.name)
        pending_init = all(r.endswith(" init") for r in self.track_reason.split("; "))
        if action.old == State.INIT and new == State.FAULT and pending_init:
            # keepalived waits for its track scripts' first result without a line.
            log.debug("(%s) waiting for the first result of %s", self.name, self.track_reason)
        elif new in _STATE_NAMES:
            init = " (init)" if action.old == State.INIT and new != State.MASTER else ""
            log.info("(%s) Entering %s STATE%s", self.name, _STATE_NAMES[new], init)
        elif new == State.STOP:
            log.debug("(%s) Stopped", self.name)  # keepalived has no line for it
        if self.sent_prio0:
            self.sent_prio0 = False
            log.debug("(%s) sent 0 priority", self.name)  # keepalived: with -D
        log.debug("(%s) %s -> %s: %s", self.name, action.old.name, new.name, action.reason)

    # -- addresses and gratuitous ARP, in order ---------------------------------------------

    def _enqueue(self, job: Callable[[], Awaitable[None]]) -> None:
        if self.worker is None or self.worker.done():
            self.worker = self.ctx.loop.create_task(self._work(), name=f"vrrp-{self.name}")
        self.queue.put_nowait(job)

    async def _work(self) -> None:
        while True:
            job = await self.queue.get()
            try:
                if job is None:
                    return
                await job()
            except Exception:
                log.exception("(%s) address/GARP job failed", self.name)
            finally:
                self.queue.task_done()

    async def drain(self) -> None:
        """Wait until every queued address/GARP job has run."""
        if self.worker is not None and not self.worker.done():
            await self.queue.join()

    async def _add_vips(self) -> None:
        nl = self.ctx.netlink
        for vip in (*self.spec.vips, *self.spec.excluded):
            await nl.add_address(vip)
        for route in self.spec.routes:
            await nl.add_route(route)
        for rule in self.spec.rules:
            await nl.add_rule(rule)
        self.vips_installed = True
        log.info("(%s) setting VIPs.", self.name)
        self.ctx.update_arp_watches()  # after the VIPs: nothing delays them

    async def _remove_vips(self) -> None:
        nl = self.ctx.netlink
        for rule in self.spec.rules:
            await nl.delete_rule(rule)
        for route in self.spec.routes:
            await nl.delete_route(route)
        for vip in (*self.spec.vips, *self.spec.excluded):
            await nl.delete_address(vip)
        self.vips_installed = False
        log.info("(%s) removing VIPs.", self.name)
        self.ctx.update_arp_watches()

    async def _swap_vips(self, old: InstanceSpec, new: InstanceSpec) -> None:
        """Reload while master: remove what left the config, add what joined it."""
        nl = self.ctx.netlink
        # Our own delete-then-add is no VIP deleted by hand (the runner's address watch).
        installed, self.vips_installed = self.vips_installed, False

        def missing(items: tuple[Any, ...], other: tuple[Any, ...]) -> list[Any]:
            return [x for x in items if x not in other]

        for rule in missing(old.rules, new.rules):
            await nl.delete_rule(rule)
        for route in missing(old.routes, new.routes):
            await nl.delete_route(route)
        old_addrs, new_addrs = (*old.vips, *old.excluded), (*new.vips, *new.excluded)
        for vip in missing(old_addrs, new_addrs):
            await nl.delete_address(vip)
            log.info(
                "(%s) removing VIP %s/%d dev %s (reload)",
                self.name, vip.address, vip.prefixlen, vip.dev,
            )  # fmt: skip
        for vip in missing(new_addrs, old_addrs):
            await nl.add_address(vip)
            log.info(
                "(%s) adding VIP %s/%d dev %s (reload)",
                self.name, vip.address, vip.prefixlen, vip.dev,
            )  # fmt: skip
        for route in missing(new.routes, old.routes):
            await nl.add_route(route)
        for rule in missing(new.rules, old.rules):
            await nl.add_rule(rule)
        self.vips_installed = installed
        added = missing(new_addrs, old_addrs)
        if added:
            await self._gratuitous(max(1, self.machine.params.garp_master_repeat), added)

    async def _gratuitous(self, repeat: int, vips: list[Any] | None = None) -> None:
        if self.machine.state != State.MASTER:  # left MASTER while queued: never announce
            return
        frames: list[tuple[PacketSender, bytes, float, bool]] = []
        # keepalived's vrrp_send_link_update: the VIPs, then the excluded addresses.
        for vip in (*self.spec.vips, *self.spec.excluded) if vips is None else vips:
            sender = self.ctx.sender(vip.dev or self.spec.ifname)
            packed = socket.inet_pton(vip.family, vip.address)
            if vip.family == socket.AF_INET6:
                router = self.ctx.gna_router(vip.dev or self.spec.ifname)
                frame = na_frame(sender.mac_bytes, packed, router=router)
                frames.append((sender, frame, self.spec.gna_interval_s, True))
            else:
                frame = garp_frame(sender.mac_bytes, packed)
                frames.append((sender, frame, self.spec.garp_interval_s, False))
        log.info(
            "(%s) Sending/queueing gratuitous ARPs on %s for %d VIPs",
            self.name,
            self.spec.ifname,
            len(frames),
        )
        self._cancel_garp()
        self.garp_task = self.ctx.loop.create_task(
            self._garp_burst(paced(frames, max(1, repeat))), name=f"garp-{self.name}"
        )

    def _cancel_garp(self) -> None:
        if self.garp_task is not None and not self.garp_task.done():
            self.garp_task.cancel()
        self.garp_task = None

    async def _garp_burst(self, sends: list[tuple[PacketSender, bytes, float]]) -> None:
        for sender, frame, wait in sends:
            if wait:
                await asyncio.sleep(wait)
            if self.machine.state != State.MASTER:
                return
            sender.send(frame)

    # -- notify -----------------------------------------------------------------------

    def _notify(self, action: Notify) -> None:
        state = action.kind.value
        scripts = self.spec.notify
        self._run_notify(scripts, state, "INSTANCE", self.name, action.priority)
        # keepalived writes MASTER_RX_LOWER_PRI to the FIFOs too (send_event_notify).
        if self.ctx.fifo is not None:
            self.ctx.fifo.notify_instance(self.name, state, action.priority)

    def _run_notify(
        self, scripts: dict[str, Script], state: str, kind: str, name: str, priority: int
    ) -> None:
        specific = scripts.get(state)
        if specific is not None:
            self.ctx.scripts.spawn(specific, _log_script_result)
        generic = scripts.get("")
        if generic is not None and state in ("MASTER", "BACKUP", "FAULT", "STOP"):
            # keepalived's generic notify: $1 GROUP|INSTANCE, $2 name, $3 state, $4 priority.
            argv = (*generic.argv, kind, name, state, str(priority))
            self.ctx.scripts.spawn(dataclasses.replace(generic, argv=argv), _log_script_result)

    # -- status -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """keepalived's JSON signal entry (vrrp_json.c): {"data": ..., "stats": ...}.

        Field names and meanings are keepalived's (state as VRRP_STATE_* numbers)."""
        m = self.machine
        p = self.spec.params
        c = self.counters
        drops = dict(c.drops)
        scripts = self.spec.notify
        data: dict[str, Any] = {
            "iname": self.name,
            "dont_track_primary": int(p.dont_track_primary),
            "skip_check_adv_addr": int(p.skip_check_adv_addr),
            "strict_mode": int(p.strict),
            "ifp_ifname": self.spec.ifname,
            "garp_delay": p.garp_master_delay_ns / 1e9,
            "garp_refresh": p.garp_master_refresh_ns // 1_000_000_000,
            "garp_rep": p.garp_master_repeat,
            "garp_refresh_rep": p.garp_master_refresh_repeat,
            "vrid": p.vrid,
            "base_priority": p.priority,
            "effective_priority": m.effective_priority,
            "vipset": self.vips_installed,
            "adver_int": p.adver_int_cs / 100,
            "accept": int(p.accept if p.accept is not None else not p.strict),
            "nopreempt": p.nopreempt,
            "preempt_delay": p.preempt_delay_ns // 1_000_000_000,
            "state": int(m.state),
            "version": p.version,
        }
        if self.vmac is not None:
            data["vmac_ifname"] = self.vmac
        for key, field_name in (
            ("BACKUP", "script_backup"),
            ("MASTER", "script_master"),
            ("FAULT", "script_fault"),
            ("STOP", "script_stop"),
            ("", "script"),
            ("MASTER_RX_LOWER_PRI", "script_master_rx_lower_pri"),
        ):
            if key in scripts:
                data[field_name] = " ".join(scripts[key].argv)
        for field_name, items in (
            ("vips", self.spec.vips),
            ("evips", self.spec.excluded),
        ):
            if items:
                data[field_name] = [_format_address(v, self.vips_installed) for v in items]
        if self.spec.track_interfaces:
            data["track_ifp"] = [t[0] for t in self.spec.track_interfaces]
        if self.spec.track_scripts:
            data["track_script"] = [t.name for t in self.spec.track_scripts]
        data["auth_type"] = self.spec.auth_type
        stats = {
            "advert_rcvd": c.advert_rcvd,
            "advert_sent": c.advert_sent,
            "become_master": c.become_master,
            "release_master": c.release_master,
            "packet_len_err": drops.get("LENGTH", 0) + drops.get("TOO_SHORT", 0),
            "advert_interval_err": drops.get("ADVER_INT", 0),
            "ip_ttl_err": drops.get("TTL", 0),
            "invalid_type_rcvd": drops.get("TYPE", 0),
            "addr_list_err": drops.get("ADDRESS_LIST", 0) + drops.get("ADDRESS_COUNT", 0),
            "invalid_authtype": drops.get("AUTH_TYPE", 0),
            "authtype_mismatch": drops.get("AUTH_TYPE", 0),
            "auth_failure": drops.get("AUTH_FAILURE", 0),
            "pri_zero_rcvd": c.pri_zero_rcvd,
            "pri_zero_sent": c.pri_zero_sent,
        }
        return {
            "data": data,
            "stats": stats,
            # fastha's own summary beside keepalived's objects: state by name and every
            # drop reason, including those keepalived has no counter for.
            "name": self.name,
            "state": m.state.name,
            "priority": p.priority,
            "effective_priority": m.effective_priority,
            "vrid": p.vrid,
            "interface": self.spec.ifname,
            "counters": {
                "advert_rcvd": c.advert_rcvd,
                "advert_sent": c.advert_sent,
                "become_master": c.become_master,
                "release_master": c.release_master,
                "pri_zero_rcvd": c.pri_zero_rcvd,
                "pri_zero_sent": c.pri_zero_sent,
                "vip_claimed": c.vip_claimed,
                "vip_claim_ignored": c.vip_claim_ignored,
                "drops": drops,
            },
        }


def _log_script_result(script: Script, result: Any) -> None:
    if result.timed_out:
        log.warning("Script %s timed out and was killed", script.name)
    elif result.error:
        log.warning("Script %s could not run: %s", script.name, result.error)
    elif result.returncode != 0:
        log.info("Script %s exited with status %d", script.name, result.returncode)


_SCOPE_NAMES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}


def _format_address(v: Any, is_set: bool) -> str:
    """keepalived's format_ipaddress() (vrrp_ipaddress.c), as its JSON dump writes a VIP."""
    out = f"{v.address}/{v.prefixlen}"
    six = v.family == socket.AF_INET6
    if not six and v.broadcast:
        out += f" brd {v.broadcast}"
    out += f" dev {v.dev}"
    scope = v.scope if v.scope is not None else 0
    out += f" scope {_SCOPE_NAMES.get(scope, scope) if isinstance(scope, int) else scope}"
    if v.label:
        out += f" label {v.label}"
    if v.peer:
        out += f" peer {v.peer}/{v.prefixlen}"
    if v.home:
        out += " home"
    if six and not v.nodad:
        out += " -nodad"  # the address is added with DAD: `-nodad` was written
    if v.noprefixroute:
        out += " noprefixroute"
    if six:
        if v.preferred_lft == 0:
            out += " deprecated"
        elif v.preferred_lft is None:
            out += " preferred_lft forever"
        else:
            out += f" preferred_lft {v.preferred_lft}"
    if is_set:
        out += " set"
    return out
