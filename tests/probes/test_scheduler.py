"""The scheduler end to end: a keepalived.conf, real loopback servers, probes on their
delay_loop; a server stops and comes back. Edges and retry counts, never durations."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from fastha.check.health import Changed, Health, Log, Notify, Outcome
from fastha.check.spec import RsKey, build_plan
from fastha.config.loader import load
from fastha.runtime.check.scheduler import Scheduler

from .conftest import run
from .servers import HttpServer, free_port

pytestmark = pytest.mark.unit


def conf(tmp_path: Path, text: str):
    f = tmp_path / "keepalived.conf"
    f.write_text(text)
    res = load(f)
    assert res.ok, [d.message for d in res.diagnostics]
    return res.config


def test_plan_shares_one_probe_across_virtual_servers(tmp_path: Path) -> None:
    text = ""
    for vip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        text += f"""
virtual_server {vip} 80 {{
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    delay_loop 2
    real_server 127.0.0.1 8080 {{
        TCP_CHECK {{ connect_timeout 1 }}
        HTTP_GET {{ url {{ path /ok }} }}
    }}
    real_server 127.0.0.2 8080 {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
            retry 4
        }}
    }}
}}
"""
    plan = build_plan(conf(tmp_path, text))
    assert len(plan.virtual_servers) == 3
    assert len(plan.checks) == 3  # not 9: keepalived issue #2358
    health = Health(plan)
    assert [len(u) for u in health.users] == [3, 3, 3]
    tcp2 = plan.checks[2]
    assert (tcp2.retry, tcp2.delay_loop, tcp2.probe.endpoint.connect_timeout) == (4, 2.0, 1.0)
    assert plan.checks[1].delay_before_retry == 3.0  # HTTP_GET's own default
    assert plan.virtual_servers[0].real_servers[1].weight == 3


def test_plan_inheritance_and_differences_split_probes(tmp_path: Path) -> None:
    text = """
virtual_server 192.0.2.1 80 {
    lvs_sched rr
    protocol TCP
    virtualhost www.a.test
    real_server 127.0.0.1 80 { HTTP_GET { url { path / } } }
}
virtual_server 192.0.2.2 80 {
    lvs_sched rr
    protocol TCP
    virtualhost www.b.test
    real_server 127.0.0.1 80 { HTTP_GET { url { path / } } }
}
"""
    plan = build_plan(conf(tmp_path, text))
    assert len(plan.checks) == 2  # another Host: header is another probe
    assert {c.probe.urls[0].virtualhost for c in plan.checks} == {"www.a.test", "www.b.test"}


def _listener() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def test_server_stops_and_returns(tmp_path: Path) -> None:
    """TCP_CHECK retry 2: exactly three failed probes take the server out; one success
    brings it back; the other server and the HTTP check are untouched."""
    lst = _listener()
    port = lst.getsockname()[1]
    http = HttpServer()
    text = f"""
virtual_server 192.0.2.1 80 {{
    lvs_sched rr
    protocol TCP
    delay_loop 0.05
    real_server 127.0.0.1 {port} {{
        notify_down "/bin/true down"
        TCP_CHECK {{
            retry 2
            delay_before_retry 0.02
            connect_timeout 1
            warmup 0
        }}
    }}
    real_server 127.0.0.1 {http.port} {{
        HTTP_GET {{
            url {{
                path /ok
            }}
            warmup 0
        }}
    }}
}}
"""
    plan = build_plan(conf(tmp_path, text))
    assert (plan.checks[0].retry, plan.checks[0].warmup) == (2, 0.0)
    health = Health(plan)
    fed: list[tuple[int, bool]] = []
    real_feed = health.feed

    def feed(cid: int, outcome: Outcome):
        fed.append((cid, outcome.ok))
        return real_feed(cid, outcome)

    health.feed = feed  # type: ignore[method-assign]
    actions: list = []
    a_key = RsKey(plan.virtual_servers[0].real_servers[0].key.address, port)

    async def main() -> None:
        nonlocal lst
        sched = Scheduler(health, on_actions=actions.extend)
        sched.start()

        async def until(pred, what: str) -> None:
            for _ in range(2000):
                if pred():
                    return
                await asyncio.sleep(0.01)
            raise AssertionError(f"never: {what}")

        await until(lambda: sum(1 for c, ok in fed if c == 0 and ok) >= 2, "two successes")
        lst.close()
        mark = len(fed)
        await until(lambda: not health.alive(0, a_key), "server removed")
        tail = [ok for c, ok in fed[mark:] if c == 0]
        assert tail == [False, False, False]  # retry 2 -> third failure is the edge
        assert a_key not in health.desired(0)
        assert any(isinstance(a, Notify) and a.event == "notify_down" for a in actions)
        # Known dead: probed on delay_loop without retries, still down.
        n = len(fed)
        await until(lambda: sum(1 for c, _ in fed[n:] if c == 0) >= 3, "more probes")
        assert health.checkers[0].retry_it == 0
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("127.0.0.1", port))
        lst.listen(64)
        await until(lambda: health.alive(0, a_key), "server back")
        assert health.desired(0)[a_key] == 1
        assert all(ok for c, ok in fed if c == 1)  # the HTTP check never failed
        await sched.close()
        assert sched.started >= sched.completed > 0

    try:
        run(main())
    finally:
        lst.close()
        http.close()
    texts = [a.text for a in actions if isinstance(a, Log)]
    assert f"Removing service [127.0.0.1]:tcp:{port} from VS [192.0.2.1]:tcp:80" in texts
    assert f"Adding service [127.0.0.1]:tcp:{port} to VS [192.0.2.1]:tcp:80" in texts
    assert Changed(0) in actions


def test_suspended_check_is_not_probed(tmp_path: Path) -> None:
    port = free_port()
    text = f"""
virtual_server 192.0.2.1 80 {{
    lvs_sched rr
    protocol TCP
    delay_loop 0.02
    real_server 127.0.0.1 {port} {{
        TCP_CHECK {{
            warmup 0
        }}
    }}
}}
"""
    health = Health(build_plan(conf(tmp_path, text)))

    async def main() -> int:
        sched = Scheduler(health)
        sched.suspend(0)
        sched.start()
        await asyncio.sleep(0.2)
        started = sched.started
        await sched.close()
        return started

    assert run(main()) == 0
    assert health.checkers[0].up  # never probed: still presumed up
