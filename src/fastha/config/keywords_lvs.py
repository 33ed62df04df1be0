"""LVS side of the keyword table: virtual_server_group, virtual_server, SSL, bfd_instance.

One row per keepalived 2.4 keyword (keepalived.conf(5), LVS and BFD CONFIGURATION).
Old spellings (lb_algo, lb_kind, nb_get_retry, SMTP_CHECK host { }) parse to the same
model fields with a deprecation warning naming the current keyword.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from fastha.config import model_lvs as m
from fastha.config.schema import Block, Keyword
from fastha.config.source import Where
from fastha.config.values import (
    Args,
    BadValue,
    Fallback,
    IPAddress,
    ValueParser,
    boolean,
    choice,
    flag,
    integer,
    ip_address,
    number,
    port,
    string,
    text,
)

# ---------------------------------------------------------------- value parsers

# keepalived's TIMER: decimal seconds, microsecond resolution.
timer = number(0, 4294.967295 * 1000)
uint = integer(0, 2**32 - 1)


def _enum(enum: type[Any], *, casefold: bool) -> ValueParser:
    pick = choice(*(e.value for e in enum), casefold=casefold)
    return lambda args: enum(pick(args))


def _port_or_none(word: str | None) -> int | None:
    if word is None:
        return None
    value = port((word,))
    return value or None  # keepalived: port 0 means "no port"


def _address_port(args: Args) -> dict[str, Any]:
    """`IP [port]` (real_server, sorry_server, virtual_server)."""
    if len(args) > 2:
        raise BadValue(f"extra words: {' '.join(args[2:])}")
    return {"address": ip_address(args), "port": _port_or_none(args[1] if len(args) > 1 else None)}


def _vs_header(args: Args) -> Mapping[str, Any]:
    """`virtual_server IP [port]`, `virtual_server fwmark N`, `virtual_server group NAME`."""
    if not args:
        raise BadValue("missing address, 'fwmark N' or 'group NAME'")
    if args[0] == "fwmark":
        return {"fwmark": integer(1, 2**32 - 1)(args[1:])}
    if args[0] == "group":
        return {"group": string(args[1:])}
    return _address_port(args)


def _name_header(what: str) -> Callable[[Args], Mapping[str, Any]]:
    def parse(args: Args) -> Mapping[str, Any]:
        if not args:
            raise BadValue(f"missing {what} name")
        return {"name": args[0]}

    return parse


def _vsg_item(args: Args, where: Where) -> m.VsgEntry:
    """`fwmark N [inet|inet6]` or `<IP | IP-last | IP-IP | IP/len> [port]`."""
    if args[0] == "fwmark":
        mark = integer(1, 2**32 - 1)(args[1:])
        family = (
            m.Family(choice("inet", "inet6", casefold=False)(args[2:])) if len(args) > 2 else None
        )
        return m.VsgFwmark(where=where, fwmark=mark, family=family)
    if len(args) > 2:
        raise BadValue(f"extra words: {' '.join(args[2:])}")
    first, last = _address_range(args[0])
    return m.VsgRange(
        where=where,
        first=first,
        last=last,
        port=_port_or_none(args[1] if len(args) > 1 else None),
    )


def _address_range(word: str) -> tuple[IPAddress, IPAddress]:
    if "/" in word:
        try:
            net = ipaddress.ip_network(word, strict=False)
        except ValueError:
            raise BadValue(f"'{word}' is not a valid address range") from None
        return net.network_address, net.broadcast_address
    if "-" not in word:
        addr = ip_address((word,))
        return addr, addr
    left, right = word.split("-", 1)
    first = ip_address((left,))
    try:
        last: IPAddress = ipaddress.ip_address(right)
    except ValueError:
        # Short form: the last octet (IPv4, decimal) or group (IPv6, hex) of the end.
        try:
            tail = int(right, 10 if first.version == 4 else 16)
        except ValueError:
            raise BadValue(f"'{word}' is not a valid address range") from None
        limit = 0xFF if first.version == 4 else 0xFFFF
        if not 0 <= tail <= limit:
            raise BadValue(f"'{word}' is not a valid address range") from None
        mask = ~limit & ((1 << first.max_prefixlen) - 1)
        last = ipaddress.ip_address((int(first) & mask) | tail)
    if last.version != first.version:
        raise BadValue(f"'{word}': range ends in a different address family")
    if int(last) < int(first):  # same family (checked above)
        raise BadValue(f"'{word}': range end is before its start")
    return first, last


def _lvs_method(args: Args) -> m.LvsMethod:
    """`NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`."""
    method = m.Method(choice("NAT", "DR", "TUN", casefold=False)(args))
    rest = list(args[1:])
    if rest and method is not m.Method.TUN:
        raise BadValue(f"tunnel options ({' '.join(rest)}) are only valid with TUN")
    tun_type: m.TunnelType | None = None
    tun_port: int | None = None
    tun_csum: m.TunnelCsum | None = None
    while rest:
        word = rest.pop(0)
        if word == "type":
            if not rest:
                raise BadValue("missing tunnel type (ipip, gue or gre)")
            tun_type = m.TunnelType(choice("ipip", "gue", "gre", casefold=False)((rest.pop(0),)))
        elif word == "port":
            if not rest:
                raise BadValue("missing tunnel port")
            tun_port = integer(1, 65535)((rest.pop(0),))
        elif word in ("nocsum", "csum", "remcsum"):
            tun_csum = m.TunnelCsum(word)
        else:
            raise BadValue(f"unknown tunnel option '{word}'")
    if tun_type is m.TunnelType.GUE and tun_port is None:
        raise BadValue("gue tunnel requires a port")
    if tun_port is not None and tun_type is not m.TunnelType.GUE:
        raise BadValue("tunnel port is only valid with type gue")
    if tun_csum is not None and tun_type not in (m.TunnelType.GUE, m.TunnelType.GRE):
        raise BadValue(f"{tun_csum} is only valid with tunnel type gue or gre")
    if tun_csum is m.TunnelCsum.REMCSUM and tun_type is m.TunnelType.GRE:
        raise BadValue("remcsum is not valid with tunnel type gre")
    return m.LvsMethod(method=method, tun_type=tun_type, tun_port=tun_port, tun_csum=tun_csum)


def _notify_script(args: Args) -> m.NotifyScript:
    """`SCRIPT [username [groupname]]` (the script is one word, quoted if it has args)."""
    if not args:
        raise BadValue("missing script")
    if len(args) > 3:
        raise BadValue(f"extra words: {' '.join(args[3:])}")
    return m.NotifyScript(
        command=args[0],
        user=args[1] if len(args) > 1 else None,
        group=args[2] if len(args) > 2 else None,
    )


def _persistence_timeout(args: Args) -> int:
    if not args:
        return m.PERSISTENCE_TIMEOUT_DEFAULT
    return integer(1, 2**32 - 1)(args)


def _persistence_granularity(args: Args) -> str:
    word = string(args)
    if "." in word:
        try:
            ipaddress.IPv4Network(f"0.0.0.0/{word}")
        except ValueError:
            raise BadValue(f"IPv4 persistence_granularity netmask is not solid - {word}") from None
        return word
    try:
        integer(1, 128)((word,))
    except BadValue:
        raise BadValue(f"Invalid IPv6 persistence_granularity specified - {word}") from None
    return word


def _weight(lo: int, hi: int) -> ValueParser:
    def parse(args: Args) -> m.Weight:
        value = integer(lo, hi)(args)
        rest = args[1:]
        if rest and rest[0] != "reverse":
            raise BadValue(f"unknown weight option '{rest[0]}'")
        return m.Weight(value=value, reverse=bool(rest))

    return parse


def _user(args: Args) -> dict[str, Any]:
    if not args:
        raise BadValue("missing user name")
    return {"user": args[0], "group": args[1] if len(args) > 1 else None}


def _hex_nibbles(args: Args, *, wildcard: bool) -> str:
    """keepalived's free-form HEX_STR: each word splits into byte pairs from the left,
    an odd last nibble standing alone ("Ab12f 3" -> ab 12 0f 03)."""
    out: list[str] = []
    allowed = set("0123456789abcdef" + ("x" if wildcard else ""))
    for word in args:
        word = word.lower()
        if not word or set(word) - allowed:
            raise BadValue(f"'{word}' is not a hex string")
        pairs = [word[i : i + 2] for i in range(0, len(word), 2)]
        out.extend(p if len(p) == 2 else "0" + p for p in pairs)
    return "".join(out)


def _payload(args: Args) -> bytes:
    if not args:
        raise BadValue("missing hex payload")
    return bytes.fromhex(_hex_nibbles(args, wildcard=False))


def _require_reply(args: Args) -> str:
    return _hex_nibbles(args, wildcard=True) if args else ""


def _status_codes(args: Args) -> tuple[m.StatusRange, ...]:
    """`status_code 200 300-399 ...` (HTTP codes 100-599)."""
    if not args:
        raise BadValue("missing status code")
    out = []
    for word in args:
        lo_s, _, hi_s = word.partition("-")
        lo = integer(100, 599)((lo_s,))
        hi = integer(100, 599)((hi_s,)) if hi_s else lo
        if hi < lo:
            raise BadValue(f"status code range {word} is backwards")
        out.append(m.StatusRange(lo=lo, hi=hi))
    return tuple(out)


def _digest(args: Args) -> str:
    word = string(args).lower()
    if len(word) != 32 or set(word) - set("0123456789abcdef"):
        raise BadValue(f"digest '{word}' is not an MD5 hex string (32 hex digits)")
    return word


REGEX_OPTIONS = frozenset(
    {
        "allow_empty_class",
        "alt_bsux",
        "auto_callout",
        "caseless",
        "dollar_endonly",
        "dotall",
        "dupnames",
        "extended",
        "firstline",
        "match_unset_backref",
        "multiline",
        "never_ucp",
        "never_utf",
        "no_auto_capture",
        "no_auto_possess",
        "no_dotstar_anchor",
        "no_start_optimize",
        "ucp",
        "ungreedy",
        "utf",
        "never_backslash_c",
        "alt_circumflex",
        "alt_verbnames",
        "use_offset_limit",
    }
)


def _regex_options(args: Args) -> tuple[str, ...]:
    for word in args:
        if word not in REGEX_OPTIONS:
            raise BadValue(f"unknown regex option '{word}'")
    return tuple(args)


def _regex_stack(args: Args) -> tuple[int, int]:
    if len(args) != 2:
        raise BadValue("expects START MAX")
    start, top = uint(args[:1]), uint(args[1:])
    if top < start:
        raise BadValue("regex_stack MAX is below START")
    return start, top


def _const(value: object) -> ValueParser:
    return lambda args: value


# ---------------------------------------------------------------- checkers

_TIMING = (
    Keyword("alpha", boolean),
    Keyword("connect_timeout", timer),
    Keyword("retry", uint),
    Keyword("delay_before_retry", timer),
    Keyword("warmup", timer),
    Keyword("delay_loop", timer),
    Keyword("log_all_failures", boolean),
)

_CONNECTION = (
    Keyword("connect_ip", ip_address),
    Keyword("connect_port", port),
    Keyword("bindto", ip_address),
    Keyword("bind_port", port),
    Keyword("bind_if", string),
    Keyword("fwmark", integer(0, 2**32 - 1)),
)

_URL = Block(
    "url",
    m.Url,
    keywords=(
        Keyword("path", string),
        Keyword("digest", _digest),
        Keyword("status_code", _status_codes),
        Keyword("virtualhost", string),
        Keyword("regex", text),
        Keyword("regex_no_match", flag),
        Keyword("regex_options", _regex_options),
        Keyword("regex_stack", _regex_stack),
        Keyword("regex_min_offset", uint),
        Keyword("regex_max_offset", uint),
    ),
)


def _http(name: str, model: type) -> Block:
    return Block(
        name,
        model,
        keywords=(
            *_TIMING,
            *_CONNECTION,
            Keyword("nb_get_retry", uint, field="retry", deprecated_by="retry"),
            Keyword("url", block=_URL, field="urls", repeat=True),
            Keyword("http_protocol", _enum(m.HttpProtocol, casefold=False)),
            Keyword("virtualhost", string),
            Keyword("fast_recovery", boolean),
            Keyword("enable_sni", boolean),
            Keyword("tls_compliant", boolean),
        ),
    )


_SMTP_HOST = Block("host", m.SmtpHost, keywords=_CONNECTION)

CHECKER_BLOCKS: dict[str, Block] = {
    "HTTP_GET": _http("HTTP_GET", m.HttpGet),
    "SSL_GET": _http("SSL_GET", m.SslGet),
    "TCP_CHECK": Block("TCP_CHECK", m.TcpCheck, keywords=(*_TIMING, *_CONNECTION)),
    "SMTP_CHECK": Block(
        "SMTP_CHECK",
        m.SmtpCheck,
        keywords=(
            *_TIMING,
            *_CONNECTION,
            Keyword("helo_name", string),
            Keyword(
                "host",
                block=_SMTP_HOST,
                field="hosts",
                repeat=True,
                deprecated_by="a separate SMTP_CHECK with connect_ip",
                quiet_deprecation=True,
            ),
        ),
    ),
    "DNS_CHECK": Block(
        "DNS_CHECK",
        m.DnsCheck,
        keywords=(
            *_TIMING,
            *_CONNECTION,
            Keyword("type", _enum(m.DnsType, casefold=True)),
            Keyword("name", string),
        ),
    ),
    "MISC_CHECK": Block(
        "MISC_CHECK",
        m.MiscCheck,
        keywords=(
            *_TIMING,
            Keyword("misc_path", string),
            Keyword("misc_timeout", integer(1, 2**31 - 1)),
            Keyword("misc_dynamic", flag),
            Keyword("user", _user, spreads=True),
        ),
    ),
    "UDP_CHECK": Block(
        "UDP_CHECK",
        m.UdpCheck,
        keywords=(
            *_TIMING,
            *_CONNECTION,
            Keyword("payload", _payload),
            Keyword("require_reply", _require_reply),
            Keyword("min_reply_length", integer(0, 65535)),
            Keyword("max_reply_length", integer(0, 65535)),
        ),
    ),
    "PING_CHECK": Block("PING_CHECK", m.PingCheck, keywords=(*_TIMING, *_CONNECTION)),
    "FILE_CHECK": Block(
        "FILE_CHECK",
        m.FileCheck,
        keywords=(
            Keyword("track_file", string),
            Keyword("dynamic", flag),
            Keyword("weight", _weight(-(2**31 - 1), 2**31 - 1)),
        ),
    ),
    "BFD_CHECK": Block(
        "BFD_CHECK",
        m.BfdCheck,
        keywords=(
            Keyword("name", string),
            Keyword("alpha", boolean),
        ),
    ),
}

_CHECKERS = tuple(
    Keyword(name, block=block, field="checkers", repeat=True)
    for name, block in CHECKER_BLOCKS.items()
)

# ---------------------------------------------------------------- servers

_SERVER_TIMING = (
    Keyword("connect_timeout", timer),
    Keyword("retry", uint),
    Keyword("delay_before_retry", timer),
    Keyword("warmup", timer),
    Keyword("delay_loop", timer),
)

REAL_SERVER = Block(
    "real_server",
    m.RealServer,
    header=_address_port,
    keywords=(
        *_SERVER_TIMING,
        # check_parser.c rs_weight_handler: 0 to IPVS_WEIGHT_MAX (INT32_MAX), read with
        # ignore_error ("2x" runs as 2); so are the thresholds.
        Keyword("weight", integer(0, 2**31 - 1, lenient=True)),
        Keyword("lvs_method", _lvs_method),
        Keyword("inhibit_on_failure", boolean),
        Keyword("notify_up", _notify_script),
        Keyword("notify_down", _notify_script),
        Keyword("uthreshold", integer(0, 2**32 - 1, lenient=True)),
        Keyword("lthreshold", integer(0, 2**32 - 1, lenient=True)),
        Keyword("smtp_alert", boolean),
        Keyword("virtualhost", string),
        Keyword("snmp_name", string),
        Keyword("alpha", boolean),
        *_CHECKERS,
    ),
)

_FLAGS = tuple(Keyword(f.value, _const(f), field="flags", repeat=True) for f in m.SchedFlag)

VIRTUAL_SERVER = Block(
    "virtual_server",
    m.VirtualServer,
    header=_vs_header,
    keywords=(
        *_SERVER_TIMING,
        Keyword("lvs_sched", _enum(m.Scheduler, casefold=False)),
        Keyword(
            "lb_algo",
            _enum(m.Scheduler, casefold=False),
            field="lvs_sched",
            deprecated_by="lvs_sched",
            quiet_deprecation=True,
        ),
        *_FLAGS,
        # vs_weight_handler: 1 to INT32_MAX, read with ignore_error.
        Keyword("weight", integer(1, 2**31 - 1, lenient=True)),
        Keyword("lvs_method", _lvs_method),
        Keyword(
            "lb_kind",
            _lvs_method,
            field="lvs_method",
            deprecated_by="lvs_method",
            quiet_deprecation=True,
        ),
        Keyword("persistence_engine", string),
        Keyword("persistence_timeout", _persistence_timeout),
        Keyword("persistence_granularity", _persistence_granularity),
        Keyword("protocol", _enum(m.Protocol, casefold=True)),
        Keyword("ha_suspend", flag),
        Keyword("smtp_alert", boolean),
        Keyword("virtualhost", string),
        Keyword("snmp_name", string),
        Keyword("alpha", flag),
        Keyword("omega", flag),
        # check_parser.c: read with ignore_error.
        Keyword("quorum", integer(1, 2**32 - 1, lenient=True)),
        Keyword("hysteresis", integer(0, 2**32 - 1, lenient=True)),
        Keyword("quorum_up", _notify_script),
        Keyword("quorum_down", _notify_script),
        Keyword("ip_family", _enum(m.Family, casefold=False)),
        Keyword("sorry_server", lambda args: m.SorryServer(**_address_port(args))),
        Keyword("sorry_server_inhibit", flag),
        Keyword("sorry_server_lvs_method", _lvs_method),
        Keyword("inhibit_on_failure", flag),
        Keyword("real_server", block=REAL_SERVER, field="real_servers", repeat=True),
    ),
)

VIRTUAL_SERVER_GROUP = Block(
    "virtual_server_group", m.VirtualServerGroup, header=_name_header("group"), items=_vsg_item
)

SSL = Block(
    "SSL",
    m.SslConfig,
    keywords=(
        Keyword("password", string),
        Keyword("ca", string),
        Keyword("certificate", string),
        Keyword("key", string),
    ),
)


def _bfd_ms(lo: int, hi: int) -> ValueParser:
    """keepalived's read_decimal_unsigned_strvec(..., 3): milliseconds to the microsecond;
    a 4th decimal place is "too many decimal places" and rounds (the value is used)."""

    def parse(args: Args) -> float:
        word = args[0] if args else ""
        if word.startswith("-"):
            raise BadValue(f"negative number '{word}'")
        whole, _, frac = word.partition(".")
        if not (whole + frac).isdigit():
            raise BadValue(f"invalid number '{word}'")
        us = int(whole or "0") * 1000 + int((frac[:3] + "000")[:3])
        us += len(frac) > 3 and frac[3] >= "5"
        if not lo * 1000 <= us <= hi * 1000:
            raise BadValue(f"number '{word}' outside range [{lo}.000, {hi}.000]")
        if len(frac) > 3:
            raise Fallback(f"number '{word}' has too many decimal places", us / 1000)
        return us / 1000

    return parse


def _bfd_weight(args: Args) -> m.Weight:
    """bfd_vrrp_weight_handler: `weight N [reverse]`; another third word is reported and
    the weight kept."""
    value = integer(-253, 253, lenient=True)(args)
    if len(args) > 1 and args[1] != "reverse":
        raise Fallback(f"unknown weight option {args[1]}", m.Weight(value=value))
    return m.Weight(value=value, reverse=len(args) > 1)


_BFD_MS_MAX = 2**32 // 1000  # BFD_MINRX_MAX: UINT32_MAX / 1000

# bfd/bfd_parser.c (keepalived 2.2.7). `multihop` is 2.2.8's: 2.2.7 calls it an unknown
# keyword, and so does fastha.
BFD_INSTANCE = Block(
    "bfd_instance",
    m.BfdInstance,
    header=_name_header("bfd_instance"),
    keywords=(
        Keyword("neighbor_ip", ip_address, aliases=("neighbour_ip",)),
        Keyword("source_ip", ip_address),
        Keyword("min_rx", _bfd_ms(1, _BFD_MS_MAX)),
        Keyword("min_tx", _bfd_ms(1, _BFD_MS_MAX)),
        Keyword("idle_tx", _bfd_ms(1000, _BFD_MS_MAX)),
        Keyword("multiplier", integer(1, 255)),
        Keyword("passive", flag),
        Keyword("ttl", integer(1, 255), aliases=("hoplimit",)),
        Keyword("max_hops", integer(-1, 255)),
        Keyword("weight", _bfd_weight),
        Keyword("vrrp", flag),
        Keyword("checker", flag),
    ),
)

LVS_ROOT_KEYWORDS: tuple[Keyword, ...] = (
    Keyword(
        "virtual_server_group",
        block=VIRTUAL_SERVER_GROUP,
        field="virtual_server_groups",
        repeat=True,
    ),
    Keyword("virtual_server", block=VIRTUAL_SERVER, field="virtual_servers", repeat=True),
    Keyword("SSL", block=SSL, field="ssl"),
    Keyword("bfd_instance", block=BFD_INSTANCE, field="bfd_instances", repeat=True),
)
