"""Prometheus exposition scraped over loopback and read back with prometheus_client's
own parser (an independent oracle), fed by a real precise timer's histogram."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from fastha.daemon.metrics import MetricsServer, render
from fastha.runtime.child_status import timer_status
from fastha.wire.timer import PreciseTimer, lateness_bucket_bounds_ns, monotonic_ns

pytestmark = pytest.mark.unit


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    errors: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: errors.append(ctx))
        return await fn()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        result = r.run(main())
    assert not errors, errors
    return result


async def real_timer_status() -> dict[str, Any]:
    """Fire a few deadlines on a real timer and report it as a child does."""
    loop = asyncio.get_running_loop()
    timer = PreciseTimer(loop)
    timer.start()
    done = asyncio.Event()
    fired: list[int] = []

    def cb(deadline_ns: int, now_ns: int) -> None:
        fired.append(now_ns - deadline_ns)
        if len(fired) == 5:
            done.set()

    now = monotonic_ns()
    for i in range(5):
        timer.call_at(now + (i + 1) * 1_000_000, cb)
    await asyncio.wait_for(done.wait(), 10)
    status = timer_status(timer)
    timer.close()
    assert sum(status["lateness_histogram"]) == 5
    return status


def status_with(timer: dict[str, Any]) -> dict[str, Any]:
    return {
        "parent": {
            "pid": 1,
            "uptime_s": 12.5,
            "reloads": 2,
            "refused_reloads": 1,
            "children": {
                "vrrp": {"pid": 2, "running": True, "restarts": 1},
                "check": {"pid": None, "running": False, "restarts": 0},
            },
        },
        "vrrp": {
            "instances": [
                {
                    "data": {
                        "iname": "VI_1",
                        "state": 2,
                        "effective_priority": 150,
                        "base_priority": 100,
                        "vrid": 51,
                    },
                    "stats": {"advert_rcvd": 7, "advert_sent": 40, "become_master": 1},
                    "counters": {"vip_claimed": 4, "drops": {"TTL": 2, "UNICAST_SRC": 1}},
                },
                {
                    "data": {"iname": 'odd "name"\\', "state": 1, "vrid": 52},
                    "stats": {"advert_rcvd": 3},
                },
            ],
            "timer": timer,
        },
        "check": {"error": "not running"},
    }


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def sample(fams: dict[str, Any], family: str, name: str, **labels: str) -> float:
    found = [
        s.value
        for s in fams[family].samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (family, name, labels, fams[family].samples)
    return found[0]


def test_exposition_scraped_and_parsed() -> None:
    async def go() -> tuple[list[bytes], dict[str, Any]]:
        timer = await real_timer_status()
        status = status_with(timer)
        calls = 0

        async def source() -> dict[str, Any]:
            nonlocal calls
            calls += 1
            return status

        server = await MetricsServer("127.0.0.1", 0, source).start()
        port = server.address[1]
        answers = []
        try:
            for path in ("/metrics", "/nope"):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                await writer.drain()
                answers.append(await reader.read())
                writer.close()
        finally:
            await server.close()
        assert calls == 1
        return answers, timer

    (ok, missing), timer = run(go)
    head, _, body = ok.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain; version=0.0.4; charset=utf-8" in head
    assert missing.startswith(b"HTTP/1.1 404 ")

    fams = families(body.decode())
    assert sample(fams, "fastha_up", "fastha_up") == 1
    assert sample(fams, "fastha_reloads", "fastha_reloads_total") == 2
    assert sample(fams, "fastha_child_up", "fastha_child_up", child="vrrp") == 1
    assert sample(fams, "fastha_child_up", "fastha_child_up", child="check") == 0
    state = "fastha_vrrp_state"
    assert sample(fams, state, state, iname="VI_1", state="MASTER") == 1
    assert sample(fams, state, state, iname="VI_1", state="BACKUP") == 0
    assert sample(fams, state, state, iname='odd "name"\\', state="BACKUP") == 1
    assert (
        sample(
            fams,
            "fastha_vrrp_effective_priority",
            "fastha_vrrp_effective_priority",
            iname="VI_1",
        )
        == 150
    )
    assert (
        sample(fams, "fastha_vrrp_advert_sent", "fastha_vrrp_advert_sent_total", iname="VI_1") == 40
    )
    claimed = "fastha_vrrp_vip_claimed"
    assert sample(fams, claimed, claimed + "_total", iname="VI_1") == 4
    dropped = "fastha_vrrp_dropped"
    assert sample(fams, dropped, dropped + "_total", iname="VI_1", reason="TTL") == 2
    assert sample(fams, dropped, dropped + "_total", iname="VI_1", reason="UNICAST_SRC") == 1
    # An instance whose status has no counters exports none (no zeros made up).
    assert not [s for s in fams[claimed].samples if s.labels["iname"] != "VI_1"]
    # The histogram: cumulative buckets at the timer's bounds, ending at +Inf = count.
    hist = fams["fastha_timer_lateness_seconds"]
    assert hist.type == "histogram"
    buckets = [s for s in hist.samples if s.name.endswith("_bucket")]
    bounds = lateness_bucket_bounds_ns()
    assert [b.labels["le"] for b in buckets][:-1] == [repr(x / 1e9) for x in bounds[:-1]]
    assert buckets[-1].labels["le"] == "+Inf"
    counts = timer["lateness_histogram"]
    assert [b.value for b in buckets] == [sum(counts[: i + 1]) for i in range(len(counts))]
    assert (
        sample(
            fams,
            "fastha_timer_lateness_seconds",
            "fastha_timer_lateness_seconds_count",
            child="vrrp",
        )
        == 5
    )


def test_real_servers_and_ipvs_stats() -> None:
    status = {
        "parent": {"children": {"check": {"running": True, "restarts": 0}}},
        "check": {
            "virtual_servers": [
                {
                    "vs": "[198.51.100.1]:tcp:80",
                    "real_servers": [
                        {
                            "rs": "[192.0.2.10]:tcp:80",
                            "alive": True,
                            "weight": 3,
                        },
                        {"rs": "[192.0.2.11]:tcp:80", "alive": False, "weight": 0},
                    ],
                }
            ],
            "ipvs": [
                {
                    "vs": "[198.51.100.1]:tcp:80",
                    "stats": {"conns": 12, "inbytes": 2000},
                    "real_servers": [
                        {
                            "rs": "[192.0.2.10]:80",
                            "stats": {"conns": 10, "inbytes": 1000, "active_conns": 2},
                        }
                    ],
                }
            ],
        },
    }
    fams = families(render(status))
    vs = "[198.51.100.1]:tcp:80"
    assert (
        sample(
            fams,
            "fastha_real_server_up",
            "fastha_real_server_up",
            virtual_server=vs,
            real_server="[192.0.2.10]:tcp:80",
        )
        == 1
    )
    assert (
        sample(
            fams,
            "fastha_real_server_up",
            "fastha_real_server_up",
            virtual_server=vs,
            real_server="[192.0.2.11]:tcp:80",
        )
        == 0
    )
    rs = "[192.0.2.10]:80"
    assert sample(fams, "fastha_lvs_rs_conn", "fastha_lvs_rs_conn_total", real_server=rs) == 10
    assert sample(fams, "fastha_lvs_rs_in_bytes", "fastha_lvs_rs_in_bytes_total") == 1000
    assert sample(fams, "fastha_lvs_rs_active_conns", "fastha_lvs_rs_active_conns") == 2
    assert sample(fams, "fastha_lvs_vip_conn", "fastha_lvs_vip_conn_total", virtual_server=vs) == 12
    # No label a Prometheus server adds to every target.
    for fam in fams.values():
        for smp in fam.samples:
            assert not {"instance", "job"} & set(smp.labels), smp
    assert sample(fams, "fastha_child_up", "fastha_child_up", child="check") == 1


def _status_source(counter: list[int]) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def source() -> dict[str, Any]:
        counter[0] += 1
        await asyncio.sleep(0.05)  # a child's answer takes a while
        return {"parent": {"children": {}}}

    return source


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


def test_scrapes_share_one_render_and_are_cached() -> None:
    async def go() -> tuple[int, list[bytes]]:
        calls = [0]
        server = await MetricsServer("127.0.0.1", 0, _status_source(calls)).start()
        try:
            port = server.address[1]
            pages = list(await asyncio.gather(*(_get(port) for _ in range(10))))
            pages.append(await _get(port))  # within the cache's second
        finally:
            await server.close()
        return calls[0], pages

    calls, pages = run(go)
    assert calls == 1
    assert all(p.startswith(b"HTTP/1.1 200 OK") for p in pages)


def test_idle_flood_cannot_lock_a_scraper_out() -> None:
    async def go() -> tuple[bytes, int]:
        server = await MetricsServer("127.0.0.1", 0, _status_source([0]), max_clients=4,
                                     read_timeout=30).start()  # fmt: skip
        idle = []
        try:
            port = server.address[1]
            for _ in range(20):  # connect, never send a request
                idle.append(await asyncio.open_connection("127.0.0.1", port))
            await asyncio.sleep(0.1)
            page = await _get(port)
            evicted = server.evicted
        finally:
            for _r, w in idle:
                w.close()
            await server.close()
        return page, evicted

    page, evicted = run(go)
    assert page.startswith(b"HTTP/1.1 200 OK")
    assert evicted >= 16


def test_silent_and_never_reading_clients_time_out() -> None:
    async def go() -> tuple[int, int]:
        big = {"parent": {"children": {}},
               "vrrp": {"instances": [{"data": {"iname": f"VI_{i}", "state": 1, "vrid": i},
                                       "stats": {"advert_rcvd": i}} for i in range(3000)]}}  # fmt: skip

        async def source() -> dict[str, Any]:
            return big

        server = await MetricsServer("127.0.0.1", 0, source, read_timeout=0.3,
                                     write_timeout=0.3).start()  # fmt: skip
        port = server.address[1]
        try:
            silent = await asyncio.open_connection("127.0.0.1", port)
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            slow.setblocking(False)
            await asyncio.get_running_loop().sock_connect(slow, ("127.0.0.1", port))
            slow.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            deadline = asyncio.get_running_loop().time() + 5
            while server.clients and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.05)
            left = len(server.clients)
            silent[1].close()
            slow.close()
            return left, server.timed_out
        finally:
            await server.close()

    left, timed_out = run(go)
    assert left == 0
    assert timed_out == 2
