"""BFD_CHECK in the real checker child and a real ip_vs: the child alone
(`python -I -m fastha.runtime.child check`) reads BfdStateChange records from a real
pipe handed down as the parent does (`drivers/bfd_channel`); the test writes them, as
the BFD owner would; ``ipvsadm -Ln`` judges. keepalived 2.2.7 (check/check_bfd.c): a
checker starts up unless alpha; an Up/Down moves every real server whose BFD_CHECK
names that bfd_instance."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastha.bfd.events import BfdStateChange
from fastha.drivers import bfd_channel
from tests.ipvs.inside.test_checker_e2e import wait_for

CONF = """\
bfd_instance b1 {
    neighbor_ip 198.18.2.9
}
virtual_server 10.10.5.1 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 198.18.5.1 80 {
        BFD_CHECK {
            name b1
        }
    }
    real_server 198.18.5.2 80 {
        BFD_CHECK {
            name b1
            alpha
        }
    }
}
"""
SVC = "TCP  10.10.5.1:80"


def dests(t: dict) -> set[str]:
    return set(t[SVC][1]) if SVC in t else set()


def test_bfd_events_move_real_servers_in_ip_vs(tmp_path: Path) -> None:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    r, w = os.pipe()
    log = tmp_path / "checker.log"
    with open(log, "w") as logf:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "fastha.runtime.child", "check", "-f", str(conf), "-l"],
            stdout=logf,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", bfd_channel.ENV_READ: str(r)},
            pass_fds=(r,),
            cwd=Path(__file__).resolve().parents[3],
        )
    os.close(r)

    def send(up: bool) -> None:
        assert bfd_channel.send(w, BfdStateChange("b1", up, time.monotonic_ns()))

    try:
        wait_for("the initial table", lambda t: dests(t) == {"198.18.5.1:80"}, proc)
        send(True)
        wait_for("both servers after Up", lambda t: len(dests(t)) == 2, proc)
        send(False)
        wait_for("no server after Down", lambda t: SVC in t and not dests(t), proc)
    finally:
        os.close(w)
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log.read_text()
    for line in (
        "BFD check of [b1] RS([198.18.5.1]:tcp:80) is UP",
        "BFD check of [b1] RS([198.18.5.2]:tcp:80) is UP",
        "BFD check of [b1] RS([198.18.5.1]:tcp:80) is DOWN",
        "Activating BFD healthchecker",
    ):
        assert line in text, text
    if "Traceback" in text:
        pytest.fail(text)
