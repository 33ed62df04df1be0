"""Prometheus metrics of the daemon, opt-in (`fastha daemon --metrics HOST:PORT`).

prometheus_client builds and formats them: a custom collector turns the status the
parent gathers from its children into metric families, its ProcessCollector adds the
standard `process_*` series for the parent (and `fastha_vrrp_process_*`,
`fastha_check_process_*`, `fastha_bfd_process_*` for the children), and `generate_latest` writes the text format.
Every series is listed, with its labels, in docs/MONITORING.md.

The status read here is what the children answer to `metrics` (their `status` plus
probe durations, script runs and the kernel's IPVS counters; see
fastha.runtime.child_status):

    {"parent": {"pid", "started_at", "uptime_s", "reloads", "refused_reloads",
                "children": {"vrrp": {"pid", "running", "restarts"}, ...}},
     "vrrp":  {"instances": [{"data": {"iname", "ifp_ifname", "vrid", "state",
                                       "effective_priority", "base_priority", ...},
                              "stats": {"advert_rcvd": 12, ...},
                              "counters": {"vip_claimed": 0, "drops": {"TTL": 2}}}],
               "script_runs": {"chk": {"succeeded": 10, "failed": 1}},
               "timer": {"lateness_histogram": [...], "bounds_ns": [...]}},
     "check": {"virtual_servers": [{"vs": "[10.0.0.1]:tcp:80", "quorum_up": true,
                                    "real_servers": [{"rs": "[10.0.1.1]:80", "alive": true,
                                                      "weight": 1, "checks": [...]}]}],
               "counters": {"probes_completed": 9, "probes_failed": 1, ...},
               "probe_durations": [{"kind", "ok", "counts", "sum_s"}],
               "ipvs": [{"vs", "stats": {"conns", "inpkts", ...},
                         "real_servers": [{"rs", "stats": {...}}]}],
               "timer": {...}},
     "bfd":   {"sessions": [{"name", "neighbor", "state": "Up", "tx_interval_us",
                             "detect_time_us", "sent", "send_errors", "received",
                             "dropped": {"TTL": 0, ...}}],
               "dropped": {"NO_SESSION": 0, ...}, "timer": {...}}}

A child that did not answer appears as {"error": "..."}: only `fastha_child_up` says so.

Labels never collide with what Prometheus adds to every target (`instance`, `job`): a
VRRP instance is `iname` (with `interface` and `vrid`).

The HTTP side is small and defensive (issue 15 item 7): GET /metrics only, one response
per connection; the rendered page is cached for `cache_s` (1 s) and concurrent scrapes
share one gathering, so a flood of scrapes asks the children at most once a second;
at most `max_clients` connections are served at once (when full, the oldest connection
that has not sent its request yet is dropped for the new one; when every slot is busy
writing, the new one is closed at accept); a client that does not send its request
within `read_timeout` or does not read the answer within `write_timeout` is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.samples import Sample

from fastha.vrrp.states import STATE_NAMES
from fastha.wire import DropReason

log = logging.getLogger("fastha.daemon")

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes
# keepalived's VRRP_STATE_* numbers.
VRRP_STATES = STATE_NAMES
KEEPALIVED_COMPAT = "2.2.7"
# Why a received advert is dropped: the wire layer's reasons and the instance's own.
DROP_REASONS = (*(r.name for r in DropReason), "TTL", "UNICAST_SRC")
VRRP_LABELS = ("iname", "interface", "vrid")
RS_LABELS = ("virtual_server", "real_server")
# The kernel's IPVS counters (IPVS_STATS_ATTR_*) under the names keepalived exporters
# use (keepalived_lvs_vip_* / keepalived_lvs_rs_*), ours prefixed fastha_lvs_.
IPVS_COUNTERS = {
    "conns": ("conn", "Connections scheduled"),
    "inpkts": ("in_packets", "Packets in"),
    "outpkts": ("out_packets", "Packets out"),
    "inbytes": ("in_bytes", "Bytes in"),
    "outbytes": ("out_bytes", "Bytes out"),
}
# keepalived's BFD_STATE_STR (fastha.bfd.states, which the parent does not import: it
# pulls in _wire).
BFD_STATES = ("AdminDown", "Down", "Init", "Up")
BFD_TIMES_US = {
    "tx_interval_us": ("tx_interval", "The session's negotiated transmit interval."),
    "detect_time_us": ("detect_time", "The session's detection time."),
}
BFD_COUNTERS = {
    "sent": ("packets_sent", "BFD control packets sent."),
    "send_errors": ("send_errors", "BFD control packets the kernel refused to send."),
    "received": ("packets_received", "BFD control packets received for the session."),
}
IPVS_GAUGES = {
    "active_conns": "Active connections (the kernel's ActiveConn).",
    "inact_conns": "Inactive connections (the kernel's InActConn).",
    "persist_conns": "Persistent connection templates.",
}


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _ok(part: Any) -> bool:
    return isinstance(part, dict) and "error" not in part


def _histogram(
    name: str,
    doc: str,
    label: str,
    value: str,
    counts: Iterable[Any],
    bounds_s: Iterable[float],
    sum_s: float | None = None,
) -> HistogramMetricFamily:
    """Per-bucket counts (the last one open-ended) as a cumulative histogram."""
    h = HistogramMetricFamily(name, doc, labels=[label])
    counts = [int(c) for c in counts]
    bounds = [float(b) for b in bounds_s]
    buckets: list[tuple[str, float]] = []
    total = 0
    for i, bound in enumerate(bounds[: max(0, len(counts) - 1)]):
        total += counts[i]
        buckets.append((repr(bound), total))
    buckets.append(("+Inf", sum(counts)))
    h.add_metric([value], buckets, sum_s)
    if sum_s is None:  # prometheus_client writes _count only with a _sum
        h.samples.append(Sample(f"{name}_count", {label: value}, float(sum(counts))))
    return h


def _timer(child: str, timer: Any) -> Iterator[Metric]:
    """The precise timer's lateness histogram. Its bounds are exclusive and Prometheus's
    `le` inclusive: a lateness of exactly a bound (to the ns) is counted one bucket up.
    The timer keeps no sum, so no `_sum`."""
    if not isinstance(timer, dict):
        return
    counts, bounds = timer.get("lateness_histogram"), timer.get("bounds_ns")
    if isinstance(counts, list) and isinstance(bounds, list):
        yield _histogram(
            "fastha_timer_lateness_seconds",
            "How late the precise timer ran callbacks.",
            "child",
            child,
            counts,
            [b / 1e9 for b in bounds],
        )


def _vrrp(vrrp: dict[str, Any]) -> Iterator[Metric]:
    state = GaugeMetricFamily(
        "fastha_vrrp_state",
        "1 for the instance's current VRRP state.",
        labels=[*VRRP_LABELS, "state"],
    )
    eff = GaugeMetricFamily(
        "fastha_vrrp_effective_priority", "Priority in adverts, after tracking.", labels=VRRP_LABELS
    )
    base = GaugeMetricFamily(
        "fastha_vrrp_base_priority", "Configured priority.", labels=VRRP_LABELS
    )
    claimed = CounterMetricFamily(
        "fastha_vrrp_vip_claimed",
        "Frames from another MAC announcing one of the instance's VIPs while master.",
        labels=VRRP_LABELS,
    )
    drops = CounterMetricFamily(
        "fastha_vrrp_dropped",
        "Received adverts dropped, by the reason the wire layer gave.",
        labels=[*VRRP_LABELS, "reason"],
    )
    stats: dict[str, CounterMetricFamily] = {}
    for entry in vrrp.get("instances") or ():
        data = entry.get("data") or {}
        if data.get("iname") is None:
            continue
        labels = [str(data["iname"]), str(data.get("ifp_ifname", "")), str(data.get("vrid", ""))]
        current = data.get("state")
        for number, name in VRRP_STATES.items():
            state.add_metric([*labels, name], float(current == number))
        for family, key in ((eff, "effective_priority"), (base, "base_priority")):
            v = _num(data.get(key))
            if v is not None:
                family.add_metric(labels, v)
        for key, value in sorted((entry.get("stats") or {}).items()):
            v = _num(value)
            if v is None:
                continue
            if key not in stats:
                stats[key] = CounterMetricFamily(
                    f"fastha_vrrp_{key}", f"keepalived's VRRP statistic {key}.", labels=VRRP_LABELS
                )
            stats[key].add_metric(labels, v)
        counters = entry.get("counters") or {}
        v = _num(counters.get("vip_claimed"))
        if v is not None:
            claimed.add_metric(labels, v)
        if counters:  # every reason, zeros too: a rate() needs the series before a drop
            seen = counters.get("drops") or {}
            for reason in sorted({*DROP_REASONS, *seen}):
                v = _num(seen.get(reason, 0))
                if v is not None:
                    drops.add_metric([*labels, str(reason)], v)
    yield from (state, eff, base, *stats.values(), claimed, drops)
    runs = CounterMetricFamily(
        "fastha_vrrp_script_runs", "vrrp_script runs, by result.", labels=["script", "result"]
    )
    for script, by_result in sorted((vrrp.get("script_runs") or {}).items()):
        for result, n in sorted(by_result.items()):
            runs.add_metric([str(script), str(result)], float(n))
    yield runs
    yield from _timer("vrrp", vrrp.get("timer"))


def _check(check: dict[str, Any]) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "fastha_real_server_up", "1 when the real server's checkers pass.", labels=RS_LABELS
    )
    weight = GaugeMetricFamily(
        "fastha_real_server_weight", "Weight programmed in IPVS.", labels=RS_LABELS
    )
    checker = GaugeMetricFamily(
        "fastha_checker_up", "1 when the checker's last result is up.", labels=[*RS_LABELS, "check"]
    )
    quorum = GaugeMetricFamily(
        "fastha_virtual_server_quorum_up",
        "1 while the virtual server has its quorum.",
        labels=["virtual_server"],
    )
    for vs in check.get("virtual_servers") or ():
        vs_name = str(vs.get("vs"))
        if "quorum_up" in vs:
            quorum.add_metric([vs_name], float(bool(vs["quorum_up"])))
        for rs in vs.get("real_servers") or ():
            labels = [vs_name, str(rs.get("rs"))]
            for family, key in ((up, "alive"), (weight, "weight")):
                v = _num(rs.get(key))
                if v is not None:
                    family.add_metric(labels, v)
            for c in rs.get("checks") or ():
                checker.add_metric([*labels, str(c.get("check"))], float(c.get("state") == "UP"))
    yield from (up, weight, checker, quorum)
    counters = check.get("counters") or {}
    probes = CounterMetricFamily(
        "fastha_checker_probes", "Probes run, by result.", labels=["result"]
    )
    done, failed = _num(counters.get("probes_completed")), _num(counters.get("probes_failed"))
    if done is not None and failed is not None:
        probes.add_metric(["success"], done - failed)
        probes.add_metric(["failure"], failed)
    yield probes
    from fastha.runtime.check.scheduler import DURATION_BOUNDS_S

    dur = HistogramMetricFamily(
        "fastha_checker_duration_seconds",
        "How long probes took, by checker kind and result.",
        labels=["kind", "result"],
    )
    for row in check.get("probe_durations") or ():
        counts = [int(c) for c in row.get("counts") or ()]
        buckets, total = [], 0
        for bound, c in zip(DURATION_BOUNDS_S, counts, strict=False):
            total += c
            buckets.append((repr(float(bound)), total))
        buckets.append(("+Inf", sum(counts)))
        result = "success" if row.get("ok") else "failure"
        dur.add_metric([str(row.get("kind")), result], buckets, float(row.get("sum_s") or 0))
    yield dur
    yield from _ipvs(check.get("ipvs") or ())
    yield from _timer("check", check.get("timer"))


def _ipvs(services: Iterable[dict[str, Any]]) -> Iterator[Metric]:
    vip = {
        k: CounterMetricFamily(
            f"fastha_lvs_vip_{n}", f"{d} of the virtual server (IPVS).", labels=["virtual_server"]
        )
        for k, (n, d) in IPVS_COUNTERS.items()
    }
    rs = {
        k: CounterMetricFamily(
            f"fastha_lvs_rs_{n}", f"{d} of the real server (IPVS).", labels=RS_LABELS
        )
        for k, (n, d) in IPVS_COUNTERS.items()
    }
    gauges = {
        k: GaugeMetricFamily(f"fastha_lvs_rs_{k}", d, labels=RS_LABELS)
        for k, d in IPVS_GAUGES.items()
    }
    for svc in services:
        name = str(svc.get("vs"))
        for key, value in (svc.get("stats") or {}).items():
            if key in vip:
                vip[key].add_metric([name], float(value))
        for dest in svc.get("real_servers") or ():
            labels = [name, str(dest.get("rs"))]
            for key, value in (dest.get("stats") or {}).items():
                family = rs.get(key) or gauges.get(key)
                if family is not None:
                    family.add_metric(labels, float(value))
    yield from (*vip.values(), *rs.values(), *gauges.values())


def _bfd(bfd: dict[str, Any]) -> Iterator[Metric]:
    labels = ["session", "neighbor"]
    state = GaugeMetricFamily(
        "fastha_bfd_session_state",
        "1 for the BFD session's current state, 0 for the others.",
        labels=[*labels, "state"],
    )
    up = GaugeMetricFamily("fastha_bfd_session_up", "1 while the BFD session is Up.", labels=labels)
    gauges = {
        key: GaugeMetricFamily(f"fastha_bfd_{name}_seconds", doc, labels=labels)
        for key, (name, doc) in BFD_TIMES_US.items()
    }
    counters = {
        key: CounterMetricFamily(f"fastha_bfd_{name}", doc, labels=labels)
        for key, (name, doc) in BFD_COUNTERS.items()
    }
    drops = CounterMetricFamily(
        "fastha_bfd_dropped",
        "Received BFD packets dropped, by reason; session '' for those no session took.",
        labels=["session", "reason"],
    )
    for sess in bfd.get("sessions") or ():
        ls = [str(sess.get("name")), str(sess.get("neighbor"))]
        now = sess.get("state")
        for name in BFD_STATES:
            state.add_metric([*ls, name], float(name == now))
        up.add_metric(ls, float(now == "Up"))
        for key, gauge in gauges.items():
            v = _num(sess.get(key))
            if v is not None:
                gauge.add_metric(ls, v / 1e6)
        for key, counter in counters.items():
            v = _num(sess.get(key))
            if v is not None:
                counter.add_metric(ls, v)
        for reason, n in sorted((sess.get("dropped") or {}).items()):
            drops.add_metric([ls[0], str(reason)], float(n))
    for reason, n in sorted((bfd.get("dropped") or {}).items()):
        drops.add_metric(["", str(reason)], float(n))
    yield from (state, up, *gauges.values(), *counters.values(), drops)
    yield from _timer("bfd", bfd.get("timer"))


def families(status: dict[str, Any]) -> Iterator[Metric]:
    """Every metric family of one status snapshot (processes aside)."""
    from fastha import __version__

    parent = status.get("parent") or {}
    info = GaugeMetricFamily(
        "fastha_build_info",
        "fastha's version; always 1.",
        labels=["version", "python", "keepalived_compat"],
    )
    info.add_metric([__version__, platform.python_version(), KEEPALIVED_COMPAT], 1)
    yield info
    yield GaugeMetricFamily("fastha_up", "1 while the daemon answers.", value=1)
    for name, key, doc in (
        ("fastha_start_time_seconds", "started_at", "When the daemon started (Unix time)."),
        ("fastha_uptime_seconds", "uptime_s", "Seconds since the daemon started."),
    ):
        v = _num(parent.get(key))
        if v is not None:
            yield GaugeMetricFamily(name, doc, value=v)
    for name, key, doc in (
        ("fastha_reloads", "reloads", "Accepted reloads."),
        ("fastha_reloads_refused", "refused_reloads", "Reloads refused for configuration errors."),
    ):
        v = _num(parent.get(key))
        if v is not None:
            yield CounterMetricFamily(name, doc, value=v)
    up = GaugeMetricFamily(
        "fastha_child_up", "1 when the child is running and answered.", labels=["child"]
    )
    restarts = CounterMetricFamily(
        "fastha_child_restarts", "Times the child was respawned.", labels=["child"]
    )
    for kind, child in sorted((parent.get("children") or {}).items()):
        up.add_metric([kind], float(bool(child.get("running")) and _ok(status.get(kind))))
        v = _num(child.get("restarts"))
        if v is not None:
            restarts.add_metric([kind], v)
    yield up
    yield restarts
    served = status.get("metrics_server") or {}
    for key, doc in (
        ("renders", "Pages rendered (each asks the children once)."),
        ("refused", "Connections closed at accept: every slot was busy writing."),
        ("evicted", "Connections dropped for a newer one before sending a request."),
        ("timed_out", "Clients dropped for not sending a request or not reading in time."),
    ):
        if key in served:
            yield CounterMetricFamily(f"fastha_metrics_{key}", doc, value=float(served[key]))
    if _ok(status.get("vrrp")):
        yield from _vrrp(status["vrrp"])
    if _ok(status.get("check")):
        yield from _check(status["check"])
    if _ok(status.get("bfd")):
        yield from _bfd(status["bfd"])


class _Snapshot:
    """The collector prometheus_client's registry asks: the families of the status
    gathered for this scrape."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}

    def collect(self) -> Iterator[Metric]:
        return families(self.status)


def _child_pid(status: dict[str, Any], kind: str) -> Callable[[], int | str]:
    def pid() -> int | str:
        child = ((status.get("parent") or {}).get("children") or {}).get(kind) or {}
        return child.get("pid") or "none"  # /proc/none/stat: the collector yields nothing

    return pid


def render(status: dict[str, Any], *, processes: bool = False) -> str:
    """The text exposition of one status snapshot; `processes` adds the parent's and
    the children's process metrics (read from /proc now)."""
    registry = CollectorRegistry(auto_describe=False)
    snap = _Snapshot()
    snap.status = status
    registry.register(snap)
    if processes:
        ProcessCollector(registry=registry)
        for kind in ("vrrp", "check", "bfd"):
            ProcessCollector(
                namespace=f"fastha_{kind}", pid=_child_pid(status, kind), registry=registry
            )
    return generate_latest(registry).decode()


StatusSource = Callable[[], Awaitable[dict[str, Any]]]


class MetricsServer:
    """GET /metrics on HOST:PORT: a page rendered from `source()` at most every
    `cache_s`, to at most `max_clients` clients at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        source: StatusSource,
        *,
        cache_s: float = 1.0,
        max_clients: int = 16,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.source = source
        self.cache_s = cache_s
        self.max_clients = max_clients
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.server: asyncio.Server | None = None
        self.clients: set[asyncio.Task[Any]] = set()
        # Clients still sending their request, oldest first (a dict keeps the order).
        self.waiting: dict[asyncio.Task[Any], None] = {}
        self.page: tuple[float, bytes] | None = None  # (monotonic time rendered, body)
        self.rendering: asyncio.Future[bytes] | None = None
        # What the defences did (for tests and `fastha status`).
        self.renders = 0
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> MetricsServer:
        # limit: the request head must fit in 8 KiB (a GET line and a few headers).
        self.server = await asyncio.start_server(
            self._client, self.host, self.port, limit=8192, backlog=64
        )
        log.info("Metrics on http://%s:%d/metrics", *self.address)
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self.clients):
                task.cancel()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None

    async def body(self) -> bytes:
        """The current page: cached for `cache_s`; concurrent callers share one render."""
        now = time.monotonic()
        if self.page is not None and now - self.page[0] < self.cache_s:
            return self.page[1]
        if self.rendering is None:
            self.rendering = asyncio.ensure_future(self._render())
        fut = self.rendering
        try:
            return await asyncio.shield(fut)
        finally:
            if fut.done() and self.rendering is fut:
                self.rendering = None

    async def _render(self) -> bytes:
        status = await self.source()
        self.renders += 1
        status["metrics_server"] = {
            "renders": self.renders,
            "refused": self.refused,
            "evicted": self.evicted,
            "timed_out": self.timed_out,
        }
        body = render(status, processes=True).encode()
        self.page = (time.monotonic(), body)
        return body

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.clients) >= self.max_clients:
            if self.waiting:
                # Full of connections that have not even sent a request: the oldest makes
                # room (a flood of idle connections cannot lock a real scraper out).
                oldest = next(iter(self.waiting))
                self.waiting.pop(oldest)
                self.clients.discard(oldest)
                oldest.cancel()
                self.evicted += 1
            else:  # full of slow readers: each is gone within write_timeout
                self.refused += 1
                writer.transport.abort()  # no answer: one accept per flooding connection
                return
        task = asyncio.current_task()
        assert task is not None
        self.clients.add(task)
        self.waiting[task] = None
        try:
            await self._serve(reader, writer)
            # close() sends what is still buffered: a client that never reads would hold
            # the connection (and its slot) for ever without the bound.
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), self.write_timeout)
        except TimeoutError:
            self.timed_out += 1
        except (
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            ConnectionError,
            asyncio.CancelledError,
        ):
            pass
        except Exception:
            log.exception("metrics: request failed")
        finally:
            self.clients.discard(task)
            self.waiting.pop(task, None)
            writer.transport.abort()  # no-op after a clean close

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.read_timeout)
        task = asyncio.current_task()
        if task is not None:
            self.waiting.pop(task, None)
        method, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
        target = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            code, body, ctype = "405 Method Not Allowed", b"GET only\n", "text/plain"
        elif target != b"/metrics":
            code, body, ctype = "404 Not Found", b"try /metrics\n", "text/plain"
        else:
            body = await self.body()
            code, ctype = "200 OK", CONTENT_TYPE
        header = (
            f"HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        # A small write buffer: a client that stops reading is found out by drain().
        writer.transport.set_write_buffer_limits(high=65536)
        writer.write(header if method == b"HEAD" else header + body)
        await asyncio.wait_for(writer.drain(), self.write_timeout)
