"""Route options and routes deleted by hand (issue 14): every route option keepalived
2.2.7 installs (vrrp_iproute.c netlink_route), compared in ``ip -j route`` with
keepalived's; and keepalived's reaction to one of its protocol-18 routes or rules
deleted by hand (keepalived_netlink.c netlink_route_filter / netlink_rule_filter): a
virtual route or rule -> the instance leaves MASTER and, alone, takes it back at once
(routes and rules reinstalled); a static route or rule -> put back.

Registered in scenarios.SCENARIOS (imported at the end of scenarios.py).
"""

from __future__ import annotations

from tests.conformance.harness import Scenario, global_defs, sh, start, stop
from tests.conformance.scenarios import instance, scenario

STATIC = """
static_routes {
    198.19.60.0/24 dev eth0 realms 3 rtt 1.5s rto_min 300ms table 101
    2001:db8:61::/64 from 2001:db8:71::/64 dev eth0 pref low table 101
}
static_rules {
    from 198.19.62.0/24 table 101 priority 200
}
"""
ROUTES = """
garp_master_delay 1
notify "<<notify>> vi"
virtual_routes {
    198.19.50.0/24 dev eth0 realms 1/2 rtt 100ms rttvar 300ms rto_min 250ms table 100
    198.19.51.0/24 dev eth0 rtt lock 1600 ttl-propagate enabled table 100
    2001:db8:50::/64 from 2001:db8:70::/64 dev eth0 pref high expires 300 table 100
    2001:db8:51::/64 dev eth0 pref 1 table 100
}
virtual_rules {
    from 198.19.52.0/24 table 100 priority 100
}
"""


@scenario
def route_options_and_deletion() -> Scenario:
    """Route options (from, realms, expires, pref, ttl-propagate, rtt/rttvar/rto_min with
    lock) on virtual and static routes; then a virtual route, a virtual rule, a static
    route and a static rule deleted by hand (`ip route del`, `ip rule del`)."""
    conf = global_defs("vrrp_version 2") + STATIC + instance(priority=100, extra=ROUTES)
    return Scenario(
        "route_options_and_deletion",
        {"a": conf},
        (
            start("a"),
            sh("a", "ip", "route", "del", "198.19.50.0/24", "table", "100"),
            sh("a", "ip", "rule", "del", "priority", "100"),
            sh("a", "ip", "route", "del", "198.19.60.0/24", "table", "101"),
            sh("a", "ip", "rule", "del", "priority", "200"),
            stop("a"),
        ),
    )
