"""BFD_CHECK in the checker runner: BfdStateChange records written into a real pipe
(`drivers/bfd_channel`, the end the parent hands down) reach the real scheduler and
health model, and the IPVS table (planner.apply's kernel model) follows, as keepalived
2.2.7's check/check_bfd.c bfd_check_handle_event does: a checker whose state already
matches is left alone (alpha ones start down), others log "BFD check of [b] RS(..) is
UP/DOWN" and move the real server."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest
from tests.unit.test_check_desired_runner import ModelIPVS, weights

from fastha.bfd.events import BfdStateChange
from fastha.check.spec import BfdSpec
from fastha.config.loader import load
from fastha.drivers import bfd_channel
from fastha.runtime.check.runner import CheckerRunner, CheckOptions
from fastha.runtime.check.scheduler import Scheduler

pytestmark = pytest.mark.unit

CONF = """\
bfd_instance b1 {
    neighbor_ip 198.18.0.2
}
bfd_instance b2 {
    neighbor_ip 198.18.0.3
    vrrp
}
virtual_server 10.0.0.1 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.168.1.1 80 {
        BFD_CHECK {
            name b1
        }
    }
    real_server 192.168.1.2 80 {
        BFD_CHECK {
            name b1
            alpha
        }
    }
    real_server 192.168.1.3 80 {
        BFD_CHECK {
            name b2
        }
    }
}
"""


def test_bfd_events_move_real_servers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, "fastha.check")
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    res = load(path)
    assert res.config is not None
    r = CheckerRunner(res.config, CheckOptions())
    # b2 is routed to the VRRP side only: keepalived's checker never hears of it, so
    # its BFD_CHECK is dropped ("BFD_CHECK - BFD b2 not configured") and 192.168.1.3
    # runs without a checker: up.
    assert [c.probe for c in r.plan.checks] == [BfdSpec(name="b1")] * 2
    assert r.plan.skipped == ("BFD_CHECK b2 for [192.168.1.3]:80 in [10.0.0.1]:tcp:80",)
    rfd, wfd = os.pipe()
    monkeypatch.setenv(bfd_channel.ENV_READ, str(rfd))
    ipvs = ModelIPVS([])

    def send(name: str, up: bool) -> None:
        assert bfd_channel.send(wfd, BfdStateChange(name, up, time.monotonic_ns()))

    async def settle() -> None:
        await asyncio.sleep(0.05)  # the loop reads the pipe
        await r.reconciler.reconcile(set(r.reconciler.dirty))
        r.reconciler.dirty.clear()

    async def main() -> None:
        r.reconciler.open(ipvs)  # type: ignore[arg-type]  # the driver's calls only
        r.scheduler = Scheduler(r.health, on_actions=r.on_actions)
        r.scheduler.start(probe=False)
        await settle()
        # keepalived: a checker starts up unless alpha; BFD_CHECK is never probed.
        assert weights(ipvs) == {"TCP 10.0.0.1:80": {"192.168.1.1:80": 1, "192.168.1.3:80": 1}}
        r.bfd.open()
        r.scheduler.probe_all()  # arms nothing for a BFD_CHECK
        await asyncio.sleep(0.1)
        assert r.scheduler.started == 0
        send("b1", True)
        await settle()
        assert weights(ipvs) == {
            "TCP 10.0.0.1:80": {"192.168.1.1:80": 1, "192.168.1.2:80": 1, "192.168.1.3:80": 1}
        }
        send("b2", False)  # not the checker's: nothing moves
        send("b1", False)
        await settle()
        assert weights(ipvs) == {"TCP 10.0.0.1:80": {"192.168.1.3:80": 1}}
        r.bfd.close()
        await r.scheduler.close()

    try:
        asyncio.run(main())
    finally:
        os.close(wfd)
        os.close(rfd)
    lines = [rec.getMessage() for rec in caplog.records if "BFD check" in rec.getMessage()]
    assert lines == [
        # 192.168.1.1 was up, but had not run: keepalived logs it (has_run false)
        "BFD check of [b1] RS([192.168.1.1]:tcp:80) is UP",
        "BFD check of [b1] RS([192.168.1.2]:tcp:80) is UP",
        "BFD check of [b1] RS([192.168.1.1]:tcp:80) is DOWN",
        "BFD check of [b1] RS([192.168.1.2]:tcp:80) is DOWN",
    ]
