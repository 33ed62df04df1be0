"""Keyword tables of the VRRP side (keepalived's vrrp/vrrp_parser.c), and their values.

Value ranges are the ones keepalived's parser enforces; relations between keywords
(priority vs state, strict mode, references) are in validate_vrrp.py.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from fastha.config import route_options, rttables
from fastha.config.model import Script
from fastha.config.model_vrrp import (
    Authentication,
    AuthType,
    GarpGroup,
    InterfaceUpDownDelay,
    LinkbeatInterface,
    NextHop,
    ParamMatch,
    State,
    Tracked,
    TrackFile,
    TrackGroup,
    UnicastPeer,
    UseIpvlan,
    UseVmac,
    VirtualAddress,
    VirtualRoute,
    VirtualRule,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
    VrrpTrackProcess,
)
from fastha.config.schema import Block, Keyword
from fastha.config.source import Where
from fastha.config.values import (
    Args,
    BadValue,
    Fallback,
    MissingValue,
    boolean,
    choice,
    flag,
    integer,
    ip_address,
    ip_interface,
    number,
    settle,
    string,
    text,
    words,
)

# --- shared value parsers -------------------------------------------------------------


def script(args: Args) -> Script:
    """`CMD [username [groupname]]`; a command with arguments must be quoted."""
    if not args:
        raise BadValue("missing script")
    return Script(
        command=args[0],
        username=args[1] if len(args) > 1 else None,
        groupname=args[2] if len(args) > 2 else None,
    )


def named(args: Args) -> Mapping[str, Any]:
    """A block header naming the block: `vrrp_instance VI_1 {`."""
    if not args:
        raise BadValue("missing name")
    return {"name": args[0]}


def weight_reverse(lo: int, hi: int) -> Callable[[Args], Mapping[str, Any]]:
    """`weight N [reverse]` spread into `weight` and `weight_reverse`."""
    parse = integer(lo, hi, lenient=True)  # keepalived: read_int_strvec(..., true)

    def parse_weight(args: Args) -> Mapping[str, Any]:
        value, problem = settle(parse, args)
        rest = args[1:]
        if rest and rest[0] != "reverse":
            raise BadValue(f"unknown word '{rest[0]}' after weight")
        out = {"weight": value, "weight_reverse": bool(rest)}
        if problem:
            raise Fallback(problem, out)
        return out

    return parse_weight


def tracked(lo: int, hi: int, *, allow_reverse: bool = True) -> Callable[[Args, Where], Tracked]:
    """One line of a track_* block: `NAME [weight N [reverse]]`."""
    parse = integer(lo, hi, lenient=True)  # keepalived: read_int_strvec(..., true)

    def item(args: Args, where: Where) -> Tracked:
        name, rest = args[0], list(args[1:])
        weight: int | None = None
        reverse = False
        problem = None
        while rest:
            word = rest.pop(0)
            if word == "weight":
                weight, problem = settle(parse, tuple(rest[:1]))
                rest = rest[1:]
            elif word == "reverse" and allow_reverse:
                reverse = True
            else:
                raise BadValue(f"{name}: unknown word '{word}'")
        out = Tracked(name=name, weight=weight, reverse=reverse, where=where)
        if problem:
            raise Fallback(f"{name}: {problem}", out)
        return out

    return item


def tracked_bfd(args: Args, where: Where) -> Tracked:
    """One track_bfd line, as vrrp_track.c alloc_track_bfd reads it: `NAME [weight N
    [reverse|noreverse]]`; a bad line is ignored (its message said), a bad weight is
    the bfd_instance's, words after the fourth are not looked at."""
    name, rest = args[0], list(args[1:])
    weight: int | None = None
    reverse = False
    if rest:
        if rest[0] != "weight":
            raise BadValue(f"unknown track bfd {name} option {rest[0]} - ignoring")
        if len(rest) == 1:
            raise BadValue(f"weight without value specified for track bfd {name} - ignoring")
        weight, problem = settle(integer(-253, 253, lenient=True), (rest[1],))
        if len(rest) >= 3:
            if rest[2] not in ("reverse", "noreverse"):
                raise BadValue(f"unknown track bfd {name} weight option {rest[2]} - ignoring")
            reverse = rest[2] == "reverse"
        out = Tracked(name=name, weight=weight, reverse=reverse, where=where)
        if problem:
            raise Fallback(
                f"weight for track bfd {name} must be in [-253..253] inclusive. Ignoring...",
                replace(out, weight=None),
            )
        return out
    return Tracked(name=name, where=where)


def names(args: Args, where: Where) -> tuple[str, ...]:
    return tuple(args)


# --- addresses, routes and rules (ip addr / ip route / ip rule syntax) -------------------

_SCOPES = ("host", "link", "global", "site", "nowhere", "universe")


def _scope(word: str) -> str:
    if word in _SCOPES or word.isdigit():
        return word
    raise BadValue(f"invalid scope '{word}'")


def _take(rest: list[str], what: str) -> str:
    if not rest:
        # keepalived reads past the end of the line: null_strvec, it exits.
        raise MissingValue(f"missing value for '{what}'")
    return rest.pop(0)


def virtual_address(args: Args, where: Where) -> VirtualAddress:
    """`IP[/len] [brd IP|+|-] [dev IF] [scope S] [label L] [peer IP[/len]] [home]
    [-nodad] [noprefixroute] [autojoin] [preferred_lft N] [track_group G] [no_track]
    [use_vmac [NAME]]` (keepalived's vrrp_ipaddress.c parse_ipaddress)."""
    address = ip_interface(args[0])
    fields: dict[str, Any] = {}
    rest = list(args[1:])
    while rest:
        word = rest.pop(0)
        if word in ("brd", "broadcast"):
            value = _take(rest, word)
            if value in ("+", "-"):
                fields["brd_op"] = value
            else:
                fields["brd"] = ip_address((value,))
        elif word == "dev":
            fields["dev"] = _take(rest, word)
        elif word == "scope":
            fields["scope"] = _scope(_take(rest, word))
        elif word == "label":
            fields["label"] = _take(rest, word)
        elif word == "peer":
            fields["peer"] = ip_interface(_take(rest, word))
        elif word == "home":
            fields["home"] = True
        elif word == "-nodad":
            fields["nodad"] = True
        elif word == "noprefixroute":
            fields["noprefixroute"] = True
        elif word == "autojoin":
            fields["autojoin"] = True
        elif word == "preferred_lft":
            value = _take(rest, word)
            fields["preferred_lft"] = 0 if value == "forever" else integer(0)((value,))
        elif word == "track_group":
            fields["track_group"] = _take(rest, word)
        elif word == "no_track":
            fields["no_track"] = True
        elif word == "use_vmac":
            fields["use_vmac"] = True
            if rest and not rest[0].startswith(("-",)) and rest[0] not in _ADDRESS_WORDS:
                fields["vmac_name"] = rest.pop(0)
        else:
            raise BadValue(f"unknown option '{word}' for address {args[0]}")
    if address.version == 6 and fields.get("brd") is not None:
        raise BadValue("brd is not valid for an IPv6 address")
    for key in ("brd", "peer"):
        other = fields.get(key)
        if other is not None and other.version != address.version:
            raise BadValue(f"{key} {other} is not the same family as {address}")
    return VirtualAddress(address=address, where=where, **fields)


_ADDRESS_WORDS = frozenset(
    [
        "brd",
        "broadcast",
        "dev",
        "scope",
        "label",
        "peer",
        "home",
        "-nodad",
        "noprefixroute",
        "autojoin",
        "preferred_lft",
        "track_group",
        "no_track",
        "use_vmac",
    ]
)

_ROUTE_TYPES = frozenset(
    [
        "unicast",
        "blackhole",
        "unreachable",
        "prohibit",
        "throw",
        "local",
        "broadcast",
        "anycast",
        "multicast",
        "nat",
    ]
)
# Route metrics (RTA_METRICS, rtnetlink.h RTAX_*) as vrrp_iproute.c alloc_route reads
# them; the first group takes an optional `lock` before its value.
_ROUTE_LOCKABLE = frozenset(
    [
        "mtu",
        "advmss",
        "rtt",
        "rttvar",
        "reordering",
        "window",
        "cwnd",
        "ssthresh",
        "rto_min",
        "initcwnd",
        "initrwnd",
    ]
)
_ROUTE_METRICS = _ROUTE_LOCKABLE | {"hoplimit", "features", "quickack", "fastopen_no_cookie"}
# Metrics whose value is a time (`rtt 100ms`): in the kernel's units (route_options.rtt).
_ROUTE_TIME_METRICS = frozenset(["rtt", "rttvar", "rto_min"])
# Options keepalived 2.2.7 accepts that fastha keeps as written but does not install yet
# (validate_vrrp says so for each line that has one: never dropped in silence).
_ROUTE_KEPT_OPTIONS = frozenset(
    ["from", "realms", "expires", "pref", "ttl-propagate", "encap", "vrf", "as"]
)
_ROUTE_KEPT_FLAGS = frozenset(["add", "prepend", "append"])


def _u32(word: str, what: str) -> int:
    return integer(0, 0xFFFFFFFF)((word,)) if word.isdigit() else _bad(what, word)


def _bad(what: str, word: str) -> Any:
    raise BadValue(what % word)


def _table(word: str, what: str) -> int:
    """`table NAME|N`, resolved as keepalived resolves it (fastha.config.rttables)."""
    number = rttables.table_id(word)
    if number is None:
        raise BadValue(f"Routing table {word} not found for {what}")
    return number


def _tos(word: str) -> int:
    try:
        value = int(word, 16)  # iproute2's rt_dsfield / keepalived: hexadecimal
    except ValueError:
        raise BadValue(f"TOS value {word} is invalid") from None
    if not 0 <= value <= 255:
        raise BadValue(f"TOS value {word} is invalid")
    return value


def _tracked_protocol(kind: str, fields: dict[str, Any]) -> str | None:
    """keepalived installs what it tracks with protocol keepalived (18); a tracked line
    with another protocol gets it reset, with this message (the line is kept)."""
    if fields.get("no_track"):
        return None
    given = fields.get("protocol")
    fields["protocol"] = rttables.RTPROT_KEEPALIVED
    if given is not None and given != rttables.RTPROT_KEEPALIVED:
        return (
            f"{kind} cannot be tracked if protocol is not RTPROT_KEEPALIVED"
            f"({rttables.RTPROT_KEEPALIVED}), resetting protocol"
        )
    return None


def _network(word: str, family: int | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        net = ipaddress.ip_network(word, strict=False)
    except ValueError:
        raise BadValue(f"'{word}' is not a valid address or prefix") from None
    if family is not None and net.version != family:
        raise BadValue(f"{word} is not IPv{family}")
    return net


# `inet` / `inet6` before a route's or rule's words: the address family they are in.
_FAMILIES = {"inet": 4, "inet6": 6}


def virtual_route(args: Args, where: Where) -> VirtualRoute:
    """An `ip route add` line, with exactly the words keepalived 2.2.7 reads
    (vrrp_iproute.c alloc_route): any other word is keepalived's "unknown route keyword"
    and the line is dropped, as keepalived drops it."""
    rest = list(args)
    fields: dict[str, Any] = {}
    options: list[tuple[str, str]] = []
    metrics: list[tuple[str, int | str]] = []
    lock: list[str] = []
    family: int | None = None
    to: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    seen_to = False
    or_problem = None
    while rest:
        word = rest.pop(0)
        if word in _FAMILIES:
            family = _FAMILIES[word]
        elif word == "src":
            fields["src"] = ip_address((_take(rest, word),))
        elif word in ("via", "gw"):
            value = _take(rest, word)
            if value in ("inet", "inet6"):
                value = _take(rest, word)
            fields["via"] = ip_address((value,))
        elif word in ("dev", "oif"):
            fields["dev"] = _take(rest, word)
        elif word == "table":
            fields["table"] = _table(_take(rest, word), "route")
        elif word in ("metric", "preference", "priority"):
            fields["metric"] = integer(0, 0xFFFFFFFF)((_take(rest, word),))
        elif word == "scope":
            fields["scope"] = _scope(_take(rest, word))
        elif word == "protocol":
            value = _take(rest, word)
            number = rttables.protocol_id(value)
            if number is None:
                raise BadValue(f"Protocol {value} not found or invalid for route")
            fields["protocol"] = number
        elif word in ("tos", "dsfield"):
            fields["tos"] = _tos(_take(rest, word))
        elif word == "onlink":
            fields["onlink"] = True
        elif word == "track_group":
            fields["track_group"] = _take(rest, word)
        elif word == "no_track":
            fields["no_track"] = True
        elif word in _ROUTE_METRICS:
            value = _take(rest, word)
            if word in _ROUTE_LOCKABLE and value == "lock":
                lock.append(word)
                value = _take(rest, word)
            if word in _ROUTE_TIME_METRICS:
                metrics.append((word, route_options.rtt(word, value)))
            elif word == "features":
                if value != "ecn":
                    raise BadValue(f"feature {value} not supported")
                metrics.append((word, 1))
            else:
                metrics.append((word, _u32(value, f"Invalid {word} %s specified for route")))
        elif word == "congctl":
            value = _take(rest, word)
            if value == "lock":
                lock.append(word)
                value = _take(rest, word)
            metrics.append((word, value))
        elif word in _ROUTE_KEPT_OPTIONS:
            value = _take(rest, word)
            if word == "as" and value == "to":
                value = _take(rest, word)
            options.append((word, route_options.parse(word, value)))
        elif word in _ROUTE_KEPT_FLAGS:
            options.append((word, ""))
        elif word == "nexthop":
            fields["nexthops"] = _nexthops([word, *rest], family)
            rest = []
        elif word == "or":
            # keepalived (deprecated form): the via and this address become two next
            # hops of a multipath route; a second `or` is ignored.
            value = _take(rest, word)
            or_problem = '"or" for routes is deprecated. Please use "nexthop"'
            if "nexthops" not in fields:
                via = fields.pop("via", None)
                fields["nexthops"] = (NextHop(via=via), NextHop(via=ip_address((value,))))
        else:
            if word == "to":
                word = _take(rest, word)
            if word in _ROUTE_TYPES:
                fields["type"] = word
                word = _take(rest, word)
            seen_to = True
            if word in ("default", "default6"):
                if word == "default6":
                    family = 6
                to = None
            else:
                try:
                    to = _network(word, family)
                except BadValue:
                    raise BadValue(f"unknown route keyword {word}") from None
    if not seen_to:
        raise BadValue("Route must have a destination")
    fam = to.version if to is not None else (family or 4)
    if family is not None and family != fam:
        raise BadValue(f"Cannot mix IPv4 and IPv6 addresses for route ({to})")
    for key in ("src", "via"):
        addr = fields.get(key)
        if addr is not None and addr.version != fam:
            raise BadValue("Cannot mix IPv4 and IPv6 addresses for route")
    for name, _value in options:
        forced = route_options.FAMILY.get(name)
        if forced is not None and forced != fam:
            raise BadValue(f"{name} is only valid for IPv{forced}")
    problem = _tracked_protocol("Route", fields) or or_problem
    route = VirtualRoute(
        to=to,
        family=fam,
        options=tuple(options),
        metrics=tuple(metrics),
        lock=tuple(lock),
        where=where,
        **fields,
    )
    if problem:
        raise Fallback(problem, route)
    return route


def _nexthops(words: list[str], family: int | None) -> tuple[NextHop, ...]:
    """`nexthop via A dev I weight N onlink nexthop ...` (vrrp_iproute.c parse_nexthops):
    anything else after them is "Route has trailing nonsense"."""
    hops: list[NextHop] = []
    while words and words[0] == "nexthop":
        words.pop(0)
        hop: dict[str, Any] = {}
        while words and words[0] != "nexthop":
            word = words.pop(0)
            if word == "via":
                value = _take(words, word)
                if value in ("inet", "inet6"):
                    value = _take(words, word)
                addr = ip_address((value,))
                if family is not None and addr.version != family:
                    raise BadValue("Address family mismatch for next hop")
                family = addr.version
                hop["via"] = addr
            elif word == "dev":
                hop["dev"] = _take(words, word)
            elif word == "weight":
                value = _take(words, word)
                weight = integer(0, 256)((value,))
                if not weight:
                    raise BadValue("Invalid weight 0 specified for route")
                hop["weight"] = weight
            elif word == "onlink":
                hop["onlink"] = True
            elif word in ("realms", "encap", "as"):
                raise BadValue(f"nexthop {word} is not supported by fastha yet")
            else:
                raise BadValue(f"Route has trailing nonsense - {word}")
        hops.append(NextHop(**hop))
    return tuple(hops)


_RULE_ACTIONS = frozenset(["blackhole", "unreachable", "prohibit", "nop"])


def _range(word: str, what: str, hi: int) -> str:
    first, _, last = word.partition("-")
    try:
        lo_v, hi_v = int(first), int(last or first)
    except ValueError:
        raise BadValue(f"invalid {what} range {word}") from None
    if not 0 <= lo_v <= hi_v <= hi:
        raise BadValue(f"invalid {what} range {word}")
    return f"{lo_v}:{hi_v}"


def virtual_rule(args: Args, where: Where) -> VirtualRule:
    """An `ip rule add` line, with exactly the words keepalived 2.2.7 reads
    (vrrp_iprule.c alloc_rule): any other word is "Unknown rule option" and the line is
    dropped, as keepalived drops it."""
    rest = list(args)
    fields: dict[str, Any] = {}
    options: list[tuple[str, str]] = []
    family: int | None = None
    action: str | None = None
    # keepalived reports these and keeps the rule without the word's value.
    problems: list[str] = []

    def set_action(value: str) -> None:
        nonlocal action
        if action is not None:
            raise BadValue(
                "Cannot specify more than one of table/nop/goto/blackhole/prohibit/unreachable"
                "/l3mdev for rule"
            )
        action = value

    while rest:
        word = rest.pop(0)
        if word in _FAMILIES:
            family = _FAMILIES[word]
        elif word == "not":
            fields["invert"] = True
        elif word in ("from", "to"):
            value = _take(rest, word)
            net = None if value == "all" else _network(value, family)
            if net is not None:
                family = net.version
            fields["from_" if word == "from" else "to"] = net
        elif word in ("table", "lookup"):
            table = _table(_take(rest, word), "rule")
            if table == 0:
                raise BadValue("Table 0 is not valid")
            fields["table"] = table
            set_action("table")
        elif word in ("preference", "order", "priority"):
            fields["priority"] = integer(0, 0xFFFFFFFF)((_take(rest, word),))
        elif word in ("tos", "dsfield"):
            fields["tos"] = _tos(_take(rest, word))
        elif word == "fwmark":
            mark, _, mask = _take(rest, word).partition("/")
            fields["fwmark"] = integer(0, 0xFFFFFFFF)((mark,))
            if mask:
                fields["fwmask"] = integer(0, 0xFFFFFFFF)((mask,))
        elif word in ("dev", "iif"):
            fields["iif"] = _take(rest, word)
        elif word == "oif":
            fields["oif"] = _take(rest, word)
        elif word in ("suppress_prefixlength", "sup_pl"):
            fields["suppress_prefixlength"] = integer(0, 128)((_take(rest, word),))
        elif word == "protocol":
            # read_unsigned_strvec: a number only (a route's takes rt_protos names).
            value = _take(rest, word)
            if value.isdigit() and int(value) <= 255:
                fields["protocol"] = int(value)
            else:
                problems.append(f"Invalid protocol {value}")
        elif word == "ipproto":
            value = _take(rest, word)
            try:
                fields["ipproto"] = int(value) if value.isdigit() else socket.getprotobyname(value)
            except OSError:
                raise BadValue(f"Invalid ipproto {value}") from None
        elif word in ("sport", "dport"):
            # sscanf("%hu-%hu") must read both: a single port is keepalived's
            # "invalid sport range" (the rule is kept without it).
            value = _take(rest, word)
            if "-" in value:
                fields[word] = _range(value, word, 65535)
            else:
                problems.append(f"invalid {word} range {value}")
        elif word == "uidrange":
            fields["uidrange"] = _range(_take(rest, word), "uid", 0xFFFFFFFF)
        elif word == "l3mdev":
            fields["l3mdev"] = True
            set_action("table")
        elif word in ("realms", "suppress_ifgroup", "sup_group", "tunnel-id"):
            options.append((word, _take(rest, word)))
        elif word == "track_group":
            fields["track_group"] = _take(rest, word)
        elif word == "no_track":
            fields["no_track"] = True
        else:
            if word == "type":
                word = _take(rest, word)
            if word == "goto":
                fields["goto"] = integer(0, 0xFFFFFFFF)((_take(rest, word),))
                set_action("goto")
            elif word in _RULE_ACTIONS:
                set_action(word)
            else:
                raise BadValue(f"Unknown rule option {word}")
    if action is None:
        raise BadValue("No action specified for rule - ignoring")
    if action == "goto":
        prio = fields.get("priority")
        if prio is None:
            raise BadValue(
                f"Invalid rule - goto target {fields['goto']} specified without preference"
            )
        if prio >= fields["goto"]:
            raise BadValue(f"Invalid rule - preference {prio} >= goto target {fields['goto']}")
    problem = _tracked_protocol("Rule", fields)
    if problem:
        problems.append(problem)
    rule = VirtualRule(
        family=family or 4, action=action, options=tuple(options), where=where, **fields
    )
    if problems:
        raise Fallback("; ".join(problems), rule)
    return rule


# --- vrrp_instance ----------------------------------------------------------------------


def unicast_peer(args: Args, where: Where) -> UnicastPeer:
    """`IP [min_ttl N] [max_ttl N]`."""
    address = ip_address(args[:1])
    fields: dict[str, int] = {}
    rest = list(args[1:])
    while rest:
        word = rest.pop(0)
        if word not in ("min_ttl", "max_ttl"):
            raise BadValue(f"unknown unicast_peer option '{word}'")
        fields[word] = integer(0, 255)((_take(rest, word),))
    return UnicastPeer(
        address=address, where=where, min_ttl=fields.get("min_ttl"), max_ttl=fields.get("max_ttl")
    )


def use_vmac(args: Args) -> UseVmac:
    name = mac = None
    for word in args:
        if word.count(":") == 5:
            mac = word
        elif name is None:
            if len(word) > 15:
                raise BadValue(f"VMAC interface name '{word}' too long")
            name = word
        else:
            raise BadValue(f"unexpected word '{word}'")
    return UseVmac(name=name, mac=mac)


def use_ipvlan(args: Args) -> UseIpvlan:
    fields: dict[str, Any] = {}
    for word in args:
        if word in ("bridge", "private", "vepa"):
            fields["mode"] = word
        elif "name" not in fields and "address" not in fields:
            try:
                fields["address"] = ipaddress.ip_interface(word)
            except ValueError:
                fields["name"] = word
        else:
            fields["address"] = ip_interface(word)
    return UseIpvlan(**fields)


def advert_int(args: Args) -> float:
    # keepalived bounds it to [0.01, 255] here; v2/v3 limits and rounding are checked
    # per version in normalise_vrrp.py.
    return number(0.01, 255)(args)


def garp_extra_if(args: Args) -> Mapping[str, Any]:
    all_ = bool(args) and args[0] == "all"
    value, problem = settle(integer(0, 86400, lenient=True), args[1:] if all_ else args)
    out = {"garp_extra_if": value, "garp_extra_if_all": all_}
    if problem:
        raise Fallback(problem, out)
    return out


def old_unicast_checksum(args: Args) -> str:
    if args and args[0] != "never":
        raise BadValue(f"unknown option '{args[0]}'")
    return args[0] if args else ""


def lvs_sync_daemon_interface(args: Args) -> str:
    return string(args)


def debug_level(args: Args) -> int:
    return integer(0, 4)(args) if args else 1


def _track_block(name: str, lo: int, hi: int, reverse: bool = True) -> Block:
    return Block(name, items=tracked(lo, hi, allow_reverse=reverse))


def _track_keywords() -> tuple[Keyword, ...]:
    # Weights as keepalived's parser bounds them (vrrp_parser.c): interfaces, scripts
    # and processes -253..253 ... except files, which go to 254 (a negative file value).
    return (
        Keyword(
            "track_interface",
            field="track_interfaces",
            block=_track_block("track_interface", -253, 253),
        ),
        Keyword(
            "track_script", field="track_scripts", block=_track_block("track_script", -253, 253)
        ),
        Keyword("track_file", field="track_files", block=_track_block("track_file", -254, 254)),
        Keyword(
            "track_process",
            field="track_processes",
            block=_track_block("track_process", -253, 253),
        ),
        Keyword("track_bfd", field="track_bfds", block=Block("track_bfd", items=tracked_bfd)),
    )


def _notify_keywords() -> tuple[Keyword, ...]:
    return (
        Keyword("notify_master", script),
        Keyword("notify_backup", script),
        Keyword("notify_fault", script),
        Keyword("notify_stop", script),
        Keyword("notify_deleted", script),
        Keyword("notify", script),
        Keyword("notify_priority_changes", boolean),
        Keyword("smtp_alert", boolean),
    )


ADDRESS_BLOCK = Block("virtual_ipaddress", items=virtual_address)
ROUTE_BLOCK = Block("virtual_routes", items=virtual_route)
RULE_BLOCK = Block("virtual_rules", items=virtual_rule)

AUTHENTICATION = Block(
    "authentication",
    model=Authentication,
    keywords=(
        # vrrp_auth_type_handler: strcmp, so `pass` is "unknown authentication type" and the
        # instance runs without authentication (as its keepalived peers would).
        Keyword("auth_type", lambda a: AuthType(choice("PASS", "AH", casefold=False)(a))),
        Keyword("auth_pass", string),
    ),
)


def garp_keywords(prefix: str) -> tuple[Keyword, ...]:
    """The gratuitous ARP/NA timings, per instance (`garp_master_delay` ...) and as
    global defaults (`vrrp_garp_master_delay` ...): keepalived reads both alike, with
    ignore_error (a word with junk runs as strtoul's number), a repeat of 0 as 1."""
    count = integer(0, 2**31 - 1, lenient=True)
    repeat = integer(0, 2**32 - 1, lenient=True, zero=1)
    return (
        Keyword(f"{prefix}garp_master_delay", count),
        Keyword(f"{prefix}garp_master_repeat", repeat),
        Keyword(f"{prefix}garp_lower_prio_delay", count),
        Keyword(f"{prefix}garp_lower_prio_repeat", count),
        Keyword(f"{prefix}garp_master_refresh", count),
        Keyword(f"{prefix}garp_master_refresh_repeat", repeat),
    )


VRRP_INSTANCE = Block(
    "vrrp_instance",
    model=VrrpInstance,
    header=named,
    keywords=(
        # vrrp_parser.c vrrp_state_handler: strcmp, so `master` is "unknown state 'master',
        # defaulting to BACKUP".
        Keyword(
            "state",
            lambda a: State(choice("MASTER", "BACKUP", casefold=False, fallback="BACKUP")(a)),
        ),
        Keyword("interface", string),
        Keyword("vrf", string),
        Keyword("use_vmac", use_vmac),
        Keyword("use_vmac_addr", flag),
        Keyword("vmac_xmit_base", flag),
        Keyword("use_ipvlan", use_ipvlan),
        Keyword("native_ipv6", flag),
        Keyword("dont_track_primary", flag),
        *_track_keywords(),
        Keyword("fastha_bfd_master_down", string),  # fastha's extension (docs/MIGRATING.md)
        Keyword("mcast_src_ip", ip_address, aliases=("unicast_src_ip",)),
        Keyword("mcast_dst_ip", ip_address),
        Keyword("track_src_ip", flag),
        Keyword("version", integer(2, 3, lenient=True)),
        Keyword("check_unicast_src", flag),
        Keyword(
            "unicast_peer",
            field="unicast_peers",
            block=Block("unicast_peer", items=unicast_peer),
        ),
        Keyword("unicast_fault_no_peer", flag),
        Keyword("unicast_ttl", integer(0, 255)),
        Keyword("old_unicast_checksum", old_unicast_checksum),
        *garp_keywords(""),
        Keyword("garp_extra_if", garp_extra_if, spreads=True),
        Keyword(
            "vmac_garp_intvl",
            garp_extra_if,
            spreads=True,
            deprecated_by="garp_extra_if",
        ),
        Keyword("down_timer_adverts", integer(1, 100, lenient=True)),
        Keyword("lower_prio_no_advert", boolean),
        Keyword("higher_prio_send_advert", boolean),
        Keyword("virtual_router_id", integer(1, 255)),
        # "Priority not valid! must be between 1 & 255. Using default 100" (even with
        # state MASTER, whose unset priority would be 255).
        Keyword("priority", integer(1, 255, fallback=100)),
        Keyword("advert_int", advert_int),
        Keyword("authentication", block=AUTHENTICATION),
        Keyword("virtual_ipaddress", field="virtual_ipaddresses", block=ADDRESS_BLOCK),
        Keyword(
            "virtual_ipaddress_excluded",
            field="virtual_ipaddresses_excluded",
            block=Block("virtual_ipaddress_excluded", items=virtual_address),
        ),
        Keyword("promote_secondaries", flag),
        Keyword("virtual_routes", block=ROUTE_BLOCK),
        Keyword("virtual_rules", block=RULE_BLOCK),
        Keyword("accept", flag),
        Keyword("no_accept", lambda a: False, field="accept"),
        Keyword("nopreempt", flag),
        # `preempt` is the default; keepalived accepts it to undo nopreempt.
        Keyword("preempt", lambda a: False, field="nopreempt"),
        Keyword("preempt_delay", number(0, 1000)),
        Keyword("skip_check_adv_addr", boolean),
        Keyword("strict_mode", boolean),
        Keyword("debug", debug_level),
        *_notify_keywords(),
        Keyword("notify_master_rx_lower_pri", script),
        Keyword("kernel_rx_buf_size", integer(0)),
        Keyword(
            "linkbeat_use_polling",
            flag,
            deprecated_by="linkbeat_interfaces",
        ),
        Keyword(
            "lvs_sync_daemon_interface",
            lvs_sync_daemon_interface,
            deprecated_by="lvs_sync_daemon",
        ),
    ),
)

# --- vrrp_sync_group ----------------------------------------------------------------------

VRRP_SYNC_GROUP = Block(
    "vrrp_sync_group",
    model=VrrpSyncGroup,
    header=named,
    keywords=(
        Keyword("group", block=Block("group", items=names, flatten=True)),
        *_track_keywords(),
        *_notify_keywords(),
        Keyword("sync_group_tracking_weight", flag),
        Keyword(
            "global_tracking",
            flag,
            field="sync_group_tracking_weight",
            deprecated_by="sync_group_tracking_weight",
        ),
    ),
    # keepalived 1.x listed the instances straight in the sync group block.
    rest=Keyword("group", words, deprecated_by="group { ... }", extends=True),
)

# --- trackers -------------------------------------------------------------------------------


def script_user(args: Args) -> Mapping[str, Any]:
    if not args:
        raise BadValue("missing username")
    return {"user": args[0], "group": args[1] if len(args) > 1 else None}


VRRP_SCRIPT = Block(
    "vrrp_script",
    model=VrrpScript,
    header=named,
    keywords=(
        # Keeps all words: `script /bin/check arg` and `script "/bin/check arg"` agree.
        Keyword("script", text),
        Keyword("interval", integer(0, 4294, lenient=True, zero=1)),
        Keyword("timeout", integer(0, 4294, lenient=True, zero=1)),
        Keyword("weight", weight_reverse(-253, 253), spreads=True),
        Keyword("rise", integer(1, 2**31 - 1, lenient=True, fallback=1)),
        Keyword("fall", integer(1, 2**31 - 1, lenient=True, fallback=1)),
        Keyword("user", script_user, spreads=True),
        Keyword("init_fail", flag),
    ),
)


def init_file(args: Args) -> Mapping[str, Any]:
    fields: dict[str, Any] = {"init_file": True}
    for word in args:
        if word == "overwrite":
            fields["init_file_overwrite"] = True
        else:
            fields["init_file_value"] = integer()((word,))
    return fields


TRACK_FILE = Block(
    "track_file",
    model=TrackFile,
    header=named,
    keywords=(
        Keyword("file", string),
        Keyword("weight", weight_reverse(-(2**31) + 1, 2**31 - 1), spreads=True),
        Keyword("init_file", init_file, spreads=True),
    ),
)

VRRP_TRACK_PROCESS = Block(
    "vrrp_track_process",
    model=VrrpTrackProcess,
    header=named,
    keywords=(
        Keyword("process", words),
        # Bare `param_match`: the parameters must match exactly.
        Keyword(
            "param_match",
            lambda a: (
                ParamMatch(choice("initial", "partial", casefold=False)(a))
                if a
                else ParamMatch.EXACT
            ),
        ),
        Keyword("weight", weight_reverse(-253, 253), spreads=True),
        Keyword("quorum", integer(1, 65535, lenient=True)),
        Keyword("quorum_max", integer(0, 65535, lenient=True)),
        Keyword("fork_delay", number(0)),
        Keyword("terminate_delay", number(0)),
        # `delay` sets both fork and terminate delay.
        Keyword(
            "delay",
            lambda a: dict.fromkeys(("fork_delay", "terminate_delay"), number(0)(a)),
            spreads=True,
        ),
        Keyword("full_command", flag),
    ),
)

GARP_GROUP = Block(
    "garp_group",
    model=GarpGroup,
    keywords=(
        Keyword("garp_interval", number(0, 1000)),
        Keyword("gna_interval", number(0, 1000)),
        Keyword("interface", lambda a: (string(a),), field="interfaces", extends=True),
        Keyword("interfaces", block=Block("interfaces", items=names, flatten=True)),
    ),
)

TRACK_GROUP = Block(
    "track_group",
    model=TrackGroup,
    header=named,
    keywords=(Keyword("group", block=Block("group", items=names, flatten=True)),),
)


def linkbeat_interface(args: Args, where: Where) -> LinkbeatInterface:
    method = None
    if len(args) > 1:
        method = choice("MII", "ETHTOOL", "IOCTL", casefold=False)(args[1:])
    return LinkbeatInterface(name=args[0], method=method, where=where)


def up_down_delay(args: Args, where: Where) -> InterfaceUpDownDelay:
    if len(args) < 2:
        raise BadValue(f"{args[0]}: missing down delay")
    down = number(0, 255)(args[1:2])
    up = number(0, 255)(args[2:3]) if len(args) > 2 else None
    return InterfaceUpDownDelay(name=args[0], down_delay=down, up_delay=up, where=where)


VRRP_ROOT_KEYWORDS: tuple[Keyword, ...] = (
    Keyword(
        "linkbeat_interfaces",
        block=Block("linkbeat_interfaces", items=linkbeat_interface),
    ),
    Keyword(
        "interface_up_down_delays",
        block=Block("interface_up_down_delays", items=up_down_delay),
    ),
    Keyword("track_group", field="track_groups", block=TRACK_GROUP, repeat=True),
    Keyword(
        "static_ipaddress",
        field="static_ipaddresses",
        block=Block("static_ipaddress", items=virtual_address),
        repeat=True,
    ),
    Keyword(
        "static_routes",
        block=Block("static_routes", items=virtual_route),
        repeat=True,
    ),
    Keyword(
        "static_rules",
        block=Block("static_rules", items=virtual_rule),
        repeat=True,
    ),
    Keyword("track_file", field="track_files", block=TRACK_FILE, repeat=True),
    Keyword(
        "vrrp_track_file",
        field="track_files",
        block=TRACK_FILE,
        repeat=True,
        deprecated_by="track_file",
    ),
    Keyword(
        "vrrp_track_process",
        field="vrrp_track_processes",
        block=VRRP_TRACK_PROCESS,
        repeat=True,
    ),
    Keyword("vrrp_script", field="vrrp_scripts", block=VRRP_SCRIPT, repeat=True),
    Keyword("vrrp_sync_group", field="vrrp_sync_groups", block=VRRP_SYNC_GROUP, repeat=True),
    Keyword("garp_group", field="garp_groups", block=GARP_GROUP, repeat=True),
    Keyword("vrrp_instance", field="vrrp_instances", block=VRRP_INSTANCE, repeat=True),
)
