"""What every instance of the VRRP child shares: the loop, the precise timer, netlink,
the script runner, the notify FIFO, packet senders, and the ARP/ND watches that defend
a master's VIPs."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastha.config.invocation import Script
from fastha.drivers.arpwatch import ArpWatch
from fastha.drivers.fifo import NotifyFifo
from fastha.drivers.netlink import Netlink
from fastha.drivers.packet import PacketSender, mac_str
from fastha.drivers.rtnl_raw import RawRtnl
from fastha.drivers.rxbudget import RxBudget
from fastha.drivers.scripts import ScriptRunner
from fastha.vrrp.actions import StateChanged
from fastha.vrrp.states import State
from fastha.wire.timer import PreciseTimer

if TYPE_CHECKING:
    from fastha.runtime.vrrp.instance import Instance
    from fastha.vrrp.sync import SyncGroup

log = logging.getLogger("fastha.vrrp")

# Time a timer pass may spend adding new masters' VIPs on the fast path (runtime/vrrp/
# vips): a pass that makes many masters at once must not hold back the adverts of the
# instances after them; those add theirs from their queues once every advert is out.
FAST_VIPS_BUDGET_NS = 500_000


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
        # A new master's VIPs without a round trip (drivers/rtnl_raw); None: pyroute2 only.
        self.rtnl: RawRtnl | None = None
        self._fast_pass = -1  # the timer wakeup the budget below was spent in
        self._fast_spent_ns = 0
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

    def fast_vips_allowed(self) -> bool:
        """Whether this timer pass may add one more master's VIPs on the fast path."""
        wakeup = self.timer.wakeups if self.timer is not None else 0
        if wakeup != self._fast_pass:
            self._fast_pass, self._fast_spent_ns = wakeup, 0
        return self._fast_spent_ns < FAST_VIPS_BUDGET_NS

    def fast_vips_spent(self, ns: int) -> None:
        self._fast_spent_ns += ns

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
        for watched in list(self.arp_watches):
            if watched not in wanted:
                self.arp_watches.pop(watched).close()
        for ifname, family in wanted - self.arp_watches.keys():
            watch = ArpWatch(self.loop, ifname, self._on_arp_claim, family, self.rx_budget)
            try:
                watch.open()
            except OSError as exc:
                log.warning(
                    "cannot watch %s on %s: %s",
                    "ND" if family == socket.AF_INET6 else "ARP",
                    ifname,
                    exc.strerror or exc,
                )
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
