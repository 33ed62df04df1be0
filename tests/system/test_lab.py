"""`fastha lab up|down|status` through the CLI: the lab comes up and goes away leaving
nothing behind (namespaces, interfaces, processes, files), also after a daemon was
kill -9'd mid-run, and when the foreground `lab up` gets SIGTERM or SIGINT.

Waits are protocol-level: "a master within 30 s" where the RFC needs 3 x advert_int +
skew_time (0.34 s at the lab's default 0.1 s adverts).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.prereq import need_root, need_tool

pytestmark = pytest.mark.system

_count = itertools.count()


def _need() -> None:
    need_root()
    need_tool("ip")
    need_tool("tcpdump")
    if not os.access("/usr/sbin/keepalived", os.X_OK):
        pytest.fail("keepalived is not installed (Debian package keepalived)")


def _name() -> str:
    # Unique per test process and call: other engineers run labs at the same time.
    return f"fhlt{os.getpid() % 100000}x{next(_count)}"


def fastha(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "fastha.cli.main", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if check and r.returncode != 0:
        raise AssertionError(f"fastha {' '.join(args)} -> {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def _namespaces(name: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.split()[0].startswith(name + "-")]


def _host_links() -> set[str]:
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True).stdout
    return {link["ifname"] for link in json.loads(out or "[]")}


def _procs_mentioning(text: str) -> list[int]:
    """Live processes whose command line mentions ``text`` (the lab's work directory)."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (p / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmd and state != "Z":
            pids.append(int(p.name))
    return pids


def _status(name: str) -> dict[str, Any]:
    return json.loads(fastha("lab", "status", name, "--json").stdout)


def _assert_gone(name: str, st: dict[str, Any], links_before: set[str]) -> None:
    assert _namespaces(name) == [], "namespaces left behind"
    assert not Path(st["state_file"]).exists(), "state file left behind"
    assert not Path(st["workdir"]).exists(), "work directory left behind"
    deadline = time.monotonic() + 5  # SIGKILLed processes vanish asynchronously
    while _procs_mentioning(st["workdir"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _procs_mentioning(st["workdir"]) == [], "daemons left running"
    # Nothing was ever created in the host's namespace; others may add links meanwhile,
    # so only names carrying the lab's name or its veth names would be ours.
    new = _host_links() - links_before
    assert not {n for n in new if name in n or n in ("br0", "eth0") or n.startswith("p")}, new


def test_up_kill9_down_leaves_nothing() -> None:
    _need()
    name = _name()
    links = _host_links()
    fastha("lab", "up", "--detach", "--name", name, "--keepalived")
    try:
        st = _status(name)
        assert sorted(st["nodes"]) == ["a", "b", "client", "k"]
        assert all(st["namespaces"].values())
        a, b, k = st["nodes"]["a"], st["nodes"]["b"], st["nodes"]["k"]
        assert (a["impl"], b["impl"], k["impl"]) == ("fastha", "fastha", "keepalived")
        assert a["states"] == {"VI_1": "MASTER"}
        assert a["running"] and b["running"] and k["running"]
        # Addresses only from the benchmark range 198.18.0.0/15.
        for n in st["nodes"].values():
            assert n["ipv4"].startswith("198.18.") or n["ipv4"].startswith("198.19.")
        assert all(v.startswith("198.18.") for v in st["vips"])
        # kill -9 the master mid-run: the backup takes over, `lab down` still cleans up.
        os.kill(a["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _status(name)["nodes"]["b"]["states"].get("VI_1") != "MASTER":
            assert time.monotonic() < deadline, _status(name)
            time.sleep(0.1)
        assert not _status(name)["nodes"]["a"]["running"]
    finally:
        down = fastha("lab", "down", name, check=False)
    assert down.returncode == 0, down.stderr
    _assert_gone(name, st, links)
    # A second `down` of a lab that is gone says so and fails.
    assert fastha("lab", "down", name, check=False).returncode != 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_foreground_up_torn_down_on_signal(sig: signal.Signals) -> None:
    _need()
    name = _name()
    links = _host_links()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastha.cli.main", "lab", "up", "--name", name, "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # "holding the lab ..." once it is up
        assert "holding" in line, line + proc.stderr.read()
        st = _status(name)
        assert st["nodes"]["a"]["states"] == {"VI_1": "MASTER"}
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            fastha("lab", "down", name, check=False)
    assert proc.returncode == 0
    _assert_gone(name, st, links)


def test_python_api_tears_down_on_error(tmp_path: Path) -> None:
    """An exception inside ``with Lab(...)`` removes everything, as Ctrl-C does."""
    _need()
    from fastha.bench.lab import Director, Lab, LabSpec

    name = _name()
    spec = LabSpec(name=name, directors=(Director("a", "fastha", 150),), advert_int=0.1)
    with pytest.raises(RuntimeError, match="boom"), Lab(spec) as lab:
        lab.wait_master("a", timeout=30)
        st = lab.status()
        raise RuntimeError("boom")
    _assert_gone(name, st, _host_links())
