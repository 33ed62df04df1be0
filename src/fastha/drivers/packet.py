"""AF_PACKET sender for prebuilt Ethernet frames (gratuitous ARP, unsolicited NA).

The frames come complete from the wire codec; this only owns the socket bound to one
interface and knows that interface's MAC address (the default ARP sender hardware
address when no VMAC is in use). Sending is synchronous and non-blocking, like
``VrrpSocket.send``: a GARP burst is fired from a timer callback.
"""

from __future__ import annotations

import errno
import logging
import socket
from dataclasses import dataclass

log = logging.getLogger(__name__)

ETH_P_ALL = 0x0003


def mac_str(mac: bytes) -> str:
    return ":".join(f"{b:02x}" for b in mac)


def interface_mac(ifname: str) -> bytes:
    """The hardware address of ``ifname`` (6 bytes for Ethernet)."""
    # An AF_PACKET socket bound to the device reports dev_addr in sockaddr_ll.sll_addr:
    # no ioctl struct packing, no /sys (which may belong to another namespace).
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
        s.bind((ifname, 0))
        mac: bytes = s.getsockname()[4]
        return mac


@dataclass(slots=True)
class PacketStats:
    sent: int = 0
    send_eagain: int = 0
    send_enobufs: int = 0
    send_errors: int = 0


class PacketSender:
    """Raw Ethernet frames out of one interface. Protocol 0: this socket never receives."""

    __slots__ = ("_sock", "ifindex", "ifname", "mac", "stats")

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.ifindex = 0
        self.mac = ""
        self._sock: socket.socket | None = None
        self.stats = PacketStats()

    @property
    def mac_bytes(self) -> bytes:
        return bytes.fromhex(self.mac.replace(":", ""))

    def open(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            sock.setblocking(False)
            sock.bind((self.ifname, 0))
            self.mac = mac_str(sock.getsockname()[4])
            self.ifindex = socket.if_nametoindex(self.ifname)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        log.info("packet_sender open dev=%s mac=%s", self.ifname, self.mac)

    def send(self, frame: bytes | bytearray | memoryview) -> bool:
        """Send one complete Ethernet frame; never blocks, never raises."""
        sock = self._sock
        if sock is None:
            self.stats.send_errors += 1
            return False
        try:
            sock.send(frame)
        except BlockingIOError:
            self.stats.send_eagain += 1
            return False
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                self.stats.send_enobufs += 1
            else:
                self.stats.send_errors += 1
                log.warning("packet_sender send failed dev=%s: %s", self.ifname, exc.strerror)
            return False
        self.stats.sent += 1
        return True

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
