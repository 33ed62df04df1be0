"""The route options keepalived 2.2.7 parses into kernel values (vrrp_iproute.c
alloc_route, vrrp_ip_rule_route_parser.c): ``from``, ``realms``, ``expires``, ``pref``,
``ttl-propagate`` and the time metrics ``rtt``/``rttvar``/``rto_min``.

Each parser returns the value the kernel gets, as keepalived computes it, or raises
BadValue with keepalived's words (the route line is then dropped, as keepalived drops
it). The model keeps them in ``VirtualRoute.options`` as (name, value) and
fastha.vrrp.route_attrs puts them in the RTM_NEWROUTE request.
"""

from __future__ import annotations

import ipaddress
import re
from decimal import Decimal, InvalidOperation

from fastha.config import rttables
from fastha.config.values import BadValue

# Options whose value the kernel gets (the rest of the kept options are only noted).
INSTALLED = frozenset(["from", "realms", "expires", "pref", "ttl-propagate"])
# The family an option forces (keepalived sets it, and refuses the other one).
FAMILY = {"from": 6, "expires": 6, "pref": 6, "realms": 4}
# include/net/tcp.h: rtt values between 0.2 and 120 s (keepalived resets to the bounds).
RTT_MIN_MS, RTT_MAX_MS = 200, 120_000
# RTAX_RTT is in 1/8 ms, RTAX_RTTVAR in 1/4 ms, RTAX_RTO_MIN in ms.
RTT_UNITS = {"rtt": 8, "rttvar": 4, "rto_min": 1}
PREFS = {"low": 3, "medium": 0, "high": 1}  # ICMPV6_ROUTER_PREF_*


def rtt(name: str, word: str) -> int:
    """get_time_rtt: a bare number is in the kernel's units; ``Nms``/``Ns`` (``sec``,
    ``secs``) are times; then clamped to 0.2 s .. 120 s."""
    mult = RTT_UNITS[name]
    bad = BadValue(f"Invalid {name} {word} for route")
    text = word.strip()
    m = re.search(r"[sS]", text)
    raw, shift = True, 0
    if m is not None:
        if text[m.start() :].lower() not in ("s", "sec", "secs"):
            raise bad
        raw, end = False, m.start()
        if end > 0 and text[end - 1].lower() == "m":
            end -= 1
        else:
            shift = 3
        if end == 0:
            raise bad
        text = text[:end]
    if re.search(r"[eE]", text) or not re.fullmatch(r"\d+(\.\d*)?", text):
        raise bad
    try:
        scaled = Decimal(text) * (10**shift)
    except InvalidOperation:
        raise bad from None
    if scaled != scaled.to_integral_value() or scaled > RTT_MAX_MS * mult:
        raise bad
    value = int(scaled) * (1 if raw else mult)
    return max(RTT_MIN_MS * mult, min(RTT_MAX_MS * mult, value))


def realms(word: str) -> int:
    """``FROM/TO`` or ``TO``: names from /etc/iproute2/rt_realms or numbers (0-255)."""
    parts = word.split("/", 1)
    ids: list[int] = []
    for part in parts:
        realm = rttables.realm_id(part)
        if realm is None:
            raise BadValue(f"Invalid realms {word} for route")
        ids.append(realm)
    return (ids[0] << 16) | ids[1] if len(ids) == 2 else ids[0]


def route_from(word: str) -> str:
    try:
        net = ipaddress.ip_network(word, strict=False)
    except ValueError:
        raise BadValue(f"invalid route from address {word}") from None
    if net.version != 6:
        raise BadValue(f"route from address only supported with IPv6 ({word})")
    return str(net)


def expires(word: str) -> int:
    if not word.isdigit() or int(word) > 0xFFFFFFFF:
        raise BadValue(f"Invalid expires time {word} specified for route")
    return int(word)


def pref(word: str) -> int:
    if word in PREFS:
        return PREFS[word]
    if not word.isdigit() or int(word) > 255:
        raise BadValue(f"Invalid pref value {word} specified for route")
    return int(word)


def ttl_propagate(word: str) -> int | None:
    """enabled 1, disabled 0; anything else is only reported by keepalived (None)."""
    return {"enabled": 1, "disabled": 0}.get(word)


def parse(name: str, word: str) -> str:
    """A kept option's value as the kernel gets it (a string in the model)."""
    if name == "from":
        return route_from(word)
    if name == "realms":
        return str(realms(word))
    if name == "expires":
        return str(expires(word))
    if name == "pref":
        return str(pref(word))
    if name == "ttl-propagate":
        # keepalived reports a value it does not know and sends 0 (the line stays).
        return str(ttl_propagate(word) or 0)
    return word
