"""Prometheus text exposition (format 0.0.4) of the daemon's status, opt-in.

Rendered per scrape from the same status the control socket answers (the parent asks
each child; nothing is cached). The shape it reads, which the children's `status`
callables return (see fastha.daemon.child_status):

    {"parent": {"pid", "uptime_s", "reloads", "refused_reloads",
                "children": {"vrrp": {"running", "restarts"}, ...}},
     "vrrp":  {"instances": [{"data": {"iname", "state", "effective_priority",
                                       "base_priority", "vrid", ...},   # keepalived JSON
                              "stats": {"advert_rcvd": 12, ...}}],
               "timer": {"lateness_histogram": [...], "bounds_ns": [...]}},
     "check": {"virtual_servers": [{"vs": "[10.0.0.1]:tcp:80",
                                    "real_servers": [{"rs": "[10.0.1.1]:tcp:80",
                                                      "alive": true, "weight": 1,
                                                      "stats": {"conns": 3, ...}}]}],
               "timer": {...}}}

A child that did not answer appears as {"error": "..."} and only its
`fastha_child_up` says so. Unknown keys are ignored; numeric stats become counters
named after keepalived's field names.

The HTTP side is deliberately tiny: GET /metrics (any other path is 404), one response
per connection, Connection: close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

log = logging.getLogger("fastha.daemon")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# keepalived's VRRP_STATE_* numbers.
VRRP_STATES = {0: "INIT", 1: "BACKUP", 2: "MASTER", 3: "FAULT", 97: "DELETED", 98: "STOP"}


def _escape(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, Any]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def _number(value: Any) -> str | None:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        return repr(value)
    return None


class Exposition:
    """Samples grouped per metric family, as the format requires."""

    def __init__(self) -> None:
        self.families: dict[str, tuple[str, str, list[str]]] = {}

    def add(self, name: str, kind: str, help_text: str, labels: dict[str, Any], value: Any) -> None:
        text = _number(value)
        if text is None:
            return
        family = self.families.setdefault(name, (kind, help_text, []))
        family[2].append(f"{name}{_labels(labels)} {text}")

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: dict[str, Any],
        counts: Iterable[int],
        bounds_s: Iterable[float],
    ) -> None:
        """Per-bucket counts, each with its upper bound, the last bucket open, as a
        Prometheus histogram (cumulative, ending at +Inf). The timer's bounds are
        exclusive and Prometheus's `le` inclusive: a lateness of exactly a bound (to the
        nanosecond) is counted one bucket up. The timer keeps no sum, so no `_sum`."""
        family = self.families.setdefault(name, ("histogram", help_text, []))
        counts = [int(c) for c in counts]
        bounds = list(bounds_s)
        total = 0
        for i, count in enumerate(counts):
            total += count
            last = i == len(counts) - 1 or i >= len(bounds)
            if last:
                total += sum(counts[i + 1 :])  # more counts than bounds: all open-ended
            le = "+Inf" if last else repr(float(bounds[i]))
            family[2].append(f"{name}_bucket{_labels({**labels, 'le': le})} {total}")
            if last:
                break
        if not counts:
            family[2].append(f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} 0")
        family[2].append(f"{name}_count{_labels(labels)} {total}")

    def render(self) -> str:
        out: list[str] = []
        for name, (kind, help_text, samples) in self.families.items():
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(samples)
        return "\n".join(out) + "\n"


def _timer(exp: Exposition, child: str, timer: Any) -> None:
    if not isinstance(timer, dict):
        return
    counts = timer.get("lateness_histogram")
    bounds = timer.get("bounds_ns")
    if not isinstance(counts, list) or not isinstance(bounds, list):
        return
    exp.histogram(
        "fastha_timer_lateness_seconds",
        "How late the precise timer ran callbacks (upper bucket bounds, seconds).",
        {"child": child},
        counts,
        [b / 1e9 for b in bounds],
    )


def _vrrp(exp: Exposition, vrrp: dict[str, Any]) -> None:
    for entry in vrrp.get("instances") or ():
        data = entry.get("data") or {}
        name = data.get("iname")
        if name is None:
            continue
        labels = {"instance": name}
        state = data.get("state")
        if isinstance(state, int):
            for number, state_name in VRRP_STATES.items():
                exp.add(
                    "fastha_vrrp_state",
                    "gauge",
                    "1 for the instance's current VRRP state.",
                    {**labels, "state": state_name},
                    int(state == number),
                )
        for key, help_text in (
            ("effective_priority", "Priority in adverts, after tracking."),
            ("base_priority", "Configured priority."),
            ("vrid", "Virtual router id."),
        ):
            exp.add(f"fastha_vrrp_{key}", "gauge", help_text, labels, data.get(key))
        for key, value in sorted((entry.get("stats") or {}).items()):
            if isinstance(value, dict):
                continue
            exp.add(
                f"fastha_vrrp_{key}_total",
                "counter",
                f"keepalived's vrrp stats field {key}.",
                labels,
                value,
            )
        # fastha's own counters, beside keepalived's: every drop reason by name
        # (keepalived's stats merge some and lack others) and VIP claims.
        counters = entry.get("counters") or {}
        exp.add(
            "fastha_vrrp_vip_claimed_total",
            "counter",
            "Frames from another MAC announcing one of the instance's VIPs while master.",
            labels,
            counters.get("vip_claimed"),
        )
        for reason, value in sorted((counters.get("drops") or {}).items()):
            exp.add(
                "fastha_vrrp_dropped_total",
                "counter",
                "Received adverts dropped, by the reason the wire layer gave.",
                {**labels, "reason": reason},
                value,
            )
    _timer(exp, "vrrp", vrrp.get("timer"))


def _check(exp: Exposition, check: dict[str, Any]) -> None:
    for vs in check.get("virtual_servers") or ():
        vs_name = vs.get("vs")
        for rs in vs.get("real_servers") or ():
            labels = {"virtual_server": vs_name, "real_server": rs.get("rs")}
            exp.add(
                "fastha_real_server_up",
                "gauge",
                "1 when the real server's checkers pass.",
                labels,
                rs.get("alive"),
            )
            exp.add(
                "fastha_real_server_weight",
                "gauge",
                "Weight programmed in IPVS.",
                labels,
                rs.get("weight"),
            )
            for key, value in sorted((rs.get("stats") or {}).items()):
                exp.add(
                    f"fastha_ipvs_{key}_total",
                    "counter",
                    f"IPVS statistic {key} of the real server.",
                    labels,
                    value,
                )
    _timer(exp, "check", check.get("timer"))


def render(status: dict[str, Any]) -> str:
    exp = Exposition()
    parent = status.get("parent") or {}
    exp.add("fastha_up", "gauge", "1 while the daemon answers.", {}, 1)
    exp.add("fastha_uptime_seconds", "gauge", "Seconds since start.", {}, parent.get("uptime_s"))
    exp.add("fastha_reloads_total", "counter", "Accepted reloads.", {}, parent.get("reloads"))
    exp.add(
        "fastha_reloads_refused_total",
        "counter",
        "Reloads refused for configuration errors.",
        {},
        parent.get("refused_reloads"),
    )
    for kind, child in (parent.get("children") or {}).items():
        answered = isinstance(status.get(kind), dict) and "error" not in status[kind]
        exp.add(
            "fastha_child_up",
            "gauge",
            "1 when the child is running and answered.",
            {"child": kind},
            bool(child.get("running")) and answered,
        )
        exp.add(
            "fastha_child_restarts_total",
            "counter",
            "Times the child was respawned.",
            {"child": kind},
            child.get("restarts"),
        )
    vrrp = status.get("vrrp")
    if isinstance(vrrp, dict) and "error" not in vrrp:
        _vrrp(exp, vrrp)
    check = status.get("check")
    if isinstance(check, dict) and "error" not in check:
        _check(exp, check)
    return exp.render()


StatusSource = Callable[[], Awaitable[dict[str, Any]]]


class MetricsServer:
    """GET /metrics on HOST:PORT, rendered from `source()` per request."""

    def __init__(self, host: str, port: int, source: StatusSource) -> None:
        self.host = host
        self.port = port
        self.source = source
        self.server: asyncio.AbstractServer | None = None

    @property
    def address(self) -> tuple[str, int]:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[:2]

    async def start(self) -> MetricsServer:
        self.server = await asyncio.start_server(self._client, self.host, self.port)
        log.info("Metrics on http://%s:%d/metrics", *self.address)
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            method, _, rest = head.split(b"\r\n", 1)[0].partition(b" ")
            target = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                code, body, ctype = "405 Method Not Allowed", b"GET only\n", "text/plain"
            elif target != b"/metrics":
                code, body, ctype = "404 Not Found", b"try /metrics\n", "text/plain"
            else:
                body = render(await self.source()).encode()
                code, ctype = "200 OK", CONTENT_TYPE
            header = (
                f"HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(header if method == b"HEAD" else header + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except ConnectionError:
            pass
        except Exception:
            log.exception("metrics: request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
