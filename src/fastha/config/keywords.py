"""The keyword table: `ROOT` (top-level keywords) and `global_defs` (core/global_parser.c).

The VRRP blocks live in keywords_vrrp.py, the LVS ones in keywords_lvs.py.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from fastha.config.keywords_vrrp import VRRP_ROOT_KEYWORDS, garp_keywords, script
from fastha.config.model import (
    Config,
    Fifo,
    FlushOnStop,
    GarpExtraIf,
    GlobalDefs,
    LvsSyncDaemon,
    LvsTimeouts,
    RunAs,
    RxBufsPolicy,
)
from fastha.config.schema import Block, Keyword
from fastha.config.source import Where
from fastha.config.values import (
    Args,
    BadValue,
    Fallback,
    boolean,
    flag,
    integer,
    ip_address,
    number,
    port,
    string,
    words,
)

try:
    from fastha.config.keywords_lvs import LVS_ROOT_KEYWORDS
except ImportError:  # the LVS tables are written alongside; until then parse VRRP only
    LVS_ROOT_KEYWORDS = ()


def optional_string(args: Args) -> str:
    """`reload_file [PATH]`: "" when the keyword stands alone (use keepalived's default)."""
    return args[0] if args else ""


def smtp_server(args: Args) -> Mapping[str, Any]:
    host = string(args)
    fields: dict[str, Any] = {"smtp_server": host}
    if len(args) > 1:
        fields["smtp_server_port"] = port(args[1:])
    return fields


def mcast_group(version: int) -> Any:
    def parse(args: Args) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        addr = ip_address(args)
        if addr.version != version or not addr.is_multicast:
            raise BadValue(f"{addr} is not an IPv{version} multicast address")
        return addr

    return parse


def fifo(args: Args) -> Fifo:
    name = string(args)
    return Fifo(
        name=name,
        username=args[1] if len(args) > 1 else None,
        groupname=args[2] if len(args) > 2 else None,
    )


def run_as(args: Args) -> RunAs:
    return RunAs(username=string(args), groupname=args[1] if len(args) > 1 else None)


def lvs_sync_daemon(args: Args) -> LvsSyncDaemon:
    """`IF [[inst] VI] [id N] [maxlen N] [port N] [ttl N] [group IP]` (global_parser.c)."""
    if not args:
        raise BadValue("lvs_sync_daemon requires interface")
    if len(args[0]) > 15:
        raise BadValue(f"lvs_sync_daemon interface name '{args[0]}' too long")
    fields: dict[str, Any] = {"interface": args[0]}
    rest = list(args[1:])
    # Backward compatibility: a bare second word is the VRRP instance.
    if rest and rest[0] not in ("inst", "id", "maxlen", "port", "ttl", "group"):
        fields["instance"] = rest.pop(0)
    while rest:
        word = rest.pop(0)
        if not rest:
            raise BadValue(f"lvs_sync_daemon: missing value for '{word}'")
        value = rest.pop(0)
        if word == "inst":
            fields["instance"] = value
        elif word == "id":
            fields["id"] = integer(0, 255)((value,))
        elif word == "maxlen":
            fields["maxlen"] = integer(1, 65507)((value,))
        elif word == "port":
            fields["port"] = integer(1, 65535)((value,))
        elif word == "ttl":
            fields["ttl"] = integer(1, 255)((value,))
        elif word == "group":
            group = ip_address((value,))
            if not group.is_multicast:
                raise BadValue(f"lvs_sync_daemon group address {value} is not multicast")
            fields["group"] = group
        else:
            raise BadValue(f"unknown lvs_sync_daemon option '{word}'")
    return LvsSyncDaemon(**fields)


def lvs_timeouts(args: Args) -> LvsTimeouts:
    if not args:
        raise BadValue("lvs_timeouts requires at least one option")
    fields: dict[str, int] = {}
    rest = list(args)
    while rest:
        word = rest.pop(0)
        if word not in ("tcp", "tcpfin", "udp"):
            raise BadValue(f"unknown option {word} specified for lvs_timeouts")
        if not rest:
            raise BadValue(f"no value specified for lvs_timeout {word}")
        fields[word] = integer(0, 86400 * 31)((rest.pop(0),))
    return LvsTimeouts(**fields)


def lvs_flush_on_stop(args: Args) -> FlushOnStop:
    if not args:
        return FlushOnStop.ALL
    if args[0] == "VS":
        return FlushOnStop.VS
    raise BadValue(f"unknown lvs_flush_on_stop type {args[0]}")


def garp_extra_if(args: Args) -> GarpExtraIf:
    all_ = bool(args) and args[0] == "all"
    return GarpExtraIf(interval=integer(0, 86400)(args[1:] if all_ else args), all=all_)


def cpu_affinity(args: Args) -> tuple[int, ...]:
    if not args:
        raise BadValue("no cpu_id set specified")
    return tuple(integer(0, 4095)((w,)) for w in args)


def dynamic_interfaces(args: Args) -> Mapping[str, Any]:
    if args and args[0] != "allow_if_changes":
        raise BadValue(f"unknown dynamic_interfaces option '{args[0]}'")
    return {"dynamic_interfaces": True, "dynamic_interfaces_allow_if_changes": bool(args)}


def rx_bufs_policy(args: Args) -> Mapping[str, Any]:
    """keepalived global_parser.c vrrp_rx_bufs_policy_handler: MTU, ADVERT or a size;
    any word but MTU/ADVERT makes keepalived read the *first* word as the size (its own
    reading). A size with a policy keeps the size, MTU with ADVERT keeps MTU. Each
    problem is a config error and the rest applies (keepalived runs with it)."""
    if not args:
        raise BadValue("vrrp_rx_bufs_policy missing")
    mtu = advert = False
    size: int | None = None
    problems: list[str] = []
    for word in args:
        if word.upper() in ("MTU", "ADVERT"):
            mtu, advert = mtu or word.upper() == "MTU", advert or word.upper() == "ADVERT"
        elif args[0].isdigit() and int(args[0]) <= 0xFFFFFFFF:
            size = int(args[0])
        else:
            problems.append(f"Invalid vrrp_rx_bufs_policy {word}")
    if size is not None and (mtu or advert):
        problems.append("Cannot set vrrp_rx_bufs_policy size and policy, ignoring policy")
    elif mtu and advert:
        problems.append("Cannot set both vrrp_rx_bufs_policy MTU and ADVERT, ignoring ADVERT")
    value: dict[str, Any] = {}
    if size is not None:
        value = {"vrrp_rx_bufs_policy": RxBufsPolicy.SIZE, "vrrp_rx_bufs_size": size}
    elif mtu or advert:
        value = {"vrrp_rx_bufs_policy": RxBufsPolicy.MTU if mtu else RxBufsPolicy.ADVERT}
    if problems:
        raise Fallback("; ".join(problems), value)
    return value


_UMASK_BITS = {
    f"I{p}{who}": 1 << (i * 3 + j)
    for i, who in enumerate(("OTH", "GRP", "USR"))
    for j, p in enumerate(("X", "W", "R"))
}


def umask(args: Args) -> int:
    """A number (hex, octal with a leading 0, or decimal) or `IWGRP|IWOTH` bits."""
    text = "".join(args)
    if not text:
        raise BadValue("umask missing bit value")
    if text[0].isdigit():
        try:
            return int(text, 0) if not (text.startswith("0") and text.isdigit()) else int(text, 8)
        except ValueError:
            raise BadValue(f"invalid umask value {text}") from None
    mask = 0
    for bit in text.split("|"):
        if bit not in _UMASK_BITS:
            raise BadValue(f"unknown umask bit {bit}")
        mask |= _UMASK_BITS[bit]
    return mask


_INCLUDE_CHECKS = ("read", "match", "wildcard_match", "brace_match")  # keepalived's words


def include_check(args: Args) -> tuple[str, ...]:
    for word in args:
        if word.lstrip("+-") not in _INCLUDE_CHECKS:
            raise BadValue(f"unknown include_check option '{word}'")
    return tuple(args) or _INCLUDE_CHECKS


def rcv_bufs(args: Args) -> int:
    return integer(1, 2**31 - 1)(args)


_nice = integer(-20, 19, lenient=True)
_rt = integer(1, 99)
_rttime = integer(1)


def _sched(prefix: str) -> tuple[Keyword, ...]:
    """vrrp_/checker_/bfd_ process scheduling knobs."""
    return (
        Keyword(f"{prefix}_priority", _nice),
        Keyword(f"{prefix}_no_swap", flag),
        Keyword(f"{prefix}_cpu_affinity", cpu_affinity),
        Keyword(f"{prefix}_rt_priority", _rt),
        Keyword(f"{prefix}_rlimit_rttime", _rttime),
        Keyword(
            f"{prefix}_rlimit_rtime",
            _rttime,
            field=f"{prefix}_rlimit_rttime",
            deprecated_by=f"{prefix}_rlimit_rttime",
        ),
    )


def _rcv(prefix: str) -> tuple[Keyword, ...]:
    return (
        Keyword(f"{prefix}_rcv_bufs", rcv_bufs),
        Keyword(f"{prefix}_rcv_bufs_force", boolean),
    )


def notification_email(args: Args, where: Where) -> tuple[str, ...]:
    return tuple(args)


GLOBAL_DEFS = Block(
    "global_defs",
    model=GlobalDefs,
    keywords=(
        Keyword("tmp_config_directory", string),
        Keyword("config_save_dir", string),
        Keyword("process_names", flag),
        Keyword("process_name", string),
        Keyword("vrrp_process_name", string),
        Keyword("checker_process_name", string),
        Keyword(
            "lvs_process_name",
            string,
            field="checker_process_name",
            deprecated_by="checker_process_name",
        ),
        Keyword("bfd_process_name", string),
        Keyword("startup_script", script),
        Keyword("startup_script_timeout", integer(1, 1000)),
        Keyword("shutdown_script", script),
        Keyword("shutdown_script_timeout", integer(1, 1000)),
        Keyword(
            "notification_email",
            field="notification_emails",
            block=Block("notification_email", items=notification_email, flatten=True),
        ),
        Keyword("notification_email_from", string),
        Keyword("smtp_server", smtp_server, spreads=True),
        Keyword("smtp_helo_name", string),
        Keyword(
            "smtp_connect_timeout", integer(0, 4294, lenient=True, zero=1)
        ),  # 0: "must be greater than 0, setting to 1"
        Keyword("smtp_alert", boolean),
        Keyword("smtp_alert_vrrp", boolean),
        Keyword("smtp_alert_checker", boolean),
        Keyword("checker_log_all_failures", boolean),
        Keyword("no_email_faults", flag),
        Keyword("router_id", string),
        Keyword("lvs_id", string, field="router_id", deprecated_by="router_id"),
        Keyword("vrrp_mcast_group4", mcast_group(4)),
        Keyword("vrrp_mcast_group6", mcast_group(6)),
        Keyword("default_interface", string),
        Keyword("lvs_sync_daemon", lvs_sync_daemon),
        Keyword("lvs_timeouts", lvs_timeouts),
        Keyword("lvs_flush", flag),
        Keyword("lvs_flush_on_stop", lvs_flush_on_stop, aliases=("lvs_flush_onstop",)),
        *garp_keywords("vrrp_"),
        # global_parser.c: read_decimal_unsigned_strvec(..., 1, UINT_MAX, TIMER_HZ_DIGITS):
        # 1 us to 4294.967295 s; 0 is "vrrp_garp_interval '0' is invalid" (ignored).
        Keyword("vrrp_garp_interval", number(0.000001, 4294.967295)),
        Keyword("vrrp_gna_interval", number(0.000001, 4294.967295)),
        Keyword("vrrp_min_garp", boolean),
        Keyword("vrrp_garp_extra_if", garp_extra_if),
        Keyword(
            "vrrp_vmac_garp_intvl",
            garp_extra_if,
            field="vrrp_garp_extra_if",
            deprecated_by="vrrp_garp_extra_if",
        ),
        Keyword("vrrp_down_timer_adverts", integer(1, 100, lenient=True)),
        Keyword("vrrp_lower_prio_no_advert", boolean),
        Keyword("vrrp_higher_prio_send_advert", boolean),
        Keyword("vrrp_version", integer(2, 3, lenient=True)),
        Keyword("vrrp_iptables", words),
        Keyword("vrrp_ipsets", words),
        Keyword("nftables", lambda a: a[0] if a else "keepalived"),
        Keyword("nftables_priority", integer(-(2**31), 2**31 - 1)),
        Keyword("nftables_ifindex", flag),
        Keyword("nftables_counters", flag),
        Keyword("nftables_ipvs", lambda a: a[0] if a else "keepalived_ipvs"),
        Keyword("nftables_ipvs_priority", integer(-(2**31), 2**31 - 1)),
        Keyword("nftables_ipvs_start_fwmark", integer(1, 2**32 - 1)),
        Keyword("disable_local_igmp", flag),
        Keyword("vrrp_check_unicast_src", flag),
        Keyword("vrrp_skip_check_adv_addr", flag),
        Keyword("vrrp_strict", flag),
        Keyword("vrrp_notify_priority_changes", boolean),
        Keyword("vrrp_startup_delay", number(0, 3600)),
        Keyword("log_unknown_vrids", flag),
        Keyword("vmac_prefix", string),
        Keyword("vmac_addr_prefix", string),
        Keyword("vrrp_rx_bufs_policy", rx_bufs_policy, spreads=True),
        Keyword("vrrp_rx_bufs_multiplier", integer(1, 2**31 - 1)),
        Keyword("max_auto_priority", lambda a: integer(-1, 99)(a) if a else 99),
        Keyword("min_auto_priority_delay", integer(0)),
        *_sched("vrrp"),
        *_sched("checker"),
        *_sched("bfd"),
        Keyword("rs_init_notifies", boolean),
        Keyword("no_checker_emails", boolean),
        Keyword("snmp_socket", string),
        Keyword("enable_traps", flag),
        Keyword("enable_snmp_vrrp", flag),
        Keyword(
            "enable_snmp_keepalived",
            flag,
            field="enable_snmp_vrrp",
            deprecated_by="enable_snmp_vrrp",
        ),
        Keyword("enable_snmp_checker", flag),
        Keyword("enable_snmp_rfc", flag),
        Keyword("enable_snmp_rfcv2", flag),
        Keyword("enable_snmp_rfcv3", flag),
        Keyword("enable_dbus", flag),
        Keyword("dbus_service_name", string),
        Keyword("script_user", run_as),
        Keyword("enable_script_security", flag),
        Keyword("notify_fifo", fifo),
        Keyword("notify_fifo_script", script),
        Keyword("vrrp_notify_fifo", fifo),
        Keyword("vrrp_notify_fifo_script", script),
        Keyword("lvs_notify_fifo", fifo),
        Keyword("lvs_notify_fifo_script", script),
        Keyword("fifo_write_vrrp_states_on_reload", flag),
        Keyword("dynamic_interfaces", dynamic_interfaces, spreads=True),
        *_rcv("vrrp_netlink_cmd"),
        *_rcv("vrrp_netlink_monitor"),
        *_rcv("lvs_netlink_cmd"),
        *_rcv("lvs_netlink_monitor"),
        *_rcv("process_monitor"),
        Keyword("umask", umask),
        Keyword("random_seed", integer(0, 2**32 - 1)),
        Keyword("reload_check_config", optional_string),
        Keyword("reload_time_file", string),
        Keyword("reload_repeat", flag),
        Keyword("reload_file", optional_string),
        Keyword("include_check", include_check),
        Keyword("data_use_instance", boolean),
    ),
)

ROOT = Block(
    "keepalived.conf",
    model=Config,
    keywords=(
        Keyword("net_namespace", string),
        Keyword("net_namespace_ipvs", optional_string),
        Keyword("namespace_with_ipsets", flag),
        Keyword("instance", string),
        Keyword("use_pid_dir", flag),
        Keyword("linkbeat_use_polling", flag),
        Keyword("child_wait_time", integer(1, 2**31 - 1)),
        Keyword("global_defs", block=GLOBAL_DEFS),
        *VRRP_ROOT_KEYWORDS,
        *LVS_ROOT_KEYWORDS,
    ),
)
