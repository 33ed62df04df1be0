"""vrrp_track_process logic (fastha.vrrp.proctrack): matching as keepalived matches, and
quorum with its fork/terminate delays. The driver that feeds it is tested against real
processes in tests/system/test_drivers_procwatch.py."""

from __future__ import annotations

import pytest

from fastha.vrrp.proctrack import Cause, ParamMatch, ProcessMatch, ProcessTracker
from fastha.vrrp.trackers import TrackerSet

MS = 1_000_000


def pm(*words: str, param_match: str | None = None, full: bool = False) -> ProcessMatch:
    return ProcessMatch.from_words("tp", words, param_match, full)


def test_the_name_alone_matches_comm_exactly() -> None:
    m = pm("haproxy")
    assert m.param_match is ParamMatch.NONE and not m.full_command
    assert m.matches("haproxy", None)
    assert not m.matches("haproxy2", None)
    assert not m.matches("hap", None)  # no substring or regex: pgrep "^haproxy$"


def test_parameters_imply_an_exact_command_line_match() -> None:
    m = pm("/usr/sbin/haproxy", "-f", "/etc/h.cfg")
    assert m.param_match is ParamMatch.EXACT and m.full_command
    argv = ("/usr/sbin/haproxy", "-f", "/etc/h.cfg")
    assert m.matches("haproxy", argv)
    assert not m.matches("haproxy", ("haproxy", "-f", "/etc/h.cfg"))  # argv[0] in full
    assert not m.matches("haproxy", (*argv, "-D"))
    assert not m.matches("haproxy", argv[:2])
    assert not m.matches("haproxy", None)
    assert not m.matches("haproxy", ())  # a kernel thread has no command line


@pytest.mark.parametrize(
    ("param_match", "args", "expected"),
    [
        ("partial", ("-f", "/etc/h.cfg"), True),
        ("partial", ("-f", "/etc/h.cfg", "-D"), True),  # more may follow
        ("partial", ("-f", "/etc/h.cfgx"), False),
        ("partial", ("-f",), False),
        ("initial", ("-f", "/etc/h.cfg"), True),
        ("initial", ("-f", "/etc/h.cfg.new", "-D"), True),  # the last one a prefix
        ("initial", ("-x", "/etc/h.cfg"), False),
        ("initial", ("-f", "/etc/h"), False),
        ("exact", ("-f", "/etc/h.cfg"), True),
        ("exact", ("-f", "/etc/h.cfg", "-D"), False),
    ],
)
def test_param_match_kinds(param_match: str, args: tuple[str, ...], expected: bool) -> None:
    m = pm("haproxy", "-f", "/etc/h.cfg", param_match=param_match)
    assert m.matches("whatever", ("haproxy", *args)) is expected


def test_bare_param_match_means_no_parameters_at_all() -> None:
    m = pm("sleep", param_match="exact")
    assert m.full_command
    assert m.matches("sleep", ("sleep",))
    assert not m.matches("sleep", ("sleep", "5"))


def test_full_command_without_parameters_checks_argv0_only() -> None:
    m = pm("/usr/bin/sleep", full=True)
    assert m.matches("sleep", ("/usr/bin/sleep", "100"))
    assert not m.matches("sleep", ("sleep", "100"))


def test_quorum_range_and_quorum_max_zero() -> None:
    t = ProcessTracker("tp", quorum=2, quorum_max=3)
    t.start(1)
    assert not t.ok
    assert t.set_count(2, Cause.OTHER, 0) and t.ok
    assert not t.set_count(3, Cause.OTHER, 0) and t.ok
    assert t.set_count(4, Cause.OTHER, 0) and not t.ok
    never = ProcessTracker("tp", quorum_max=0)  # fail if it runs at all
    never.start(0)
    assert never.ok and never.quorum == 0
    assert never.set_count(1, Cause.FORK, 0) and not never.ok


def test_terminate_delay_rides_out_a_restart() -> None:
    t = ProcessTracker("tp", terminate_delay_ns=500 * MS, fork_delay_ns=200 * MS)
    t.start(1)
    assert t.ok
    assert not t.set_count(0, Cause.EXIT, 0)  # exit: wait
    assert t.ok and t.deadline_ns == 500 * MS
    assert not t.set_count(1, Cause.OTHER, 100 * MS)  # exec'd again: nothing happened
    assert t.ok and t.deadline_ns is None
    assert not t.expire(500 * MS)


def test_delayed_loss_lands_at_its_deadline_not_before() -> None:
    t = ProcessTracker("tp", terminate_delay_ns=500 * MS)
    t.start(2)
    assert not t.set_count(1, Cause.EXIT, 0)  # still has quorum: no timer
    assert t.deadline_ns is None
    assert not t.set_count(0, Cause.EXIT, 10 * MS)
    assert t.deadline_ns == 510 * MS
    assert not t.set_count(0, Cause.EXIT, 20 * MS) and t.deadline_ns == 510 * MS  # kept
    assert not t.expire(509 * MS) and t.ok
    assert t.expire(510 * MS) and not t.ok and t.deadline_ns is None


def test_fork_delay_applies_to_forks_not_to_an_exec() -> None:
    t = ProcessTracker("tp", fork_delay_ns=200 * MS)
    t.start(0)
    assert t.set_count(1, Cause.OTHER, 0) and t.ok  # exec: at once (keepalived)
    t.start(0)
    assert not t.set_count(1, Cause.FORK, 0) and not t.ok
    assert t.expire(200 * MS) and t.ok


def test_process_weights_in_a_tracker_set() -> None:
    up = ProcessTracker("up", weight=20)
    down = ProcessTracker("down", weight=-30)
    up.start(1)
    down.start(0)
    ts = TrackerSet(100)
    ts.track_process(up)
    ts.track_process(down)
    assert ts.evaluate().priority == 100 + 20 - 30
    ts2 = TrackerSet(100)
    ts2.track_process(down, weight=-10, reverse=True)  # the instance's own weight wins
    assert ts2.evaluate().priority == 110  # failed, -10 reversed
    weightless = TrackerSet(100)
    weightless.track_process(down, weight=0)
    assert weightless.evaluate().faults == ("process down (0 running) down",)
    ignoring = TrackerSet(100, ignore_weights=True)  # sync group member
    ignoring.track_process(up)
    assert not ignoring.evaluate().fault
    up.set_count(0, Cause.EXIT, 0)
    assert ignoring.evaluate().fault
