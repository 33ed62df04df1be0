"""static_routes / static_rules / virtual_routes / virtual_rules (issue 14): the routes
and rules fastha installs are the ones keepalived 2.2.7 installs for the same file.

Each daemon runs in a namespace of its own, built the same way (same interface names,
MACs and addresses), inside a private mount namespace whose /etc/iproute2 holds an
rt_tables naming table 200 `mytab` (so named tables are read from the file, as keepalived
reads them, without touching the host's). Once the instance is master and the kernel
tables have settled, `ip -j -d route show table all` and `ip -j rule` of the two
namespaces must be equal. The file mixes options keepalived installs (tables by name and
number, `not`, tos, goto, nop, fwmark/mask, iif/oif, suppress_prefixlength, ipproto,
port and uid ranges, unreachable/prohibit/blackhole/throw, onlink, metrics with lock,
congctl, protocol and no_track) with words keepalived refuses (`proto`, `pref`, an unknown
table, a single-port `dport`), so a line fastha keeps and keepalived drops, or the
reverse, shows up as a difference too.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.prereq import need_root, need_tool
from tests.support.vrrp_peer import FASTHA, keepalived_binary

pytestmark = [pytest.mark.system, pytest.mark.keepalived]

_counter = itertools.count()

CONF = (
    Path(__file__).resolve().parents[1] / "golden" / "config" / "fallback" / "routes_rules.conf"
).read_text()


def _ip(*args: str) -> str:
    return subprocess.run(
        ["ip", *args], check=True, capture_output=True, text=True, timeout=30
    ).stdout


def _tables(ns: str) -> tuple[Any, Any]:
    routes = json.loads(_ip("-n", ns, "-j", "-d", "route", "show", "table", "all") or "[]")
    routes += json.loads(_ip("-n", ns, "-j", "-d", "-6", "route", "show", "table", "all") or "[]")
    rules = json.loads(_ip("-n", ns, "-j", "rule", "show") or "[]")
    rules += json.loads(_ip("-n", ns, "-j", "-6", "rule", "show") or "[]")
    key = lambda r: json.dumps(r, sort_keys=True)  # noqa: E731
    return sorted(routes, key=key), sorted(rules, key=key)


def _run(impl: str, conf: Path, work: Path) -> tuple[Any, Any, str]:
    """Start `impl` on `conf` in a fresh namespace; the settled tables and its log."""
    ns = f"fhrt{os.getpid() % 10000}x{next(_counter)}"
    etc = work / "iproute2"
    etc.mkdir(parents=True)
    for f in Path("/etc/iproute2").iterdir():
        if f.is_file():
            (etc / f.name).write_bytes(f.read_bytes())
    (etc / "rt_tables").write_text("255 local\n254 main\n253 default\n200 mytab\n")
    if impl == "keepalived":
        exe = keepalived_binary()
        assert exe is not None
        cmd = [exe, "-n", "-l", "-D", "-P", "-f", str(conf), "-p", f"{work}/p", "-r",
               f"{work}/r", "-c", f"{work}/c", "-b", f"{work}/b"]  # fmt: skip
    else:
        cmd = [str(FASTHA), "daemon", "-P", "-n", "-l", "-f", str(conf), "-p", f"{work}/p",
               "-r", f"{work}/r", "--control-socket", f"{work}/ctl.sock",
               "--json-file", f"{work}/j"]  # fmt: skip
    _ip("netns", "add", ns)
    proc: subprocess.Popen[bytes] | None = None
    log = work / "log"
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", "eth0", "address", "02:00:5e:10:00:01", "type", "veth",
            "peer", "name", "eth0p", "address", "02:00:5e:10:00:02")  # fmt: skip
        for dev in ("eth0", "eth0p"):
            _ip("-n", ns, "link", "set", dev, "up")
        _ip("-n", ns, "addr", "add", "198.18.0.2/24", "dev", "eth0")
        inner = " ".join(f"'{w}'" for w in cmd)
        script = f"mount --bind '{etc}' /etc/iproute2 && exec ip netns exec {ns} {inner}"
        with log.open("wb") as out:
            proc = subprocess.Popen(["unshare", "-m", "sh", "-c", script], stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 30
        last: tuple[Any, Any] | None = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"{impl} exited:\n{log.read_text(errors='replace')}"
            now = _tables(ns)
            vip = "198.18.0.10" in _ip("-n", ns, "addr", "show", "dev", "eth0")
            if vip and now == last:
                return now[0], now[1], log.read_text(errors="replace")
            last = now
            time.sleep(1.0)
        pytest.fail(f"{impl}: tables never settled:\n{log.read_text(errors='replace')[-3000:]}")
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with contextlib.suppress(subprocess.CalledProcessError):
            _ip("netns", "del", ns)
    raise AssertionError("unreachable")


def test_routes_and_rules_are_keepalived_s(tmp_path: Path) -> None:
    need_root()
    need_tool("keepalived")
    need_tool("unshare")
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    with ThreadPoolExecutor(2) as pool:
        ka_f = pool.submit(_run, "keepalived", conf, Path(tempfile.mkdtemp(dir=tmp_path)))
        fh_f = pool.submit(_run, "fastha", conf, Path(tempfile.mkdtemp(dir=tmp_path)))
        ka_routes, ka_rules, ka_log = ka_f.result()
        fh_routes, fh_rules, fh_log = fh_f.result()
    ours = {json.dumps(r, sort_keys=True) for r in fh_routes}
    theirs = {json.dumps(r, sort_keys=True) for r in ka_routes}
    assert ours == theirs, (
        f"only fastha: {sorted(ours - theirs)}\nonly keepalived: {sorted(theirs - ours)}"
        f"\n--- fastha log:\n{fh_log[-2500:]}"
    )
    ours = {json.dumps(r, sort_keys=True) for r in fh_rules}
    theirs = {json.dumps(r, sort_keys=True) for r in ka_rules}
    assert ours == theirs, (
        f"only fastha: {sorted(ours - theirs)}\nonly keepalived: {sorted(theirs - ours)}"
    )
    # The comparison itself can tell: keepalived did install the named-table route (the
    # host's `ip` prints table 200 by number) and did drop the `proto` one.
    assert any(r.get("table") == "200" for r in ka_routes), ka_log[-2500:]
    assert not any(r.get("dst") == "198.18.15.0/24" for r in ka_routes), ka_log[-2500:]
    assert any(r.get("dst") == "198.18.25.0/24" and r.get("nexthops") for r in ka_routes)
