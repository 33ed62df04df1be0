"""AF_PACKET receiver for ARP on one interface: who else announces our VIPs.

A backup that takes over for a moment (adverts lost on the way to it) sends its GARP
burst, then hears the master again and steps down; the master may never have heard
that backup's advert, so it never re-announces, and hosts keep sending the VIP's
traffic to a node that no longer holds it until their ARP entry is probed again
(seconds). Watching ARP while MASTER closes that gap: an ARP frame whose sender
protocol address is one of our VIPs, from another MAC, makes the instance announce
again (RFC 5227 §2.4's "defend", which VRRP's own GARP already is).

Only interfaces where some instance is MASTER are watched; a backup opens nothing.
Frames we sent ourselves come back flagged PACKET_OUTGOING and are skipped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

ETH_P_ARP = 0x0806
PACKET_OUTGOING = 4
_DRAIN = 64  # frames per wake-up: a flood of ARP never holds the loop for long

# Ethernet (14) + ARP for IPv4 over Ethernet (28).
_ARP_HEAD = b"\x00\x01\x08\x00\x06\x04"  # htype 1, ptype IPv4, hlen 6, plen 4

OnClaim = Callable[[str, bytes, bytes], None]  # (ifname, sender IPv4, sender MAC)


def parse_claim(frame: bytes) -> tuple[bytes, bytes] | None:
    """(sender protocol address, sender hardware address) of an IPv4 ARP frame."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x06" or frame[14:20] != _ARP_HEAD:
        return None
    return frame[28:32], frame[22:28]


class ArpWatch:
    """One AF_PACKET socket bound to ``ifname`` for ETH_P_ARP, read on the loop."""

    __slots__ = ("_loop", "_on_claim", "_sock", "ifname", "malformed")

    def __init__(self, loop: asyncio.AbstractEventLoop, ifname: str, on_claim: OnClaim) -> None:
        self.ifname = ifname
        self._loop = loop
        self._on_claim = on_claim
        self._sock: socket.socket | None = None
        self.malformed = 0

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def open(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        try:
            sock.bind((self.ifname, ETH_P_ARP))
            sock.setblocking(False)
            self._loop.add_reader(sock.fileno(), self._readable)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        log.debug("watching ARP on %s", self.ifname)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._loop.remove_reader(sock.fileno())
        sock.close()
        log.debug("stopped watching ARP on %s", self.ifname)

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(_DRAIN):
            try:
                frame, addr = sock.recvfrom(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("ARP watch on %s: receive failed: %s", self.ifname, exc)
                return
            if addr[2] == PACKET_OUTGOING:
                continue
            claim = parse_claim(frame)
            if claim is None:
                self.malformed += 1
                continue
            self._on_claim(self.ifname, claim[0], claim[1])
