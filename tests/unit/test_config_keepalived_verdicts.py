"""Small configurations on which fastha check-config must give keepalived -t's exit code
(issue 14), each run through the real keepalived 2.2.7, and the start-up verdict
(`startable`) each case has (tests/system/test_config_start.py checks that one against a
keepalived really started).

The interfaces are the host's `eth0` (the corpus's, present in CI) and names that exist
nowhere (`nosuch*`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import keepalived
from tests.support.prereq import need_tool

from fastha.config.loader import load

pytestmark = [pytest.mark.unit, pytest.mark.keepalived]

VI = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {{
        198.18.0.1/24{vip_dev}
    }}
{inside}
}}
"""


def conf(*, globals_: str = "", outside: str = "", inside: str = "", vip_dev: str = "") -> str:
    head = f"global_defs {{\n{globals_}\n}}\n" if globals_ else ""
    return head + outside + VI.format(inside=inside, vip_dev=vip_dev)


DYN = "    dynamic_interfaces"
ROUTES_RULES = (
    Path(__file__).resolve().parents[1] / "golden" / "config" / "fallback" / "routes_rules.conf"
).read_text()

# id -> (config, does keepalived run it)
CASES: dict[str, tuple[str, bool]] = {
    "garp_interval_0": (conf(globals_="    vrrp_garp_interval 0"), True),
    "gna_interval_0": (conf(globals_="    vrrp_gna_interval 0"), True),
    "garp_interval_1us": (conf(globals_="    vrrp_garp_interval 0.000001"), True),
    # global_parser.c vrrp_rx_bufs_policy_handler: a size 0 is one; SIZE is no word;
    # MTU with ADVERT or with a size is an error (the rest applies: keepalived runs).
    "rx_bufs_size_0": (conf(globals_="    vrrp_rx_bufs_policy 0"), True),
    "rx_bufs_SIZE": (conf(globals_="    vrrp_rx_bufs_policy SIZE"), True),
    "rx_bufs_mtu_advert": (conf(globals_="    vrrp_rx_bufs_policy MTU ADVERT"), True),
    "rx_bufs_mtu_size": (conf(globals_="    vrrp_rx_bufs_policy MTU 4096"), True),
    "rx_bufs_size_mtu": (conf(globals_="    vrrp_rx_bufs_policy 4096 mtu"), True),
    "static_ipaddress_dev": (
        conf(outside="static_ipaddress {\n 198.18.5.1/24 dev nosuch1\n}\n"),
        False,
    ),
    "static_routes_dev": (
        conf(outside="static_routes {\n 198.18.6.0/24 via 198.18.0.254 dev nosuch2\n}\n"),
        False,
    ),
    "static_rules_iif": (
        conf(outside="static_rules {\n from 198.18.7.0/24 table 100 iif nosuch3\n}\n"),
        False,
    ),
    "vip_dev": (conf(vip_dev=" dev nosuch4"), False),
    "virtual_routes_dev": (
        conf(inside="    virtual_routes {\n 198.18.8.0/24 dev nosuch5\n }"),
        False,
    ),
    "virtual_rules_oif": (
        conf(inside="    virtual_rules {\n from 198.18.9.0/24 table 101 oif nosuch6\n }"),
        False,
    ),
    "track_interface": (conf(inside="    track_interface {\n nosuch7\n }"), False),
    "static_routes_dev_dynamic": (
        conf(
            globals_=DYN,
            outside="static_routes {\n 198.18.6.0/24 via 198.18.0.254 dev nosuch2\n}\n",
        ),
        True,
    ),
    "vip_dev_dynamic": (conf(globals_=DYN, vip_dev=" dev nosuch4"), True),
    "priority_junk": (conf(inside="    priority 100,abc"), True),
    "state_lowercase": (conf(inside="    state master"), True),
    "priority_missing": (conf(inside="    priority"), False),
    "boolean_capital": (conf(inside="    lower_prio_no_advert True"), True),
    "boolean_digit": (conf(inside="    higher_prio_send_advert 1"), True),
    "auth_type_lowercase": (
        conf(inside="    authentication {\n auth_type pass\n auth_pass x\n }"),
        True,
    ),
    "no_vrid": (conf().replace("virtual_router_id 51", ""), False),
    # Every route/rule word keepalived reads, and some it refuses (proto, pref, a table
    # name rt_tables does not have): the same lines must be errors.
    "routes_rules": (ROUTES_RULES, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_exit_code_and_start_verdict(tmp_path: Path, case: str) -> None:
    text, runs = CASES[case]
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    ka = keepalived.check(path, binary=need_tool("keepalived"))
    ours = load(path)
    report = "\n".join(str(d) for d in ours.diagnostics)
    assert int(ours.exit_code) == ka.returncode, (
        f"keepalived -t {ka.returncode}:\n" + "\n".join(ka.messages) + f"\n--- fastha:\n{report}"
    )
    assert ours.startable == runs, report
