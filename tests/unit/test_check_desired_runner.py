"""The checker runner's reconciliation against a model kernel (planner.apply): initial
table, health edges touching only the changed virtual server, log lines once each,
foreign entries, stop with release / -I / lvs_flush_on_stop."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from fastha.check.health import Outcome
from fastha.config.loader import load
from fastha.drivers.ipvs import ApplyResult
from fastha.ipvs.model import Dest, Service, Timeouts
from fastha.ipvs.planner import Op, apply
from fastha.runtime.check.runner import CheckerRunner, CheckOptions

pytestmark = pytest.mark.unit

CONF = """\
global_defs {
    lvs_timeouts tcp 900
    @FLUSH lvs_flush_on_stop
}
virtual_server 10.0.0.1 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.168.1.1 80 {
        TCP_CHECK {
        }
    }
    real_server 192.168.1.2 80 {
        TCP_CHECK {
        }
    }
}
virtual_server 10.0.0.2 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 192.168.1.1 80 {
        TCP_CHECK {
        }
    }
}
"""
FOREIGN = Service("10.9.9.9", 80, dests=(Dest("10.9.9.10", 80),))


class ModelIPVS:
    """The driver's surface the runner uses, over planner.apply's kernel model."""

    def __init__(self, table: list[Service]) -> None:
        self.table = list(table)
        self.applied: list[list[Op]] = []
        self.timeouts: Timeouts | None = None
        self.flushed = 0
        self.dumping: asyncio.Event | None = None  # set while a dump waits on ``gate``
        self.gate: asyncio.Event | None = None

    async def services(self, *, dests: bool = True) -> list[Service]:
        if self.gate is not None and self.dumping is not None:
            self.dumping.set()
            await self.gate.wait()
        return list(self.table)

    async def dests(self, svc: Service) -> list[Dest]:
        return list(next(s for s in self.table if s.key == svc.key).dests)

    async def apply(self, ops: list[Op]) -> ApplyResult:
        self.applied.append(list(ops))
        self.table = apply(self.table, ops)
        return ApplyResult(done=len(ops))

    async def set_timeouts(self, t: Timeouts) -> None:
        self.timeouts = t

    async def flush(self) -> None:
        self.flushed += 1
        self.table = []


def runner(tmp_path: Path, release: bool = True, flush: bool = False) -> CheckerRunner:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    res = load(path, "FLUSH" if flush else None)
    assert res.ok, res.errors
    return CheckerRunner(res.config, CheckOptions(release_on_stop=release))


def weights(ipvs: ModelIPVS) -> dict[str, dict[str, int]]:
    return {str(s): {str(d): d.weight for d in s.dests} for s in ipvs.table}


async def _start(r: CheckerRunner, ipvs: ModelIPVS) -> None:
    r.reconciler.open(ipvs)  # type: ignore[arg-type]  # ModelIPVS: the driver's calls only
    r.on_actions(r.health.start())
    await r.reconciler.reconcile(range(len(r.table)))
    r.reconciler.dirty.clear()


def test_edges_touch_only_the_changed_virtual_servers(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, "fastha.check")
    r = runner(tmp_path)
    ipvs = ModelIPVS([FOREIGN])

    async def main() -> None:
        await _start(r, ipvs)
        assert weights(ipvs) == {
            "TCP 10.9.9.9:80": {"10.9.9.10:80": 1},
            "TCP 10.0.0.1:80": {"192.168.1.1:80": 1, "192.168.1.2:80": 1},
            "TCP 10.0.0.2:80": {"192.168.1.1:80": 1},
        }
        # 192.168.1.2 goes down: one op, in 10.0.0.1:80 only
        cid = r.plan.virtual_servers[0].real_servers[1].checks[0]
        for _ in range(2):
            _, actions = r.health.feed(cid, Outcome(False))
            r.on_actions(actions)
        assert r.reconciler.dirty == {0}
        ops = await r.reconciler.reconcile(r.reconciler.dirty)
        assert [str(o) for o in ops] == ["del_dest TCP 10.0.0.1:80 -> 192.168.1.2:80"]

    asyncio.run(main())
    lines = [rec.getMessage() for rec in caplog.records]
    assert lines.count("Adding service [192.168.1.1]:tcp:80 to VS [10.0.0.1]:tcp:80") == 1
    assert "Adding VS [10.0.0.2]:tcp:80" in lines
    # the health model said it (the scheduler logs its Log actions): the op is not repeated
    assert "Removing service [192.168.1.2]:tcp:80 from VS [10.0.0.1]:tcp:80" not in lines


def test_an_edge_during_a_pass_is_logged_once(tmp_path: Path, caplog) -> None:
    """A health edge that lands while a pass dumps the kernel is the next pass's: that
    pass must still know health logged it (one line per operation, as keepalived)."""
    caplog.set_level(logging.INFO, "fastha.check")
    r = runner(tmp_path)
    ipvs = ModelIPVS([FOREIGN])
    vs0 = r.plan.virtual_servers[0]

    def down(rs: int) -> None:
        for _ in range(2):
            _, actions = r.health.feed(vs0.real_servers[rs].checks[0], Outcome(False))
            r.on_actions(actions)

    async def main() -> None:
        await _start(r, ipvs)
        down(1)  # 192.168.1.2, in 10.0.0.1:80
        ipvs.dumping, ipvs.gate = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(r.reconciler.reconcile(set(r.reconciler.dirty)))
        r.reconciler.dirty.clear()
        await ipvs.dumping.wait()
        down(0)  # 192.168.1.1 (both virtual servers) while the first pass dumps
        ipvs.gate.set()
        assert [str(o) for o in await first] == ["del_dest TCP 10.0.0.1:80 -> 192.168.1.2:80"]
        ops = await r.reconciler.reconcile(r.reconciler.dirty)
        assert sorted(str(o) for o in ops) == [
            "del_dest TCP 10.0.0.1:80 -> 192.168.1.1:80",
            "del_dest TCP 10.0.0.2:80 -> 192.168.1.1:80",
        ]
        assert r.reconciler.logged == set()

    asyncio.run(main())
    ops_lines = [rec.getMessage() for rec in caplog.records if rec.module == "reconciler"]
    assert not any(ln.startswith("Removing service") for ln in ops_lines), ops_lines


@pytest.mark.parametrize(
    ("release", "flush", "left"),
    [
        (True, False, ["TCP 10.9.9.9:80"]),
        (False, False, ["TCP 10.9.9.9:80", "TCP 10.0.0.1:80", "TCP 10.0.0.2:80"]),
        (True, True, []),
    ],
)
def test_stop(tmp_path: Path, release: bool, flush: bool, left: list[str]) -> None:
    r = runner(tmp_path, release=release, flush=flush)
    ipvs = ModelIPVS([FOREIGN])

    async def main() -> None:
        await _start(r, ipvs)
        await r.stop()

    asyncio.run(main())
    assert [str(s) for s in ipvs.table] == left


def test_lvs_fifo_lines_for_every_server_and_quorum_change(tmp_path: Path) -> None:
    """keepalived's notify_fifo_rs / notify_fifo_vs lines on lvs_notify_fifo (and the
    generic notify_fifo), with or without notify scripts: "VS ... UP" at start (quorum
    gained), "RS ... DOWN" for a failed real server. tests/conformance/ipvs.py compares
    them with keepalived's in a real kernel."""
    import os

    fifo = tmp_path / "lvs.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    path = tmp_path / "keepalived.conf"
    path.write_text(
        CONF.replace("global_defs {\n", f"global_defs {{\n    lvs_notify_fifo {fifo}\n")
    )
    res = load(path)
    assert res.ok, res.errors
    r = CheckerRunner(res.config, CheckOptions())
    ipvs = ModelIPVS([])

    async def main() -> None:
        await _start(r, ipvs)
        cid = r.plan.virtual_servers[1].real_servers[0].checks[0]
        for _ in range(2):  # retry 1 by default
            _, actions = r.health.feed(cid, Outcome(False))
            r.on_actions(actions)

    asyncio.run(main())
    lines = os.read(reader, 65536).decode().splitlines()
    os.close(reader)
    assert lines == [
        "VS [10.0.0.1]:tcp:80 UP",
        "VS [10.0.0.2]:tcp:80 UP",
        "RS [192.168.1.1]:tcp:80 [10.0.0.1]:tcp:80 DOWN",
        "RS [192.168.1.1]:tcp:80 [10.0.0.2]:tcp:80 DOWN",
        "VS [10.0.0.2]:tcp:80 DOWN",
    ]
