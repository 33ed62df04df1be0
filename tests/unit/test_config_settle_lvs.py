"""keepalived's fix-ups of a virtual server (check_data.c validate_check_config): what
check-config says it clears, resets, removes or sets is what the checker child runs
with, and keepalived 2.2.7 -t says the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import keepalived
from tests.support.prereq import need_tool

from fastha.check.spec import build_plan
from fastha.config.loader import load
from fastha.config.model_lvs import PERSISTENCE_TIMEOUT_DEFAULT

pytestmark = pytest.mark.unit

CONF = """
virtual_server 198.18.0.10 80 {
    lvs_sched rr
    lvs_method DR
    protocol TCP
    quorum 10
    hysteresis 20
    real_server 198.18.0.11 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
    real_server 198.18.0.11 80 {
        weight 2
    }
    real_server 2001:db8::1 80 {
        weight 1
    }
}
virtual_server fwmark 7 {
    lvs_sched rr
    lvs_method NAT
    ha_suspend
    real_server 198.18.0.12 80 {
        weight 1
    }
}
virtual_server 198.18.0.10 0 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    ops
    sh-port
    real_server 198.18.0.13 0 {
        weight 1
    }
}
"""

SAID = (
    "Address family of virtual server and real server 2001:db8::1 don't match"
    " - skipping real server.",
    "VS [198.18.0.10]:tcp:80: real server [198.18.0.11]:tcp:80 is duplicated - removing second rs",
    "Warning - quorum 10 for [198.18.0.10]:tcp:80 exceeds total weight of real servers 2,"
    " reducing quorum to 2",
    "Virtual server [198.18.0.10]:tcp:80: hysteresis 20 >= quorum 2; setting hysteresis to 1",
    "Virtual server FWM 7: cannot use ha_suspend with fwmarks - clearing ha_suspend",
    "Virtual server [198.18.0.10]:tcp:0: one packet scheduling requires UDP - resetting",
    "Virtual server [198.18.0.10]:tcp:0: zero port only valid for persistent services - setting",
)


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    return path


@pytest.mark.keepalived
def test_check_config_says_what_keepalived_says(conf: Path) -> None:
    ka = keepalived.check(conf, binary=need_tool("keepalived"))
    theirs = "\n".join(ka.messages)
    ours = {d.message for d in load(conf).diagnostics}
    for line in SAID:
        assert line in theirs, ka.messages
        assert line in ours
    assert int(load(conf).exit_code) == ka.returncode


def test_the_checker_child_runs_with_what_check_config_says(conf: Path) -> None:
    weighted, fwmark, zero_port = load(conf).config.virtual_servers
    assert [str(rs.address) for rs in weighted.real_servers] == ["198.18.0.11"]
    assert (weighted.quorum, weighted.hysteresis) == (2, 1)
    assert fwmark.ha_suspend is False
    assert zero_port.flags == ()  # ops and sh-port dropped
    assert zero_port.persistence_timeout == PERSISTENCE_TIMEOUT_DEFAULT
    plan = build_plan(load(conf).config)
    first = plan.virtual_servers[0]
    assert (first.quorum, first.hysteresis, len(first.real_servers)) == (2, 1, 1)
    assert plan.virtual_servers[1].ha_suspend is False
