"""A VIP deleted by hand (the machine's VipDeleted) and the interfaces a VIP's, route's or
rule's dev makes an instance track, as keepalived 2.2.7 does."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.test_vrrp_fsm import T0, down_deadline, of, started_backup, started_master

from fastha.config.loader import load
from fastha.config.validate import Host
from fastha.runtime.vrrp.from_config import vrrp_spec
from fastha.vrrp.actions import RemoveVips, SendAdvert, StateChanged
from fastha.vrrp.events import TimerExpired, TimerKind, VipDeleted
from fastha.vrrp.states import State
from fastha.vrrp.timing import skew_time_ns

pytestmark = pytest.mark.unit


def test_vip_deleted_while_master_releases_then_returns_after_skew() -> None:
    m = started_master(priority=100)
    now = T0 + 10**9 * 60
    out = m.handle(VipDeleted("192.0.2.100"), now)
    assert of(out, StateChanged)[0].new == State.BACKUP
    assert [a.priority for a in of(out, SendAdvert)] == [0]
    assert of(out, RemoveVips)
    skew = skew_time_ns(3, 100, m.master_adver_int_cs)
    assert down_deadline(m) == now + skew  # keepalived: ms_down_timer = VRRP_TIMER_SKEW
    m.handle(TimerExpired(TimerKind.MASTER_DOWN, now + skew), now + skew)
    assert m.state == State.MASTER


def test_vip_deleted_while_backup_changes_nothing() -> None:
    m = started_backup()
    assert m.handle(VipDeleted("192.0.2.100"), T0 + 1) == ()
    assert m.state == State.BACKUP


def test_dev_interfaces_are_tracked_unless_no_track(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(
        "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n"
        "    track_interface {\n        eth9 weight 10\n    }\n"
        "    virtual_ipaddress {\n        198.18.0.1/24\n        198.18.1.1/24 dev eth1\n"
        "        198.18.2.1/24 dev eth2 no_track\n        198.18.3.1/24 dev eth0\n    }\n"
        "    virtual_ipaddress_excluded {\n        198.18.4.1/24 dev eth3\n    }\n"
        "    virtual_routes {\n        198.51.100.0/24 dev eth4\n"
        "        203.0.113.0/24 dev eth5 no_track\n        192.0.2.0/24 dev eth9\n    }\n"
        "    virtual_rules {\n        from 198.18.0.0/24 iif eth6 table 100\n    }\n}\n"
    )
    # The interfaces named need not exist here (a missing one stops keepalived's VRRP
    # child, so the loader checks them unless told not to).
    result = load(conf, host=Host(check_interfaces=False))
    assert result.ok, [str(d) for d in result.diagnostics]
    (spec,) = vrrp_spec(result.config).instances
    assert spec.track_interfaces == (
        ("eth9", 10, False),  # its own line wins
        ("eth1", 0, False),
        ("eth3", 0, False),
        ("eth4", 0, False),
        ("eth6", 0, False),
    )
    assert spec.untracked_vips == ("198.18.2.1",)
