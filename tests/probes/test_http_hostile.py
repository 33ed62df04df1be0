"""A real server turned against HTTP_GET (issue 15): a body far larger than any page,
and a body that makes the configured regex backtrack exponentially.

The server is the loopback one of tests/probes/servers.py (``/repeat/<hex>/<count>``
streams a body made at will). The checker must neither hold the body (memory traced
with tracemalloc while the probe runs: the digest is streamed) nor stop its loop while
the regex runs (a 5 ms heartbeat on the same loop keeps beating; the match is cut off
and the url fails: fail closed).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import tracemalloc

import pytest

from fastha.check.health import Outcome
from fastha.check.spec import HttpSpec, StatusRange, UrlSpec
from fastha.probes import ProbeContext, run_probe
from fastha.probes import http as http_probe

from .conftest import ep, run
from .servers import HttpServer

pytestmark = pytest.mark.unit

UNIT = b"fastha!\n"
BIG = 3 * 1024 * 1024  # units: a 24 MiB body, past the 16 MiB the probe used to buffer


@pytest.fixture(scope="module")
def http():
    s = HttpServer()
    yield s
    s.close()


def _spec(port: int, path: str, timeout: float = 20.0, **kw: object) -> HttpSpec:
    url = UrlSpec(path=path, status=(StatusRange(lo=200, hi=299),), **kw)  # type: ignore[arg-type]
    return HttpSpec(endpoint=ep(port, timeout=timeout), urls=(url,))


async def _probe_with_heartbeat(spec: HttpSpec) -> tuple[Outcome, float]:
    """The probe's outcome and the longest the loop went without running a 5 ms
    heartbeat while the probe ran."""
    worst = 0.0
    stop = asyncio.Event()

    async def beat() -> None:
        nonlocal worst
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.005)
            now = time.monotonic()
            worst = max(worst, now - last)
            last = now

    task = asyncio.create_task(beat())
    try:
        return await run_probe(spec, ProbeContext()), worst
    finally:
        stop.set()
        await task


def test_a_huge_body_is_digested_as_it_streams_never_held(http: HttpServer) -> None:
    digest = hashlib.md5(UNIT * BIG).hexdigest()
    spec = _spec(http.port, f"/repeat/{UNIT.hex()}/{BIG}", digest=digest)
    tracemalloc.start()
    try:
        out, _ = run(_probe_with_heartbeat(spec))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    size = len(UNIT) * BIG
    print(f"\n{size >> 20} MiB body: {out}; peak traced memory {peak / 1024:.0f} KiB")
    assert peak < 4 * 1024 * 1024, f"the probe held {peak >> 20} MiB of a {size >> 20} MiB body"
    assert out.ok, out  # the digest of all of it, as keepalived's genhash prints it
    # A wrong digest still fails, whatever the size.
    bad = _spec(http.port, f"/repeat/{UNIT.hex()}/{BIG}", digest="0" * 32)
    out = run(run_probe(bad, ProbeContext()))
    assert not out.ok and "MD5 digest error" in out.reason and digest in out.reason


def test_a_regex_that_backtracks_is_cut_off_and_runs_off_the_loop(http: HttpServer) -> None:
    # (a|a)+$ on 22 a's and a '!' tries 2**22 ways: ~2 s for Python's re, more for the
    # regex module, both far past REGEX_TIMEOUT_S.
    spec = _spec(http.port, f"/repeat/{b'a'.hex()}/22", regex="(a|a)+$")
    body_spec = _spec(http.port, f"/repeat/{(b'a' * 22 + b'!').hex()}/1", regex="(a|a)+$")
    out, worst = run(_probe_with_heartbeat(body_spec))
    print(f"\npathological regex: {out}; the loop's longest pause {worst * 1e3:.1f} ms")
    assert not out.ok and "regex timed out" in out.reason, out
    assert worst < 0.25, f"the loop stopped for {worst:.2f} s while the regex ran"
    # The same pattern on a body it matches at once passes: the limit is on time only.
    assert run(run_probe(spec, ProbeContext())).ok


def test_the_regex_sees_a_bounded_window(http: HttpServer) -> None:
    """What is kept for the regex is REGEX_WINDOW bytes from regex_min_offset (plus a
    little before it for lookbehind), however long the body."""
    n = (http_probe.REGEX_WINDOW + 4096) // len(UNIT)
    near = _spec(http.port, f"/repeat/{UNIT.hex()}/{n}", regex="fastha!")
    assert run(run_probe(near, ProbeContext())).ok
    # Needs one byte more than the window: the body has them, the window has not.
    beyond = f"(?s)\\A.{{{http_probe.REGEX_WINDOW + 1}}}"
    far = _spec(http.port, f"/repeat/{UNIT.hex()}/{n}", regex=beyond)
    out = run(run_probe(far, ProbeContext()))
    assert not out.ok and "did not match" in out.reason, out
