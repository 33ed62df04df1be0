"""keepalived's watch on its own routes and rules (keepalived_netlink.c
netlink_route_filter / netlink_rule_filter): one of the protocol-18 (RTPROT_KEEPALIVED)
routes or rules it installed, deleted by someone else (``ip route del``):

- a virtual route of an instance in MASTER, or a virtual rule: keepalived
  set_vrrp_backup -- the instance leaves MASTER as when one of its VIPs is deleted
  (the VIPs, routes and rules removed) and, with Master_Down_Timer = Skew_Time, takes
  it back at once unless another router does (everything reinstalled);
- a static route or rule: put back ("Restoring deleted static route ...").

Routes and rules installed without tracking (``no_track``: not protocol 18) are not
watched. Matching follows keepalived's route_is_ours (table, family, prefix length,
metric, TOS, the interface when the route names one, destination) and compare_rule
(family, source, destination, table, preference).

One NETLINK_ROUTE socket joined to the IPv4/IPv6 route and rule groups, read through
fastha.drivers.nlsocket as addrwatch does; a malformed message is dropped and counted.
What the VRRP child does about a deletion is fastha.runtime.vrrp.route_watch's job.

    w = RouteWatch(on_gone)    # on_gone(Gone), called on the next loop pass
    w.open()
    w.close()
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from fastha.drivers import nlsocket
from fastha.vrrp.addresses import VirtualRoute, VirtualRule

log = logging.getLogger(__name__)

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE = 7, 8, 11, 19
GROUPS = (RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE)
RTM_DELROUTE, RTM_DELRULE = 25, 33
RTPROT_KEEPALIVED = 18
RTA_DST, RTA_OIF, RTA_PRIORITY, RTA_TABLE = 1, 4, 6, 15
FRA_DST, FRA_SRC, FRA_PRIORITY, FRA_TABLE, FRA_PROTOCOL = 1, 2, 6, 15, 21
_HDR = nlsocket.NLMSG_HDR
_RTM = struct.Struct("=BBBBBBBBI")  # rtmsg / fib_rule_hdr (same layout)
_AF: dict[int, int] = {socket.AF_INET: 4, socket.AF_INET6: 16}
SIOCGIFFLAGS, IFF_UP, IFF_RUNNING = 0x8913, 0x1, 0x40


@dataclass(frozen=True, slots=True)
class Gone:
    """A deleted protocol-18 route (``rule`` False) or rule, as the kernel reported it."""

    rule: bool
    family: int
    dst: str  # "ADDR/LEN"; "0.0.0.0/0" / "::/0" for a default route or "all"
    src: str  # rules: the `from` prefix
    table: int
    priority: int  # a route's metric (0 without), a rule's preference
    tos: int = 0
    oif: int = 0


def _prefix(family: int, raw: bytes | None, plen: int) -> str:
    size = _AF[family]
    if raw is None:
        raw = bytes(size)
    if len(raw) != size:
        raise ValueError(f"address of {len(raw)} bytes")
    return f"{ipaddress.ip_address(raw)}/{plen}"


def _u32(raw: bytes | None, default: int = 0) -> int:
    return default if raw is None or len(raw) < 4 else struct.unpack_from("=I", raw)[0]


def parse_deletion(msg: bytes) -> Gone | None:
    """The deleted protocol-18 route or rule in one whole netlink message; None for any
    other message. ValueError when malformed."""
    found = nlsocket.head(msg, (RTM_DELROUTE, RTM_DELRULE), _RTM.size)
    if found is None:
        return None
    length, mtype = found
    family, dst_len, src_len, tos, table, b5, _b6, _b7, _flags = _RTM.unpack_from(msg, _HDR.size)
    if family not in _AF:
        return None
    a = nlsocket.attributes(msg, _HDR.size + _RTM.size, length)
    if mtype == RTM_DELROUTE:
        if b5 != RTPROT_KEEPALIVED:  # rtm_protocol
            return None
        return Gone(
            False,
            family,
            _prefix(family, a.get(RTA_DST), dst_len),
            "",
            _u32(a.get(RTA_TABLE), table),
            _u32(a.get(RTA_PRIORITY)),
            tos,
            _u32(a.get(RTA_OIF)),
        )
    proto = a.get(FRA_PROTOCOL)
    if proto is not None and proto[:1] != bytes([RTPROT_KEEPALIVED]):
        return None
    return Gone(
        True,
        family,
        _prefix(family, a.get(FRA_DST), dst_len),
        _prefix(family, a.get(FRA_SRC), src_len),
        _u32(a.get(FRA_TABLE), table),
        _u32(a.get(FRA_PRIORITY)),
        tos,
    )


def _net(value: str | None, family: int) -> str:
    if value is None or value in ("default", "all"):
        return "0.0.0.0/0" if family == socket.AF_INET else "::/0"
    return str(ipaddress.ip_network(value, strict=False))


def _route_family(route: VirtualRoute) -> int:
    if route.dst != "default":
        return socket.AF_INET6 if ":" in route.dst else socket.AF_INET
    return route.family or socket.AF_INET


def route_matches(gone: Gone, route: VirtualRoute, *, virtual: bool) -> bool:
    """keepalived route_is_ours: a virtual route compares the metric and the interface
    too; a static one only table, family, TOS and destination."""
    if gone.rule or route.proto != RTPROT_KEEPALIVED:
        return False
    family = _route_family(route)
    if (gone.family, gone.table, gone.tos) != (family, route.table or 254, route.tos or 0):
        return False
    if gone.dst != _net(route.dst, family):
        return False
    if not virtual:
        return True
    if gone.priority != (route.metric or 0):
        return False
    if route.dev:
        try:
            return gone.oif == socket.if_nametoindex(route.dev)
        except OSError:
            return False
    return True


def rule_matches(gone: Gone, rule: VirtualRule) -> bool:
    """keepalived compare_rule, on what fastha installs: family, from, to, table and
    preference."""
    if not gone.rule or rule.protocol not in (None, RTPROT_KEEPALIVED):
        return False
    family = rule.family or socket.AF_INET
    return (gone.family, gone.src, gone.dst, gone.priority) == (
        family,
        _net(rule.from_, family),
        _net(rule.to, family),
        rule.priority or 0,
    ) and (rule.table is None or gone.table == rule.table)


def link_usable(ifindex: int) -> bool:
    """Is interface ``ifindex`` up and running (carrier)? A route the kernel drops
    because its link went down is the link event's business (FAULT): keepalived reads
    that event first on its one netlink socket; fastha's link watch is another socket,
    so the kernel's current state decides (SIOCGIFFLAGS: this namespace's view)."""
    if not ifindex:
        return True
    try:
        name = socket.if_indextoname(ifindex)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = struct.pack("16sH14x", name.encode(), 0)
            flags = struct.unpack_from("=H", fcntl.ioctl(s, SIOCGIFFLAGS, req), 16)[0]
    except OSError:
        return False  # gone with its interface
    return bool(flags & (IFF_UP | IFF_RUNNING) == IFF_UP | IFF_RUNNING)


class RouteWatch:
    """Deletions of protocol-18 routes and rules, each handed to ``on_gone`` on the next
    loop pass (a reload's own deletions, under its lock, are then told apart)."""

    def __init__(self, on_gone: Callable[[Gone], None]) -> None:
        self.on_gone = on_gone
        self.malformed = 0
        self._reader: nlsocket.Reader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def watching(self) -> bool:
        return self._reader is not None

    def open(self) -> RouteWatch:
        self._loop = asyncio.get_running_loop()
        try:
            sock = nlsocket.open_socket(NETLINK_ROUTE, rcvbuf=1 << 20)
            for group in GROUPS:  # groups above 32 need the membership option, not bind
                sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
        except OSError as exc:
            log.warning("cannot watch routes and rules: %s", exc.strerror or exc)
            return self
        # bounded: an event storm must not starve the loop
        self._reader = nlsocket.Reader(
            sock, self._on_data, self._on_error, bufsize=1 << 16, budget=64
        )
        self._reader.attach(self._loop)
        return self

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    @staticmethod
    def _on_error(exc: OSError) -> bool:
        # ENOBUFS: events lost; the next deletion still counts.
        log.warning("netlink route watch: %s", exc.strerror or exc)
        return False

    def _on_data(self, data: bytes) -> None:
        msgs, malformed = nlsocket.messages(data)
        self.malformed += malformed
        for off, length, _type, _flags, _seq in msgs:
            try:
                gone = parse_deletion(data[off : off + length])
            except ValueError as exc:
                self.malformed += 1
                log.debug("netlink route message dropped: %s", exc)
                continue
            if gone is not None and self._loop is not None:
                self._loop.call_soon(self.on_gone, gone)
