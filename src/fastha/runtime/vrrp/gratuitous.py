"""Gratuitous ARP / unsolicited NA bursts for a master's addresses, paced as keepalived
paces them (vrrp_garp_interval, vrrp_gna_interval)."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import TYPE_CHECKING, Any

from fastha.drivers.packet import PacketSender
from fastha.vrrp.states import State
from fastha.wire import garp_frame, na_frame

if TYPE_CHECKING:
    from fastha.runtime.vrrp.context import Context
    from fastha.runtime.vrrp.from_config import InstanceSpec
    from fastha.vrrp.fsm import Machine

log = logging.getLogger("fastha.vrrp")
# What a burst sends, in keepalived's log lines (vrrp.c vrrp_send_update).
_ANNOUNCEMENTS: dict[int, str] = {
    socket.AF_INET: "gratuitous ARPs",
    socket.AF_INET6: "Unsolicited Neighbour Adverts",
}


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


class Announcer:
    """One instance's running bursts, each its own task, so leaving MASTER cancels them
    instead of queueing the VIP removal behind repeat x interval of sleeps. A burst
    asked for while another runs (a new master hearing the old one's advert: the
    lower-priority GARPs right after its own) is sent too, as keepalived sends both."""

    def __init__(self, ctx: Context, name: str, machine: Machine) -> None:
        self.ctx = ctx
        self.name = name
        self.machine = machine
        self.tasks: set[asyncio.Task[None]] = set()
        # A new master's first frame, built ahead: (address, sender, frame).
        self._first: tuple[Any, PacketSender, bytes] | None = None

    def prepare(self, spec: InstanceSpec) -> None:
        """Build the first frame of a new master's burst ahead (config load, reload):
        an IPv4 address's (an NA's Router flag is read when it is sent)."""
        self._first = None
        targets = (*spec.vips, *spec.excluded)
        if not targets or targets[0].family != socket.AF_INET:
            return
        try:
            sender, frame, _gap, _v6 = self._frame(spec, targets[0])
        except OSError:  # no such interface yet: built when it is sent
            return
        self._first = (targets[0], sender, frame)

    def _frame(self, spec: InstanceSpec, vip: Any) -> tuple[PacketSender, bytes, float, bool]:
        sender = self.ctx.sender(vip.dev or spec.ifname)
        packed = socket.inet_pton(vip.family, vip.address)
        if vip.family == socket.AF_INET6:
            router = self.ctx.gna_router(vip.dev or spec.ifname)
            return (
                sender,
                na_frame(sender.mac_bytes, packed, router=router),
                spec.gna_interval_s,
                True,
            )
        return sender, garp_frame(sender.mac_bytes, packed), spec.garp_interval_s, False

    def start(self, spec: InstanceSpec, vips: list[Any] | None) -> bool:
        """A new master's burst begins: its first frame (every burst's first send goes
        at once) leaves now, right behind the addresses; ``announce(..., started=True)``
        sends the rest. False when nothing was sent (not master, no address, or no
        socket for the interface: ``announce`` tries again and reports it)."""
        if self.machine.state != State.MASTER:
            return False
        targets = (*spec.vips, *spec.excluded) if vips is None else vips
        if not targets:
            return False
        first = self._first
        if first is not None and first[0] is targets[0]:
            first[1].send(first[2])
            return True
        try:
            sender, frame, _gap, _v6 = self._frame(spec, targets[0])
        except OSError:
            return False
        sender.send(frame)
        return True

    async def announce(
        self, spec: InstanceSpec, repeat: int, vips: list[Any] | None, started: bool = False
    ) -> None:
        """A burst for `vips` (all the instance's addresses when None), if still master;
        ``started``: its first frame has left already (``start``)."""
        if self.machine.state != State.MASTER:  # left MASTER while queued: never announce
            return
        # keepalived's vrrp_send_link_update: the VIPs, then the excluded addresses.
        targets = (*spec.vips, *spec.excluded) if vips is None else vips
        frames = [self._frame(spec, vip) for vip in targets]
        sends = paced(frames, max(1, repeat))
        # The unpaced head of the burst leaves now, right behind the addresses (this job
        # runs just after them), not one loop turn later from a task; the paced rest waits.
        now = 1 if started else 0
        while now < len(sends) and not sends[now][2]:
            sends[now][0].send(sends[now][1])
            now += 1
        if log.isEnabledFor(logging.DEBUG):  # its lines after the head: it goes first
            for vip in targets:
                # keepalived's vrrp_send_update: a line per address, with -D only (here
                # at debug, which -D shows), for the first of the burst's repeats.
                log.debug(
                    "(%s) Sending/queueing %s on %s for %s",
                    self.name,
                    _ANNOUNCEMENTS[vip.family],
                    vip.dev or spec.ifname,
                    vip.address,
                )
        if now >= len(sends):
            return
        task = self.ctx.loop.create_task(self._burst(sends[now:]), name=f"garp-{self.name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def cancel(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tasks.clear()

    async def _burst(self, sends: list[tuple[PacketSender, bytes, float]]) -> None:
        for sender, frame, wait in sends:
            if wait:
                await asyncio.sleep(wait)
            if self.machine.state != State.MASTER:
                return
            sender.send(frame)
