"""keepalived's fix-ups of a vrrp_instance (fastha.config.normalise_vrrp): what
check-config says about each is what keepalived 2.2.7 -t says (run here), and the VRRP
child runs with the value it says it sets.

One place makes both, so a case where they could disagree (the old validation and the
old runtime each had their own copy) is checked from both ends here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.support import keepalived
from tests.support.prereq import need_tool

from fastha.config.loader import load
from fastha.runtime.vrrp.from_config import vrrp_spec
from fastha.vrrp.params import InstanceParams
from fastha.vrrp.states import State

pytestmark = pytest.mark.unit

S = 1_000_000_000
V4 = "198.18.0.1/24"
V6 = "fe80::1/64"
AH = "authentication {\n  auth_type AH\n  auth_pass abc\n }"


def conf(body: str, vip: str = V4, globals_: str = "") -> str:
    head = f"global_defs {{\n {globals_}\n}}\n" if globals_ else ""
    return (
        f"{head}vrrp_instance V {{\n interface eth0\n virtual_router_id 51\n {body}\n"
        f" virtual_ipaddress {{\n  {vip}\n }}\n}}\n"
    )


# id -> (configuration, what the instance runs with, what keepalived -t says about it)
CASES: dict[str, tuple[str, dict[str, object], set[str]]] = {
    "owner_preempt_delay": (
        conf("priority 255\n preempt_delay 5"),
        {"initial_state": State.MASTER, "preempt_delay_ns": 0},
        {"(V) Warning - preempt delay will not work with initial state MASTER - clearing"},
    ),
    "strict_master_not_owner_keeps_nopreempt": (
        conf("state MASTER\n priority 100\n nopreempt\n strict_mode"),
        {"initial_state": State.BACKUP, "nopreempt": True},
        {"(V) State MASTER must match being address owner"},
    ),
    "strict_backup_owner": (
        conf("state BACKUP\n priority 255\n strict_mode"),
        {"initial_state": State.MASTER},
        {"(V) State MASTER must match being address owner"},
    ),
    "strict_ipv6_version_2": (
        conf("version 2\n strict_mode", V6),
        {"version": 3},
        {"(V) cannot use IPv6 with VRRP version 2; setting version 3"},
    ),
    "strict_global_down_timer_adverts": (
        conf("priority 100", globals_="vrrp_strict\n vrrp_down_timer_adverts 5"),
        {"down_timer_adverts": 3},
        {"(V) down_timer_adverts is incompatible with strict mode - resetting"},
    ),
    "strict_nopreempt_preempt_delay": (
        conf("nopreempt\n preempt_delay 5\n strict_mode"),
        {"nopreempt": True, "preempt_delay_ns": 0},
        {
            "(V) preempt_delay is incompatible with strict mode - resetting",
            "(V) preempt_delay is incompatible with nopreempt mode - resetting",
        },
    ),
    "nopreempt_preempt_delay": (
        conf("nopreempt\n preempt_delay 5"),
        {"nopreempt": True, "preempt_delay_ns": 0},
        {"(V) preempt_delay is incompatible with nopreempt mode - resetting"},
    ),
    "master_nopreempt": (
        conf("state MASTER\n priority 100\n nopreempt"),
        {"initial_state": State.MASTER, "nopreempt": False},
        {"(V) Warning - nopreempt will not work with initial state MASTER - clearing"},
    ),
    "owner_nopreempt": (
        conf("priority 255\n nopreempt"),
        {"initial_state": State.MASTER, "nopreempt": False},
        {"(V) nopreempt is incompatible with priority 255. resetting nopreempt"},
    ),
    "ah_master_not_owner": (
        conf(f"state MASTER\n priority 100\n {AH}"),
        {"initial_state": State.BACKUP},
        {"(V) Initial state master is incompatible with AH authentication - clearing"},
    ),
    "ah_master_owner": (conf(f"state MASTER\n priority 255\n {AH}"), {}, set()),
    "strict_owner_accept_v2": (
        conf("priority 255\n accept\n strict_mode"),
        {"accept": True},
        set(),
    ),
    "strict_accept_v2": (
        conf("priority 100\n accept\n strict_mode"),
        {"accept": False},
        {"(V) warning - accept mode for VRRP version 2 does not comply with RFC3768 - resetting"},
    ),
    "v2_advert_rounds_half_up": (
        conf("advert_int 1.5"),
        {"adver_int_cs": 200},
        {"(V) VRRPv2 advertisement interval 1.500000s must be an integer. rounding"},
    ),
    "v3_advert_rounds_half_up": (
        conf("version 3\n advert_int 0.125"),
        {"adver_int_cs": 13},
        {"(V) VRRPv3 advertisement interval 0.125000s must be in units of 10ms - rounding"},
    ),
    "strict_lower_prio": (
        conf("lower_prio_no_advert false\n garp_lower_prio_repeat 3\n strict_mode"),
        {"lower_prio_no_advert": True, "garp_lower_prio_repeat": 0},
        {
            "(V) Strict mode requires no lower priority advert. resetting",
            "(V) Strict mode requires no repeat garps. resetting",
        },
    ),
}

# keepalived's lines about the instance, without its prefix and log noise.
_ABOUT = re.compile(r"(\(V\).*|Truncating auth_pass.*)$")


@pytest.mark.keepalived
@pytest.mark.parametrize("case", sorted(CASES))
def test_check_config_says_what_keepalived_says(tmp_path: Path, case: str) -> None:
    text, _, said = CASES[case]
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    ka = keepalived.check(path, binary=need_tool("keepalived"))
    theirs = {m.group(1).strip() for line in ka.messages if (m := _ABOUT.search(line))}
    ours = load(path)
    assert {d.message for d in ours.diagnostics} == said == theirs, ka.messages
    assert int(ours.exit_code) == ka.returncode


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_child_runs_with_what_check_config_says(tmp_path: Path, case: str) -> None:
    text, expected, _ = CASES[case]
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    (spec,) = vrrp_spec(load(path).config).instances
    params, _ = spec.params.normalised()
    got = {name: getattr(params, name) for name in expected}
    if "accept" in expected:
        got["accept"] = params.accept_mode
    assert got == expected


def test_ah_stays_on_for_the_owner_and_off_where_keepalived_ignores_it(tmp_path: Path) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(conf(f"state MASTER\n priority 255\n {AH}"))
    (spec,) = vrrp_spec(load(path).config).instances
    assert (spec.auth_type, spec.auth_data) == (2, b"abc")
    path.write_text(conf(f"version 3\n {AH}"))
    (spec,) = vrrp_spec(load(path).config).instances
    assert (spec.auth_type, spec.auth_data) == (0, b"")


def test_ipv6_with_version_2_stays_version_2_outside_strict_mode(tmp_path: Path) -> None:
    """keepalived's vrrp_complete_instance sets version 3 for IPv6 only in strict mode (with
    an error) or when the instance names no version; an explicit 2 runs as 2, silently."""
    path = tmp_path / "keepalived.conf"
    path.write_text(conf("version 2", V6))
    result = load(path)
    assert not [d for d in result.diagnostics if "IPv6 with VRRP version 2" in d.message]
    (spec,) = vrrp_spec(result.config).instances
    assert spec.params.version == 2


def test_params_built_by_hand_keep_their_values() -> None:
    """The machine takes values as given: keepalived's fix-ups are the configuration's."""
    p, warns = InstanceParams("VI", version=2, adver_int_cs=150, nopreempt=True).normalised()
    assert (p.adver_int_cs, p.nopreempt, warns) == (150, True, ())


@pytest.mark.parametrize(
    ("body", "accept", "accept_mode"),
    [
        ("priority 255\n strict_mode", True, True),  # unset: the owner accepts
        ("priority 255\n no_accept", False, True),  # as configured; the owner accepts anyway
        ("priority 100\n strict_mode", False, False),  # unset: !strict
        ("priority 100\n accept\n strict_mode", False, False),  # strict v2: reset
        ("priority 100\n accept\n version 3\n strict_mode", True, True),
    ],
)
def test_accept_is_keepalived_s_value(
    tmp_path: Path, body: str, accept: bool, accept_mode: bool
) -> None:
    """The `accept` keepalived keeps (and shows in its dumps), and the Accept_Mode the
    machine runs with (RFC 5798 §6.1: always for the owner)."""
    path = tmp_path / "keepalived.conf"
    path.write_text(conf(body))
    (spec,) = vrrp_spec(load(path).config).instances
    assert (spec.params.accept, spec.params.accept_mode) == (accept, accept_mode)
