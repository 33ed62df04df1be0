"""Socket options of a raw VRRP socket (drivers/vrrp_socket): where adverts go and
what the socket receives, for IPv4 and IPv6, as keepalived's vrrp instance says.

``setup4`` / ``setup6`` configure a socket already bound to its device and return its
destinations: one per unicast peer, else the multicast group (joined here).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastha.drivers.vrrp_socket import VrrpSocketConfig

# Linux values that the socket module may not export.
IP_MULTICAST_ALL = getattr(socket, "IP_MULTICAST_ALL", 49)
IPV6_MULTICAST_ALL = 29
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
IPV6_RECVHOPLIMIT = getattr(socket, "IPV6_RECVHOPLIMIT", 51)
IPV6_HOPLIMIT = getattr(socket, "IPV6_HOPLIMIT", 52)
IPV6_TCLASS = getattr(socket, "IPV6_TCLASS", 67)
# keepalived's if_setsockopt_priority: IP_TOS / IPV6_TCLASS 0xc0 (internet control, CS6).
TOS_INTERNETCONTROL = 0xC0
_INT = struct.Struct("=i")

Cmsg = list[tuple[int, int, bytes]]


@dataclass(frozen=True, slots=True)
class Destinations:
    """Where each advert goes: ``sendto`` addresses, each one's packed address (for a
    Framer building the IP header) and the ancillary data sent with every copy."""

    dests: tuple[tuple[object, ...], ...]
    packed: tuple[bytes, ...] = ()
    cmsg: Cmsg | None = None


def setup4(sock: socket.socket, cfg: VrrpSocketConfig, ifindex: int) -> Destinations:
    # Only the groups this socket joined, not every group any socket on the host joined.
    sock.setsockopt(socket.IPPROTO_IP, IP_MULTICAST_ALL, 0)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, cfg.mcast_ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, cfg.unicast_ttl)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, TOS_INTERNETCONTROL)
    if cfg.hdrincl:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    # struct ip_mreqn {imr_multiaddr, imr_address, imr_ifindex}: pick the interface
    # by index so an interface without an IPv4 address still works.
    src = socket.inet_aton(cfg.src) if cfg.src else bytes(4)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, bytes(4) + src + _INT.pack(ifindex))
    # bind() would also filter what we receive to packets sent to src, which drops
    # every multicast advert: for multicast, IP_MULTICAST_IF above sets the source.
    if cfg.src and cfg.unicast_peers:
        sock.bind((cfg.src, 0))
    dests: tuple[tuple[object, ...], ...]
    if cfg.unicast_peers:
        dests = tuple((p, 0) for p in cfg.unicast_peers)
    else:
        group = socket.inet_aton(cfg.group)
        mreqn = group + bytes(4) + _INT.pack(ifindex)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        dests = ((cfg.group, 0),)
    return Destinations(dests, tuple(socket.inet_aton(str(d[0])) for d in dests))


def setup6(sock: socket.socket, cfg: VrrpSocketConfig, ifindex: int) -> Destinations:
    ifx = ifindex
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, cfg.mcast_ttl)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, cfg.unicast_ttl)
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, TOS_INTERNETCONTROL)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifx)
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    # kernel >= 4.20; without it the device binding still filters interfaces
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MULTICAST_ALL, 0)
    cmsg: Cmsg = []
    # As for IPv4, binding filters received multicast; the kernel sources multicast
    # adverts from the interface's link-local address (RFC 5798 5.1.2.1).
    if cfg.src and cfg.unicast_peers:
        scope = ifx if ipaddress.IPv6Address(cfg.src).is_link_local else 0
        sock.bind((cfg.src, 0, 0, scope))
    elif cfg.src:
        # An in6_pktinfo on every send pins the source without filtering what we
        # receive (bind would). Left to itself the kernel may source adverts from a
        # link-local VIP once it is added, and the v3 checksum (pseudo-header over
        # src) then fails at every peer.
        pktinfo = socket.inet_pton(socket.AF_INET6, cfg.src) + _INT.pack(ifx)
        cmsg = [(socket.IPPROTO_IPV6, IPV6_PKTINFO, pktinfo)]
    dests: tuple[tuple[object, ...], ...]
    if cfg.unicast_peers:
        dests = tuple(
            (p, 0, 0, ifx if ipaddress.IPv6Address(p).is_link_local else 0)
            for p in cfg.unicast_peers
        )
    else:
        mreq = socket.inet_pton(socket.AF_INET6, cfg.group) + _INT.pack(ifx)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        dests = ((cfg.group, 0, 0, ifx),)
    return Destinations(dests, (), cmsg)
