"""Checker reload and ha_suspend against a model kernel (planner.apply): the runner is
started for real (scheduler, TCP probes to listeners on 127.0.0.1), then reloaded; the
operations it sends are asserted one by one. Edges are awaited, never durations."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from tests.unit.test_check_desired_runner import ModelIPVS

from fastha.config.loader import load
from fastha.ipvs.model import Dest, Service
from fastha.runtime.check.runner import CheckerRunner, CheckOptions

pytestmark = pytest.mark.unit

FOREIGN = Service("10.9.9.9", 80, dests=(Dest("10.9.9.10", 80),))
IN_OURS = Dest("10.9.9.11", 80, 5)  # foreign real server inside one of our services


def vs(addr: str, *rss: str, extra: str = "") -> str:
    return (f"virtual_server {addr} 80 {{\n    lvs_sched rr\n    lvs_method NAT\n"
            f"    protocol TCP\n    delay_loop 0.05\n{extra}" + "".join(rss) + "}\n")  # fmt: skip


def rs(port: int, weight: int = 1, extra: str = "") -> str:
    return (f"    real_server 127.0.0.1 {port} {{\n        weight {weight}\n"
            f"        TCP_CHECK {{\n            connect_timeout 1\n            retry 0\n"
            f"{extra}        }}\n    }}\n")  # fmt: skip


class FakeAddresses:
    """AddressWatcher's surface, driven by the test."""

    def __init__(self, callback: Callable[[object, bool], None]) -> None:
        self.callback = callback
        self.local: set[object] = set()

    async def open(self) -> FakeAddresses:
        return self

    def is_local(self, addr: object) -> bool:
        return addr in self.local

    def set(self, addr: str, present: bool) -> None:
        a = ipaddress.ip_address(addr)
        (self.local.add if present else self.local.discard)(a)
        self.callback(a, present)

    def close(self) -> None:
        pass


def listener() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    return s


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def weights(ipvs: ModelIPVS) -> dict[str, dict[str, int]]:
    return {str(s): {str(d): d.weight for d in s.dests} for s in ipvs.table}


async def until(pred: Callable[[], bool], what: str) -> None:
    for _ in range(3000):
        if pred():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never: {what}")


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "keepalived.conf"
        self.ipvs = ModelIPVS([FOREIGN])
        self.addrs: FakeAddresses | None = None

    def runner(self, text: str) -> CheckerRunner:
        self.path.write_text(text)
        res = load(self.path)
        assert res.ok, res.errors

        def reload_config():
            again = load(self.path)
            return again.config if again.ok else None

        def addr_factory(cb):
            self.addrs = FakeAddresses(cb)
            return self.addrs

        return CheckerRunner(res.config, CheckOptions(reload_config=reload_config),
                             ipvs_factory=lambda: self.ipvs,  # type: ignore[arg-type,return-value]
                             addr_factory=addr_factory)  # type: ignore[arg-type]  # fmt: skip

    def ops(self) -> list[str]:
        return [str(o) for batch in self.ipvs.applied for o in batch]


def test_reload_changes_only_what_changed(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, "fastha")
    up, down = listener(), closed_port()
    p = up.getsockname()[1]
    rig = Rig(tmp_path)
    conf = vs("10.0.0.1", rs(p), rs(down)) + vs("10.0.0.2", rs(p))
    r = rig.runner(conf)

    async def main() -> None:
        await r.start(rig.ipvs)  # type: ignore[arg-type]
        await until(lambda: f"127.0.0.1:{down}" not in weights(rig.ipvs)["TCP 10.0.0.1:80"],
                    "the closed port removed")  # fmt: skip
        # A foreign real server inside our service: must survive every reload.
        rig.ipvs.table = [replace(s, dests=(*s.dests, IN_OURS)) if str(s) == "TCP 10.0.0.1:80"
                          else s for s in rig.ipvs.table]  # fmt: skip
        checkers = list(r.health.checkers)
        before = weights(rig.ipvs)
        started = r.scheduler.started

        # (a) unchanged file: no operation, no probe restarted, same checker state.
        rig.ipvs.applied.clear()
        diff = await r.reloader.reload_from_file()
        assert diff is not None and diff.unchanged == [0, 1] and diff.checks_kept == 2
        assert rig.ops() == [] and r.counters.last_reload_ops == 0
        assert weights(rig.ipvs) == before
        assert all(a is b for a, b in zip(r.health.checkers, checkers, strict=True))
        assert r.scheduler.started - started <= 4  # the schedule went on, no new burst

        # (b) one real server's weight: exactly one edit.
        rig.path.write_text(vs("10.0.0.1", rs(p, 7), rs(down)) + vs("10.0.0.2", rs(p)))
        diff = await r.reloader.reload_from_file()
        assert diff is not None and diff.changed == [0] and diff.checks_new == 0
        assert rig.ops() == [f"edit_dest TCP 10.0.0.1:80 -> 127.0.0.1:{p}"]
        assert weights(rig.ipvs)["TCP 10.0.0.1:80"][f"127.0.0.1:{p}"] == 7

        # (c) a virtual server removed and another added.
        rig.ipvs.applied.clear()
        rig.path.write_text(vs("10.0.0.1", rs(p, 7), rs(down)) + vs("10.0.0.3", rs(p)))
        diff = await r.reloader.reload_from_file()
        assert diff is not None and diff.added == [1] and diff.removed == [1]
        assert rig.ops() == ["del_service TCP 10.0.0.2:80", "add_service TCP 10.0.0.3:80",
                             f"add_dest TCP 10.0.0.3:80 -> 127.0.0.1:{p}"]  # fmt: skip
        table = weights(rig.ipvs)
        assert "TCP 10.0.0.2:80" not in table and "TCP 10.9.9.9:80" in table
        assert str(IN_OURS) in table["TCP 10.0.0.1:80"]

        # (e) a broken file: nothing changes.
        rig.ipvs.applied.clear()
        rig.path.write_text("virtual_server 10.0.0.1 80 {\n    lvs_sched nosuch\n}\n")
        assert await r.reloader.reload_from_file() is None
        assert rig.ops() == [] and r.counters.reload_failures == 1
        assert weights(rig.ipvs) == table

        # A real server dropped from the config goes; the foreign one stays.
        rig.path.write_text(vs("10.0.0.1", rs(p, 7)) + vs("10.0.0.3", rs(p)))
        await r.reloader.reload_from_file()
        assert rig.ops() == []  # the dropped one was already out (health down)
        # A virtual server left with no real server is dropped, as keepalived drops it
        # ("has no real servers - ignoring"): its service goes, with what was in it.
        rig.path.write_text(vs("10.0.0.1") + vs("10.0.0.3", rs(p)))
        await r.reloader.reload_from_file()
        assert rig.ops() == ["del_service TCP 10.0.0.1:80"]
        assert "TCP 10.0.0.1:80" not in weights(rig.ipvs)
        await r.stop()

    try:
        asyncio.run(main())
    finally:
        up.close()
    lines = [rec.getMessage() for rec in caplog.records]
    finished = [x for x in lines if x.startswith("Reload finished")]
    assert finished[0].endswith("; 0 IPVS operations"), finished
    assert "Removing VS [10.0.0.2]:tcp:80" in lines
    assert "Reload failed: configuration has errors; keeping the running one" in lines
    assert [str(s) for s in rig.ipvs.table] == ["TCP 10.9.9.9:80"]


def test_reload_new_alpha_checker_starts_down(tmp_path: Path) -> None:
    up = listener()
    p = up.getsockname()[1]
    rig = Rig(tmp_path)
    r = rig.runner(vs("10.0.0.1", rs(p)))

    async def main() -> None:
        await r.start(rig.ipvs)  # type: ignore[arg-type]
        rig.ipvs.applied.clear()
        # A second checker on the same real server, with alpha: the server is down
        # until it succeeds (keepalived), then comes back: one removal, one add.
        extra = "        TCP_CHECK {\n            connect_timeout 1\n            alpha\n        }\n"
        rig.path.write_text(vs("10.0.0.1", rs(p)[: -len("    }\n")] + extra + "    }\n"))
        diff = await r.reloader.reload_from_file()
        assert diff is not None and diff.checks_new == 1 and diff.checks_kept == 1
        await until(lambda: len(rig.ops()) >= 2, "down then up")
        assert rig.ops()[:2] == [f"del_dest TCP 10.0.0.1:80 -> 127.0.0.1:{p}",
                                 f"add_dest TCP 10.0.0.1:80 -> 127.0.0.1:{p}"]  # fmt: skip
        await r.stop()

    try:
        asyncio.run(main())
    finally:
        up.close()


def test_ha_suspend_follows_the_virtual_address(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, "fastha")
    up, up2 = listener(), listener()
    p, p2 = up.getsockname()[1], up2.getsockname()[1]
    rig = Rig(tmp_path)
    # 10.0.0.1 suspends while its address is away; 10.0.0.2's check is another one.
    # (A check shared with a virtual server without ha_suspend keeps running.)
    r = rig.runner(vs("10.0.0.1", rs(p), extra="    ha_suspend\n") + vs("10.0.0.2", rs(p2)))

    async def main() -> None:
        await r.start(rig.ipvs)  # type: ignore[arg-type]
        sched = r.scheduler
        assert sched is not None and rig.addrs is not None
        cid = r.plan.virtual_servers[0].real_servers[0].checks[0]
        other = r.plan.virtual_servers[1].real_servers[0].checks[0]
        assert sched.suspended == {cid}
        await until(lambda: r.health.checkers[other].successes > 0, "the other probed")
        assert r.health.checkers[cid].successes == 0
        rig.addrs.set("10.0.0.1", True)
        assert sched.suspended == set()
        await until(lambda: r.health.checkers[cid].successes > 0, "probed once resumed")
        rig.addrs.set("10.0.0.1", False)
        assert sched.suspended == {cid}
        # A reload that drops ha_suspend resumes it.
        rig.path.write_text(vs("10.0.0.1", rs(p)) + vs("10.0.0.2", rs(p2)))
        await r.reloader.reload_from_file()
        assert sched.suspended == set()
        await r.stop()

    try:
        asyncio.run(main())
    finally:
        up.close()
        up2.close()
    lines = [rec.getMessage() for rec in caplog.records]
    s = f"healthchecker for service [127.0.0.1]:tcp:{p} for VS [10.0.0.1]:tcp:80"
    assert lines.count(f"Suspending {s}") == 2 and lines.count(f"Activating {s}") == 2
