"""AF_PACKET receivers for ARP and Neighbor Advertisements: who else announces our VIPs.

A backup that takes over for a moment (adverts lost on the way to it) sends its GARP/NA
burst, then hears the master again and steps down; the master may never have heard
that backup's advert, so it never re-announces, and hosts keep sending the VIP's
traffic to a node that no longer holds it until their neighbour entry is probed again
(seconds). Watching while MASTER closes that gap: an ARP frame whose sender protocol
address is one of our VIPs, or a Neighbor Advertisement whose target is one, from
another MAC, makes the instance announce again (RFC 5227 §2.4's "defend", which VRRP's
own GARP/NA already is): that address only, and less and less often for a MAC that
keeps claiming (the policy is the machine's: vrrp/defence.py).

Only interfaces where some instance is MASTER are watched; a backup opens nothing.
Frames we sent ourselves come back flagged PACKET_OUTGOING and are skipped, and so are
frames addressed to our MAC alone (PACKET_HOST): an ARP reply or solicited NA to us
updates no other host's cache. The old master's kernel answers our own GARP so in the
millisecond before it removes the VIP; re-announcing then would only differ from
keepalived. The IPv6
socket carries a BPF filter passing only ICMPv6 type 136 with hop limit 255, so the
rest of the interface's IPv6 traffic never wakes the loop.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable

from fastha.drivers import bpf, rxbudget
from fastha.drivers.rxbudget import RxBudget

log = logging.getLogger(__name__)

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
PACKET_HOST = 0
PACKET_OUTGOING = 4
_DRAIN = 64  # frames per wake-up: a flood never holds the loop for long
_SNAPLEN = 128  # Ethernet + IPv6 + NA + its options; ARP is 42

# Ethernet (14) + ARP for IPv4 over Ethernet (28).
_ARP_HEAD = b"\x00\x01\x08\x00\x06\x04"  # htype 1, ptype IPv4, hlen 6, plen 4

# Ethernet (14) + IPv6 (40) + NA (24: type, code, checksum, flags, target) + options.
_ICMPV6 = 58
_ND_NEIGHBOR_ADVERT = 136
_ND_OPT_TARGET_LLADDR = 2
_NA_END = 78

# Without extension headers (RFC 4861 §7.1.2 receivers may see them, senders of
# unsolicited NAs do not use them): next header at 20, hop limit 21, ICMPv6 type 54.
NA_FILTER: bpf.Program = [
    (bpf.LD_B_ABS, 0, 0, 20),
    (bpf.JEQ_K, 0, 4, _ICMPV6),
    (bpf.LD_B_ABS, 0, 0, 21),
    (bpf.JEQ_K, 0, 2, 255),
    (bpf.LD_B_ABS, 0, 0, 54),
    (bpf.JEQ_K, 1, 0, _ND_NEIGHBOR_ADVERT),
    (bpf.RET_K, 0, 0, 0),
    (bpf.RET_K, 0, 0, _SNAPLEN),
]

OnClaim = Callable[[str, bytes, bytes], None]  # (ifname, address 4 or 16 B, claimer MAC)


def parse_claim(frame: bytes) -> tuple[bytes, bytes] | None:
    """(sender protocol address, sender hardware address) of an IPv4 ARP frame."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06" or frame[14:20] != _ARP_HEAD:
        return None
    return frame[28:32], frame[22:28]


def parse_na_claim(frame: bytes) -> tuple[bytes, bytes] | None:
    """(target address, claimer MAC) of a Neighbor Advertisement: the MAC of its
    target link-layer address option, else the Ethernet source."""
    if (
        len(frame) < _NA_END
        or frame[12:14] != b"\x86\xdd"
        or frame[20] != _ICMPV6
        or frame[21] != 255
        or frame[54] != _ND_NEIGHBOR_ADVERT
        or frame[55] != 0
    ):
        return None
    mac = frame[6:12]
    end = min(len(frame), _NA_END + int.from_bytes(frame[18:20]) - 24)
    at = _NA_END
    while at + 8 <= end:
        kind, units = frame[at], frame[at + 1]
        if units == 0:
            return None  # RFC 4861 §4.6: a zero-length option invalidates the packet
        if kind == _ND_OPT_TARGET_LLADDR and units == 1:
            mac = frame[at + 2 : at + 8]
            break
        at += 8 * units
    return frame[62:78], mac


class ArpWatch:
    """One AF_PACKET socket bound to ``ifname``, read on the loop: ARP for AF_INET,
    Neighbor Advertisements for AF_INET6."""

    __slots__ = (
        "_budget",
        "_loop",
        "_on_claim",
        "_parse",
        "_sock",
        "family",
        "ifname",
        "malformed",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ifname: str,
        on_claim: OnClaim,
        family: int = socket.AF_INET,
        budget: RxBudget | None = None,
    ) -> None:
        self.ifname = ifname
        self._budget = budget  # the loop's receive budget (real-time): see rxbudget
        self.family = family
        self._loop = loop
        self._on_claim = on_claim
        self._parse = parse_na_claim if family == socket.AF_INET6 else parse_claim
        self._sock: socket.socket | None = None
        self.malformed = 0

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        if self._sock is not None:
            return
        # Protocol 0 receives nothing until bind: no frame from another interface (or
        # unfiltered) is queued in between.
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            if self.family == socket.AF_INET6:
                bpf.attach_filter(sock, NA_FILTER)
                sock.bind((self.ifname, ETH_P_IPV6))
            else:
                sock.bind((self.ifname, ETH_P_ARP))
            sock.setblocking(False)
            rxbudget.add_reader(self._budget, self._loop, sock.fileno(), self._readable)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        log.debug("watching %s on %s", self._what, self.ifname)

    @property
    def _what(self) -> str:
        return "neighbor advertisements" if self.family == socket.AF_INET6 else "ARP"

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            rxbudget.close_reader(self._budget, self._loop, sock)
            log.debug("stopped watching %s on %s", self._what, self.ifname)

    def _readable(self) -> None:
        if self._sock is None:
            return
        start = time.monotonic_ns()
        self._drain(self._sock)
        if self._budget is not None:
            self._budget.charge(start)

    def _drain(self, sock: socket.socket) -> None:
        for _ in range(_DRAIN):
            try:
                frame, addr = sock.recvfrom(_SNAPLEN)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("%s watch on %s: receive failed: %s", self._what, self.ifname, exc)
                return
            if addr[2] in (PACKET_OUTGOING, PACKET_HOST):
                continue
            claim = self._parse(frame)
            if claim is None:
                self.malformed += 1
                continue
            self._on_claim(self.ifname, claim[0], claim[1])
