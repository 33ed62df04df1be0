"""track_bfd's arithmetic (keepalived 2.2.7 vrrp_track.c initialise_track_bfd_state and
vrrp_scheduler.c vrrp_handle_bfd_event) and fastha's BfdMasterDown extension."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.test_vrrp_fsm import T0, mk, of, started_backup

from fastha.config.loader import load
from fastha.runtime.vrrp.from_config import vrrp_spec
from fastha.vrrp.actions import StateChanged
from fastha.vrrp.events import AdvertReceived, BfdMasterDown, PriorityChanged, TrackFault
from fastha.vrrp.states import State
from fastha.vrrp.trackers import BfdTracker, TrackerSet

pytestmark = pytest.mark.unit


def keepalived_total(base: int, weight: int, reverse: bool, ups: list[bool]) -> tuple[int, bool]:
    """keepalived's own steps: start Down, then each event applied as its handler does
    (|weight| * multiplier added on Up, taken away on Down); fault for weight 0."""
    mult = -1 if reverse else 1
    total, up = base, False
    if weight and weight < 0:
        total += weight * mult
    for now in ups:
        if now == up:
            continue
        up = now
        if weight:
            total += abs(weight) * mult if up else -abs(weight) * mult
    fault = weight == 0 and up == reverse
    return max(1, min(total, 254)), fault


@pytest.mark.parametrize("weight", [0, 10, -10, 253, -253])
@pytest.mark.parametrize("reverse", [False, True])
def test_priority_and_fault_follow_keepalived(weight: int, reverse: bool) -> None:
    for ups in ([], [True], [True, False], [True, True, False, True]):
        b = BfdTracker("b1")
        ts = TrackerSet(100)
        ts.track_bfd(b, weight, reverse)
        for up in ups:
            b.set(up)
        got = ts.evaluate()
        assert (got.priority, got.fault) == keepalived_total(100, weight, reverse, ups), ups


def test_events_say_only_what_changed() -> None:
    b = BfdTracker("b1")
    ts = TrackerSet(100)
    ts.track_bfd(b, 0, False)
    assert ts.events() == (TrackFault(True, "bfd b1 down"),)  # Down until the first Up
    assert b.set(True) and ts.events() == (TrackFault(False, "tracking recovered"),)
    assert not b.set(True) and ts.events() == ()
    w = BfdTracker("b2", up=True)
    ts2 = TrackerSet(100)
    ts2.track_bfd(w, -30, False)
    assert ts2.events() == ()
    w.set(False)
    assert ts2.events() == (PriorityChanged(70),)


def test_bfd_master_down_makes_a_backup_master_at_once() -> None:
    m = started_backup()
    m.handle(AdvertReceived("192.0.2.1", 200, 100), T0 + 1)
    acts = m.handle(BfdMasterDown("b1"), T0 + 2)
    assert of(acts, StateChanged) == [
        StateChanged(State.BACKUP, State.MASTER, "master down timer expired")
    ]


def test_bfd_master_down_means_nothing_to_a_master_or_before_start() -> None:
    m = mk()
    assert m.handle(BfdMasterDown("b1"), T0) == ()
    m = started_backup()
    m.handle(BfdMasterDown("b1"), T0 + 1)
    assert m.state == State.MASTER
    assert m.handle(BfdMasterDown("b1"), T0 + 2) == ()


# -- the lines each instance runs with (keepalived vrrp.c, the config side) ------------

BFDS = """
bfd_instance b1 {
    neighbor_ip 198.18.0.2
    weight -7 reverse
}
bfd_instance b2 {
    neighbor_ip 198.18.0.3
}
bfd_instance bc {
    neighbor_ip 198.18.0.4
    checker
}
"""


def _inst(name: str, vrid: int, prio: int, track: str, extra: str = "") -> str:
    return (
        f"vrrp_instance {name} {{\n interface lo\n virtual_router_id {vrid}\n"
        f" priority {prio}\n virtual_ipaddress {{\n  198.18.0.{vrid}/32\n }}\n"
        f" track_bfd {{\n{track}\n }}\n{extra}}}\n"
    )


def _track(tmp_path: Path, text: str) -> dict[str, tuple[tuple[str, int, bool], ...]]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(BFDS + text)
    result = load(conf)
    assert result.config is not None
    return {i.name: i.track_bfds for i in vrrp_spec(result.config).instances}


def test_lines_take_the_bfd_instance_weight_and_skip_what_keepalived_skips(
    tmp_path: Path,
) -> None:
    got = _track(tmp_path, _inst("V", 1, 100, "b1\nb1 weight 3\nb2 weight 4\nbc\nnosuch"))
    # b1's own weight and reverse; the duplicate, the checker-only and unknown dropped.
    assert got == {"V": (("b1", -7, True), ("b2", 4, False))}


def test_sync_group_members_drop_weighted_lines_and_take_the_groups(tmp_path: Path) -> None:
    group = "vrrp_sync_group G {\n group {\n  A\n  B\n }\n track_bfd {\n  b2 weight 9\n }\n}\n"
    got = _track(
        tmp_path,
        group + _inst("A", 1, 100, "b1\nb2 weight 0") + _inst("B", 2, 100, "b2 weight 5"),
    )
    # keepalived: "ignoring tracked bfd b1 with weight -7 due to SYNC group"; an unweighted
    # instance line stays as it is; the group's line is everyone's otherwise.
    assert got == {"A": (("b2", 0, False),), "B": (("b2", 9, False),)}


def test_address_owner_keeps_only_unweighted_lines(tmp_path: Path) -> None:
    got = _track(tmp_path, _inst("O", 1, 255, "b1\nb2"))
    assert got == {"O": (("b2", 0, False),)}


def test_master_down_extension_needs_a_vrrp_side_bfd(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    for name, want in (("b2", "b2"), ("bc", None), ("nosuch", None)):
        conf.write_text(BFDS + _inst("V", 1, 100, "b2", f" fastha_bfd_master_down {name}\n"))
        result = load(conf)
        assert result.config is not None
        (spec,) = vrrp_spec(result.config).instances
        assert spec.bfd_master_down == want
