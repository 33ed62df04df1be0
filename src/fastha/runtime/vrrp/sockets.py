"""The VRRP child's sockets: one raw socket per (interface, family, source, protocol)
receives for all multicast instances on it and is demultiplexed by VRID; unicast
instances have their own. An instance whose interface does not exist yet waits here."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from fastha.drivers.vrrp_socket import (
    AH_LEN,
    IPPROTO_AH,
    IPPROTO_VRRP,
    VrrpSocket,
    VrrpSocketConfig,
)
from fastha.wire import AUTH_AH

if TYPE_CHECKING:
    from fastha.runtime.vrrp.instance import Instance

log = logging.getLogger("fastha.vrrp")


class Demux:
    """Hands a received advert to the instance owning its VRID."""

    __slots__ = ("ah", "by_vrid", "group", "multicast", "unknown_vrid")

    def __init__(self, multicast: bool, group: str, ah: bool = False) -> None:
        self.by_vrid: dict[int, Instance] = {}
        self.multicast = multicast
        self.group = group
        self.ah = ah  # an AH socket's payload is the whole IPv4 packet
        self.unknown_vrid = 0

    def on_packet(self, payload: memoryview, src: str, dst: str, ttl: int, ifindex: int) -> None:
        # Raw sockets see every VRRP packet on the interface: a multicast socket takes
        # only the group's, a unicast one everything else, so no packet is handled twice.
        at = (payload[0] & 0x0F) * 4 + AH_LEN + 1 if self.ah and payload else 1
        if (dst == self.group) is not self.multicast or len(payload) <= at:
            return
        inst = self.by_vrid.get(payload[at])
        if inst is None:
            self.unknown_vrid += 1
            return
        inst.on_packet(payload, src, dst, ttl, ifindex)


class SocketPool:
    def __init__(self) -> None:
        self.sockets: list[VrrpSocket] = []
        # Multicast sockets, shared per (interface, family, source) and demultiplexed.
        self.mcast: dict[tuple[str, int, str, int], tuple[Demux, VrrpSocket]] = {}
        # dynamic_interfaces: instances whose interface does not exist yet, by its name
        # (keepalived: "will use if created"); in FAULT, without a socket, until it appears.
        self.waiting: dict[str, list[Instance]] = {}

    def is_waiting(self, inst: Instance) -> bool:
        return inst in self.waiting.get(inst.spec.sock_ifname, ())

    def attach(self, inst: Instance) -> None:
        """Give `inst` its socket (shared or its own), or put it on the waiting list."""
        spec = inst.spec
        try:
            socket.if_nametoindex(spec.sock_ifname)
        except OSError:
            # Only with dynamic_interfaces: without, validation stops the daemon as
            # keepalived's VRRP child stops ("Non-existent interface specified").
            log.warning(
                "(%s) interface %s doesn't exist - waiting for it to be created",
                spec.name,
                spec.sock_ifname,
            )
            self.waiting.setdefault(spec.sock_ifname, []).append(inst)
            return
        # keepalived's AH adverts are IP protocol 51: a socket of their own. IPv4 adverts
        # carry our own IP header (IP_HDRINCL), as keepalived's do.
        proto = IPPROTO_AH if spec.auth_type == AUTH_AH else IPPROTO_VRRP
        hdrincl = spec.family == socket.AF_INET
        if spec.unicast_peers:
            demux = Demux(False, spec.mcast_group, proto == IPPROTO_AH)
            config = VrrpSocketConfig(
                spec.sock_ifname,
                spec.family,
                src=inst.src,
                unicast_peers=spec.unicast_peers,
                unicast_ttl=spec.unicast_ttl,
                proto=proto,
                hdrincl=hdrincl,
            )
        else:
            key = _mcast_key(inst)
            found = self.mcast.get(key)
            if found is not None:
                found[0].by_vrid[spec.params.vrid] = inst
                found[1].add_vrid(spec.params.vrid, spec.rx_bufs)  # kernel VRID filter
                inst.sock = found[1]
                return
            demux = Demux(True, spec.mcast_group, proto == IPPROTO_AH)
            config = VrrpSocketConfig(
                spec.sock_ifname,
                spec.family,
                src=inst.src,
                mcast_group=spec.mcast_group,
                proto=proto,
                hdrincl=hdrincl,
            )
        demux.by_vrid[spec.params.vrid] = inst
        sock = VrrpSocket(
            config,
            demux.on_packet,
            vrids={spec.params.vrid: spec.rx_bufs},
            timer=inst.ctx.timer,
            budget=inst.ctx.rx_budget,
        )
        sock.open()
        self.sockets.append(sock)
        inst.sock = sock
        if not spec.unicast_peers:
            self.mcast[_mcast_key(inst)] = (demux, sock)

    def detach(self, inst: Instance) -> None:
        """Detach a stopped instance; close its socket when nobody else uses it."""
        for waiting in self.waiting.values():
            if inst in waiting:
                waiting.remove(inst)
        sock, inst.sock = inst.sock, None
        if sock is None:
            return
        spec = inst.spec
        if not spec.unicast_peers:
            key = _mcast_key(inst)
            demux, _ = self.mcast[key]
            if demux.by_vrid.get(spec.params.vrid) is inst:
                del demux.by_vrid[spec.params.vrid]
            if demux.by_vrid:
                return
            del self.mcast[key]
        sock.close()
        self.sockets.remove(sock)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def _mcast_key(inst: Instance) -> tuple[str, int, str, int]:
    """Multicast sockets are shared per (interface, family, source, IP protocol)."""
    spec = inst.spec
    proto = IPPROTO_AH if spec.auth_type == AUTH_AH else IPPROTO_VRRP
    return (spec.sock_ifname, spec.family, inst.src, proto)
