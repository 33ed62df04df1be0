"""One instance's outgoing adverts: the template, one copy per unicast peer for VRRPv3,
and for IPv4 our own IP header (ID, TTL, AH) as keepalived builds it.

The common case (no AH, one message for every destination) goes through a
``_wire.AdvertTx`` bound to the socket's send queue: template, IP header and queueing
in one C call. AH (an HMAC per advert) and VRRPv3 to several unicast peers (a message
per peer) take the Python path below, onto the same queue.

Every copy is queued with the instance's ``report``: a copy the kernel refuses (the
queue's sendmmsg mixes the instances sharing the socket) is logged by its instance, in
keepalived's words (vrrp.c vrrp_send_adv)."""

from __future__ import annotations

import errno
import logging
import os
import socket
from typing import TYPE_CHECKING

from fastha.drivers.routewatch import link_usable
from fastha.drivers.vrrp_socket import VrrpSocket
from fastha.wire import AUTH_AH, AdvertTemplate, AdvertTx, encode_ipv4

if TYPE_CHECKING:
    from fastha.runtime.vrrp.from_config import InstanceSpec
    from fastha.runtime.vrrp.ipsec_ah import IpsecAh
    from fastha.vrrp.params import InstanceParams

log = logging.getLogger("fastha.vrrp")


class AdvertSender:
    def __init__(self, name: str, family: int, unicast: bool, ah: IpsecAh) -> None:
        self.name = name
        self.family = family
        self.unicast = unicast
        self.ah = ah
        self.priority = -1  # the last advert's (a refused one is reported after it)
        self.ifindex = 0  # the socket's interface
        self.report = self._refused  # every copy's tag on the queue (one bound method)
        # IPv4 adverts carry our own IP header, as keepalived's (vrrp.c vrrp_update_pkt):
        # the ID counts adverts per instance and skips 0 (0 lets the kernel pick one).
        self.ip_id = 0
        self.ip_ttl = 255
        self.packed_src = b""
        self.peer_templates: tuple[AdvertTemplate, ...] = ()
        self._frame = self._frame_ipv4
        self._fast: AdvertTx | None = None  # bound to one socket's queue

    def rebuild(self, spec: InstanceSpec, p: InstanceParams, src: str) -> None:
        """The advert template, from the spec (at start and on reload)."""
        addresses = spec.advert_addresses
        dst = spec.unicast_peers[0] if spec.unicast_peers else spec.mcast_group
        packed_src = socket.inet_pton(self.family, src)
        packed_dst = socket.inet_pton(self.family, dst)
        adver_int = p.adver_int_cs // 100 if p.version == 2 else p.adver_int_cs
        auth_data = b"" if spec.auth_type == AUTH_AH else spec.auth_data  # AH: 8 zero bytes

        def template(packed_dst: bytes) -> AdvertTemplate:
            return AdvertTemplate(
                p.version,
                p.vrid,
                p.priority,
                adver_int,
                addresses,
                self.family,
                packed_src,
                packed_dst,
                spec.auth_type,
                auth_data,
            )

        self.template = template(packed_dst)
        self.packed_src = packed_src
        self.ip_ttl = spec.unicast_ttl if spec.unicast_peers else 255
        # VRRPv3's checksum covers the pseudo-header's destination (RFC 5798 5.2.8): with
        # several unicast peers each copy carries its own, as keepalived computes it per
        # peer; the first peer's bytes fail at every other peer (split brain).
        self.peer_templates = ()
        self._drop_fast()
        if p.version == 3 and len(spec.unicast_peers) > 1:
            self.peer_templates = tuple(
                template(socket.inet_pton(self.family, peer)) for peer in spec.unicast_peers
            )

    def _drop_fast(self) -> None:
        if self._fast is not None:
            self.ip_id = self._fast.ip_id  # the ID sequence goes on across a rebuild
            self._fast = None

    def _bind(self, sock: VrrpSocket) -> AdvertTx | None:
        """An AdvertTx on `sock`'s queue, or None for the Python path."""
        self._drop_fast()
        self.ifindex = sock.ifindex
        tx = sock.tx
        if tx is None or self.peer_templates or self.ah.key is not None:
            return None
        if self.family == socket.AF_INET:
            self._fast = AdvertTx(
                self.template,
                tx,
                self.packed_src,
                sock.packed_dests,
                self.ip_ttl,
                self.ip_id,
                self.report,
            )
        else:
            self._fast = AdvertTx(self.template, tx, None, (), tag=self.report)
        return self._fast

    def send(self, sock: VrrpSocket, priority: int) -> None:
        self.priority = priority
        fast = self._fast
        if fast is None or fast.queue is not sock.tx:
            fast = self._bind(sock)
        if fast is not None:
            fast.send(priority)
            return
        # VRRPv3 to several unicast peers: one message per peer (its checksum covers it).
        each = [t.packet(priority) for t in self.peer_templates] if self.peer_templates else None
        if self.family != socket.AF_INET:
            if each is not None:
                sock.send_each(each, None, self.report)
            else:
                sock.send(self.template.packet(priority), None, self.report)
            return
        # One ID (and AH sequence number) per advert, whatever the number of peers.
        self.ip_id = self.ip_id % 0xFFFF + 1
        if self.ah.key is not None:
            self.ah.next_seq()
        if each is not None:
            sock.send_each(each, self._frame, self.report)
        else:
            sock.send(self.template.packet(priority), self._frame, self.report)

    def _refused(self, err: int, dst: str) -> None:
        """A copy of our advert the kernel refused, logged as keepalived's vrrp_send_adv
        logs it: every time, per peer with unicast; but not a priority 0 advert that
        found the interface down (ENETUNREACH: a master stopping or going to FAULT)."""
        if self.priority == 0 and err == errno.ENETUNREACH and not link_usable(self.ifindex):
            return
        if self.unicast:
            log.info("(%s) Cant send advert to %s (%s)", self.name, dst, os.strerror(err))
        else:
            log.info("(%s): send advert error %d (%s)", self.name, err, os.strerror(err))

    def _frame_ipv4(self, message: bytes | bytearray | memoryview, dst: bytes) -> bytes:
        return encode_ipv4(
            message,
            self.ip_id,
            self.ip_ttl,
            self.packed_src,
            dst,
            self.ah.key,
            self.ah.seq,
            self.unicast,
        )
