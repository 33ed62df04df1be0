"""The BFD child's sessions and the receive demultiplexer (keepalived 2.2.7's
bfd_handle_packet up to its session lookup).

A packet is decoded and checked by `_wire` (RFC 5880 §6.8.6's checks that need no
session: a failure is dropped and counted by reason), then given to the session whose
local discriminator is its Your Discriminator, or, when that is 0 (the peer has not
heard us yet), to the session whose neighbour is its source and, where the session has
a `source_ip`, whose source is its destination (find_bfd_by_addr). What matches no
session is dropped and counted as NO_SESSION. The machine does the rest (GTSM, the
state transitions).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterator

from fastha.bfd.session import Session
from fastha.drivers.bfd_socket import BfdSender
from fastha.runtime.bfd.from_config import SessionSpec
from fastha.runtime.bfd.relay import EventRelay
from fastha.runtime.bfd.session import SessionIO
from fastha.wire.bfd import BfdDecodeError, BfdDropReason, decode_bfd
from fastha.wire.timer import PreciseTimer

log = logging.getLogger("fastha.bfd")

_DISCR_MAX = 0xFFFFFFFF


class Sessions:
    def __init__(
        self,
        timer: PreciseTimer,
        relay: EventRelay,
        rng: random.Random | None = None,
        open_sender: Callable[[SessionSpec], BfdSender] | None = None,
    ) -> None:
        self.timer = timer
        self.relay = relay
        self.rng = rng or random.Random()
        self._open_sender = open_sender or self._default_sender
        self.by_name: dict[str, SessionIO] = {}
        self._by_discr: dict[int, SessionIO] = {}
        self.dropped: Counter[str] = Counter()

    def __iter__(self) -> Iterator[SessionIO]:
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)

    def _default_sender(self, spec: SessionSpec) -> BfdSender:
        return BfdSender(
            spec.neighbor, spec.source, spec.params.ttl, multihop=spec.multihop, rng=self.rng
        )

    def new_discr(self) -> int:
        """keepalived's bfd_get_random_discr: random, non-zero, unused by any session."""
        used = {s.machine.local_discr for s in self.by_name.values()}
        while True:
            discr = self.rng.randint(1, _DISCR_MAX)
            if discr not in used:
                return discr

    def add(self, spec: SessionSpec) -> SessionIO:
        machine = Session(spec.params, rand=self.rng.randint, new_discr=self.new_discr)
        sio = SessionIO(spec, machine, self.timer, self.relay, self._open_sender)
        self.by_name[spec.name] = sio
        return sio

    def remove(self, name: str) -> SessionIO | None:
        return self.by_name.pop(name, None)

    # ---- demultiplexing

    def _find_discr(self, discr: int) -> SessionIO | None:
        sio = self._by_discr.get(discr)
        if sio is not None and sio.machine.local_discr == discr and sio.name in self.by_name:
            return sio
        # A discriminator changes when a session falls from Up: rebuild, look again.
        self._by_discr = {s.machine.local_discr: s for s in self.by_name.values()}
        return self._by_discr.get(discr)

    def _find_addr(self, src: str, dst: str, multihop: bool) -> SessionIO | None:
        for sio in self.by_name.values():
            spec = sio.spec
            if spec.neighbor != src or spec.multihop != multihop:
                continue
            if spec.source is None or not dst or spec.source == dst:
                return sio
        return None

    def on_packet(
        self,
        payload: memoryview,
        src: str,
        sport: int,
        dst: str,
        ttl: int,
        now_ns: int,
        multihop: bool = False,
    ) -> None:
        try:
            pkt = decode_bfd(payload)
        except BfdDecodeError as exc:
            self.dropped[BfdDropReason(exc.reason).name] += 1
            # keepalived's inet_sockaddrtopair: [address]:port
            log.debug("Discarding bogus packet from [%s]:%d (%s)", src, sport, exc)
            return
        your = pkt.your_discr
        sio = self._find_discr(your) if your else self._find_addr(src, dst, multihop)
        if sio is None:
            self.dropped[BfdDropReason.NO_SESSION.name] += 1
            log.debug(
                "Discarding packet from [%s]:%d (session is not found - your discriminator "
                "field is 0x%8.8x)",
                src,
                sport,
                your,
            )
            return
        sio.receive(pkt, ttl, now_ns)
