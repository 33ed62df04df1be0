"""The addresses, routes and rules a VRRP instance owns while it is master, as keepalived's
``virtual_ipaddress``, ``virtual_routes`` and ``virtual_rules`` lines say them.

Pure values: the core builds them from the configuration and hands them to the netlink
driver (``fastha.drivers.netlink``), which adds and deletes them. ``request()`` spells a
route or rule the way rtnetlink takes it (pyroute2's attribute names); it is a
translation, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastha.wire import AF_INET, AF_INET6, family_of

SCOPES = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}
ROUTE_TYPES = {"unicast": 1, "local": 2, "broadcast": 3, "anycast": 4, "multicast": 5,
               "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9}  # fmt: skip
PROTOS = {"unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "ra": 9,
          "dhcp": 16, "keepalived": 18}  # fmt: skip


def scope_number(value: int | str | None) -> int | None:
    """An address or route scope as rtnetlink takes it: a number, or one of `ip`'s names."""
    if value is None or isinstance(value, int):
        return value
    return SCOPES[value] if value in SCOPES else int(value)


@dataclass(frozen=True, slots=True)
class VirtualAddress:
    """One keepalived ``virtual_ipaddress`` line:
    ``<IP>[/<prefix>] [brd <IP>] [dev <ifname>] [scope <scope>] [label <label>]
    [peer <IP>] [home] [-nodad|nodad] [noprefixroute] [preferred_lft <secs>]``."""

    address: str
    prefixlen: int | None = None  # None: /32 or /128, as keepalived
    dev: str = ""
    broadcast: str | None = None  # "brd +" in configs becomes the computed address upstream
    scope: int | str | None = None
    label: str | None = None
    peer: str | None = None
    home: bool = False
    nodad: bool = False
    noprefixroute: bool = False
    preferred_lft: int | None = None  # keepalived uses 0 to deprecate a VIP as source

    @property
    def family(self) -> int:
        return family_of(self.address)

    @property
    def plen(self) -> int:
        if self.prefixlen is not None:
            return self.prefixlen
        return 128 if self.family == AF_INET6 else 32

    def __str__(self) -> str:
        return f"{self.address}/{self.plen} dev {self.dev}"


RTNH_F_ONLINK = 4
FIB_RULE_INVERT = 2
# `ip route` metric names -> pyroute2's RTA_METRICS names, and rtnetlink.h RTAX_* index.
_RTAX_NAMES = {"congctl": "cc_algo"}
_RTAX_INDEX = {
    "mtu": 2, "window": 3, "rtt": 4, "rttvar": 5, "ssthresh": 6, "cwnd": 7, "advmss": 8,
    "reordering": 9, "hoplimit": 10, "initcwnd": 11, "features": 12, "rto_min": 13,
    "initrwnd": 14, "quickack": 15, "cc_algo": 16, "fastopen_no_cookie": 17,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class VirtualRoute:
    """One keepalived ``virtual_routes`` line (``src``, ``to``, ``via``/``gw``, ``dev``,
    ``table``, ``metric``, ``scope``, ``proto``, and the blackhole/unreachable/prohibit
    types)."""

    dst: str  # "10.0.0.0/8", "default" (family from ``family`` then)
    via: str | None = None
    src: str | None = None
    dev: str | None = None
    table: int | None = None
    metric: int | None = None
    scope: int | str | None = None
    proto: int | str | None = None
    type: str = "unicast"
    family: int | None = None
    tos: int | None = None
    onlink: bool = False
    # RTA_METRICS as `ip route` names them (mtu, advmss, hoplimit, congctl...) and the
    # ones locked.
    metrics: tuple[tuple[str, int | str], ...] = ()
    lock: tuple[str, ...] = ()
    # RTA_MULTIPATH: (via, dev, weight 1-256, onlink) per next hop.
    nexthops: tuple[tuple[str | None, str | None, int | None, bool], ...] = ()

    def request(self, index_of: Callable[[str], int]) -> dict[str, Any]:
        req: dict[str, Any] = {}
        family = self.family
        if self.dst != "default":
            net = ipaddress.ip_network(self.dst, strict=False)
            req["dst"] = str(net.network_address)
            req["dst_len"] = net.prefixlen
            family = family or (AF_INET6 if net.version == 6 else AF_INET)
        elif self.via:
            family = family or family_of(self.via)
        req["family"] = family or AF_INET
        if self.via:
            req["gateway"] = self.via
        if self.src:
            req["prefsrc"] = self.src
        if self.dev:
            req["oif"] = index_of(self.dev)
        if self.table is not None:
            req["table"] = self.table
        if self.metric is not None:
            req["priority"] = self.metric
        if self.scope is not None:
            req["scope"] = scope_number(self.scope)
        if self.proto is not None:
            req["proto"] = (
                PROTOS.get(self.proto, self.proto) if isinstance(self.proto, str) else self.proto
            )
        req["type"] = ROUTE_TYPES[self.type]
        if self.tos is not None:
            req["tos"] = self.tos
        if self.onlink:
            req["flags"] = RTNH_F_ONLINK
        if self.nexthops:
            hops = []
            for via, dev, weight, onlink in self.nexthops:
                hop: dict[str, Any] = {"hops": (weight or 1) - 1}
                if via:
                    hop["gateway"] = via
                    family = family or family_of(via)
                if dev:
                    hop["oif"] = index_of(dev)
                if onlink:
                    hop["flags"] = RTNH_F_ONLINK
                hops.append(hop)
            req["multipath"] = hops
            req["family"] = req.get("family") or family or AF_INET
        if self.metrics or self.lock:
            metrics: dict[str, int | str] = {
                _RTAX_NAMES.get(name, name): value for name, value in self.metrics
            }
            mask = 0
            for name in self.lock:
                mask |= 1 << _RTAX_INDEX[_RTAX_NAMES.get(name, name)]
            if mask:
                metrics["lock"] = mask
            req["metrics"] = metrics
        return req

    def __str__(self) -> str:
        return " ".join(
            p for p in (self.type if self.type != "unicast" else "", self.dst,
                        f"via {self.via}" if self.via else "", f"dev {self.dev}" if self.dev else "",
                        f"table {self.table}" if self.table is not None else "") if p
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class VirtualRule:
    """One keepalived ``virtual_rules`` line (``from``, ``to``, ``table``, ``priority``,
    ``iif``, ``oif``, ``fwmark[/mask]``)."""

    from_: str | None = None  # "from" in the config
    to: str | None = None
    table: int | None = None
    priority: int | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    action: str = "to_tbl"  # or "blackhole", "unreachable", "prohibit", "goto"...
    family: int | None = None
    invert: bool = False  # `not`
    goto: int | None = None
    tos: int | None = None
    protocol: int | None = None  # FRA_PROTOCOL
    suppress_prefixlen: int | None = None
    ip_proto: int | None = None
    sport: str | None = None  # "lo:hi"
    dport: str | None = None
    uid_range: str | None = None
    l3mdev: bool = False

    def request(self) -> dict[str, Any]:
        req: dict[str, Any] = {"action": self.action}
        if self.protocol is not None:
            req["protocol"] = self.protocol
        family = self.family
        for key, value in (("src", self.from_), ("dst", self.to)):
            if value and value != "all":
                net = ipaddress.ip_network(value, strict=False)
                req[key] = str(net.network_address)
                req[f"{key}_len"] = net.prefixlen
                family = family or (AF_INET6 if net.version == 6 else AF_INET)
        req["family"] = family or AF_INET
        if self.table is not None:
            req["table"] = self.table
        if self.priority is not None:
            req["priority"] = self.priority
        if self.iif:
            req["iifname"] = self.iif
        if self.oif:
            req["oifname"] = self.oif
        if self.fwmark is not None:
            req["fwmark"] = self.fwmark
            if self.fwmask is not None:
                req["fwmask"] = self.fwmask
        if self.invert:
            req["flags"] = FIB_RULE_INVERT
        if self.goto is not None:
            req["goto"] = self.goto
        for key, value in (("tos", self.tos), ("protocol", self.protocol),
                           ("suppress_prefixlen", self.suppress_prefixlen),
                           ("ip_proto", self.ip_proto), ("sport_range", self.sport),
                           ("dport_range", self.dport), ("uid_range", self.uid_range)):  # fmt: skip
            if value is not None:
                req[key] = value
        if self.l3mdev:
            req["l3mdev"] = 1
        return req

    def __str__(self) -> str:
        target = f"table {self.table}" if self.action == "to_tbl" else self.action
        if self.goto is not None:
            target = f"goto {self.goto}"
        invert = "not " if self.invert else ""
        return f"{invert}from {self.from_ or 'all'} to {self.to or 'all'} {target} priority {self.priority}"
