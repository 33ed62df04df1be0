"""The conformance scenarios: each a few keepalived.conf templates and a timeline.

Add one with a function returning a :class:`Scenario` and decorated ``@scenario``; see
README.md for the template tokens and the steps.
"""

from __future__ import annotations

from tests.conformance.harness import (
    Scenario,
    block,
    global_defs,
    kill,
    link,
    registrar,
    reload,
    script,
    sig,
    start,
    stop,
    write_file,
)

SCENARIOS: dict[str, Scenario] = {}

scenario = registrar(SCENARIOS)


def instance(
    *,
    state: str | None = "BACKUP",
    priority: int | None = 100,
    advert_int: float = 1,
    vips: str = "198.18.0.100/24",
    extra: str = "",
    name: str = "VI_1",
    vrid: int = 51,
    interface: str = "eth0",
) -> str:
    """A vrrp_instance block; ``extra`` is pasted inside it verbatim."""
    lines = [f"vrrp_instance {name} {{"]
    if state is not None:
        lines.append(f"    state {state}")
    lines += [f"    interface {interface}", f"    virtual_router_id {vrid}"]
    if priority is not None:
        lines.append(f"    priority {priority}")
    lines.append(f"    advert_int {advert_int:g}")
    lines += ["    virtual_ipaddress {", *(f"        {v}" for v in vips.split(",")), "    }"]
    lines += [f"    {ln.strip()}" for ln in extra.strip().splitlines() if ln.strip()]
    lines.append("}")
    return "\n".join(lines) + "\n"


UNICAST = """
unicast_src_ip <<me.ip4>>
unicast_peer {
<<peers.ip4>>
}
"""


# -- basics: election, crash, clean stop, restart ---------------------------------------------


@scenario
def v2_multicast_failover() -> Scenario:
    """VRRPv2 multicast, 2 nodes: election, kill -9 of the master, its return
    (preemption), SIGTERM of the master (priority 0), notify scripts."""
    notify = """
notify_master "<<notify>> master"
notify_backup "<<notify>> backup"
notify_stop "<<notify>> stop"
notify "<<notify>> generic"
"""
    return Scenario(
        "v2_multicast_failover",
        {
            "a": global_defs("vrrp_version 2") + instance(priority=150, extra=notify),
            "b": global_defs("vrrp_version 2") + instance(priority=100, extra=notify),
        },
        (start("a", "b"), kill("a"), start("a"), stop("a")),
    )


@scenario
def v3_unicast_three_nodes() -> Scenario:
    """Issue 14, split brain 1: VRRPv3 unicast, 3 nodes, each listing the other two as
    unicast_peer. fastha sent every peer the checksum computed for the first one."""
    conf = global_defs("vrrp_version 3")
    return Scenario(
        "v3_unicast_three_nodes",
        {
            "a": conf + instance(priority=200, advert_int=0.5, extra=UNICAST),
            "b": conf + instance(priority=100, advert_int=0.5, extra=UNICAST),
            "c": conf + instance(priority=50, advert_int=0.5, extra=UNICAST),
        },
        (start("b", "c"), start("a"), stop("a")),
        advert_int=0.5,
    )


@scenario
def v2_strict_pass_auth() -> Scenario:
    """Issue 14, split brain 2: vrrp_strict + PASS authentication. keepalived logs
    "Strict mode does not support authentication. Ignoring." and sends none."""
    auth = """
authentication {
    auth_type PASS
    auth_pass secret1
}
"""
    conf = global_defs("vrrp_version 2", "vrrp_strict")
    return Scenario(
        "v2_strict_pass_auth",
        {
            "a": conf + instance(priority=150, extra=auth),
            "b": conf + instance(priority=100, extra=auth),
        },
        (start("a", "b"), stop("a")),
    )


@scenario
def master_without_priority() -> Scenario:
    """`state MASTER` and no `priority`: keepalived makes it the address owner (255)."""
    conf = global_defs("vrrp_version 3")
    return Scenario(
        "master_without_priority",
        {
            "a": conf + instance(state="MASTER", priority=None, advert_int=0.5),
            "b": conf + instance(priority=200, advert_int=0.5),
        },
        (start("b"), start("a"), stop("a")),
        advert_int=0.5,
    )


@scenario
def excluded_addresses_announced() -> Scenario:
    """virtual_ipaddress_excluded: added on becoming master and announced (GARP / NA)
    like the VIPs; garp_master_delay 1 for a short second burst."""
    extra = """
garp_master_delay 1
garp_master_repeat 2
virtual_ipaddress_excluded {
    198.18.0.200/24
    fd00:198:18::200/64
}
"""
    conf = global_defs("vrrp_version 2")
    return Scenario(
        "excluded_addresses_announced",
        {"a": conf + instance(priority=150, extra=extra)},
        (start("a"), stop("a")),
    )


@scenario
def signals() -> Scenario:
    """Every signal keepalived's parent handles, sent to the parent: DATA (USR1), STATS
    (USR2), STATS_CLEAR (SIGRTMAX-1), JSON (SIGRTMIN+2), RELOAD (HUP), INT."""
    conf = global_defs("vrrp_version 3") + instance(priority=150, advert_int=0.5)
    return Scenario(
        "signals",
        {"a": conf},
        (
            start("a"),
            sig("a", "DATA"),
            sig("a", "STATS"),
            sig("a", "STATS_CLEAR"),
            sig("a", "STATS"),
            sig("a", "JSON"),
            sig("a", "RELOAD"),
            sig("a", "INT"),
        ),
        advert_int=0.5,
    )


@scenario
def fifo_lower_prio_and_priority_changes() -> Scenario:
    """notify_fifo: a master hearing lower priority adverts (a's frames dropped at the
    bridge: b becomes master too and a hears it: MASTER_RX_LOWER_PRI on a at each of b's
    adverts, no GARP with garp_lower_prio_repeat 0) until b stops and, with
    notify_priority_changes, the priority lines of a weighted track_script flipping."""
    track = """
vrrp_script chk {
    script "<<chk:chk>>"
    interval 1
    weight -20
    fall 1
    rise 1
}
"""
    extra = """
notify_priority_changes
notify_master_rx_lower_pri "<<notify>> rx_lower_pri"
garp_lower_prio_repeat 0
track_script {
    chk
}
"""
    conf = global_defs("vrrp_version 3", "notify_fifo <<fifo>>") + track
    return Scenario(
        "fifo_lower_prio_and_priority_changes",
        {
            "a": conf + instance(priority=150, advert_int=0.5, extra=extra),
            "b": conf + instance(priority=100, advert_int=0.5, extra=extra),
        },
        (
            start("a"),
            start("b"),
            block("a"),
            # healed without a race (which advert crosses first): b leaves, then returns
            stop("b"),
            block("a", False),
            start("b"),
            script("a", "chk", False),
            script("a", "chk", True),
            stop("b"),
            stop("a"),
        ),
        advert_int=0.5,
    )


@scenario
def link_down_and_reload() -> Scenario:
    """The VRRP interface down and up on the master (FAULT), a tracked interface down,
    and a reload (SIGHUP) that raises the backup's priority above the master's."""
    extra = """
track_interface {
    eth1
}
"""
    conf = global_defs("vrrp_version 3")
    return Scenario(
        "link_down_and_reload",
        {
            "a": conf + instance(priority=150, advert_int=0.5, extra=extra),
            "b": conf + instance(priority=100, advert_int=0.5, extra=extra),
        },
        (
            start("a", "b"),
            link("a", False),
            link("a", True),
            link("a", False, "eth1"),
            link("a", True, "eth1"),
            reload("b", conf + instance(priority=200, advert_int=0.5, extra=extra)),
            stop("b"),
        ),
        advert_int=0.5,
        extra_ifs=("eth1",),
    )


@scenario
def v3_ipv6_tracking_and_statics() -> Scenario:
    """VRRPv3 over IPv6 (link-local first VIP, unsolicited NA), a weighted track_file, virtual_routes, static_ipaddress and
    global GARP/NA settings."""
    glob = global_defs(
        "vrrp_garp_master_delay 1",
        "vrrp_garp_master_repeat 2",
        "vrrp_gna_interval 0.01",
    )
    statics = """
static_ipaddress {
    198.19.200.1/24 dev eth0
}
vrrp_track_file tf {
    file "<<file:tf>>"
    weight -1
}
"""
    extra = """
track_file {
    tf
}
virtual_routes {
    2001:db8:99::/64 via fd00:198:18::1 dev eth0
}
"""
    vips = "fe80::51:100/64,fd00:198:18::100/64"

    def node(prio: int, more: str = "") -> str:
        return (
            glob
            + statics
            + instance(name="VI_6", priority=prio, advert_int=0.5, vips=vips, extra=extra + more)
        )

    return Scenario(
        "v3_ipv6_tracking_and_statics",
        {"a": node(150), "b": node(100)},
        (
            start("a", "b"),
            write_file("a", "tf", "60"),
            write_file("a", "tf", "0"),
            kill("a"),
            start("a"),
            stop("b"),
            stop("a"),
        ),
        advert_int=0.5,
        vips=("fd00:198:18::100",),
    )


def ci_scenarios() -> list[Scenario]:
    return [s for s in SCENARIOS.values() if not s.full_only]


# The VRRP coverage scenarios (issue 14) register themselves in SCENARIOS.
from tests.conformance import (  # noqa: E402, F401
    scenarios_bfd,
    scenarios_routes,
    scenarios_startup,
    scenarios_vrrp,
)
