"""lvs_sync_daemon inside the UML guest: ``fastha daemon -P -n -l`` drives the kernel's
IPVS sync daemon with its vrrp_instance, ``ipvsadm -L --daemon`` is the judge.

keepalived (vrrp_scheduler.c vrrp_init_state, vrrp.c, ipvswrapper.c): a backup daemon
at start-up for an instance that does not start as master, the master daemon (and the
backup one stopped) when it becomes MASTER, and the running one stopped on SIGTERM.
The instance is alone on a veth pair, so it becomes MASTER after Master_Down_Interval.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ipvs import kmod
from tests.ipvs.inside.conftest import ipvsadm

ROOT = Path(__file__).resolve().parents[3]
HANG_GUARD = 30  # seconds: only against a hung daemon; the protocol needs about 4

CONF = """\
global_defs {
    router_id uml-syncd
    lvs_sync_daemon fhs0 VI_SYNC id 7 maxlen 1400
}
vrrp_instance VI_SYNC {
    state BACKUP
    interface fhs0
    virtual_router_id 61
    priority 100
    advert_int 1
    virtual_ipaddress {
        198.18.61.100/24
    }
}
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def veth():
    kmod.load(["veth"])
    ip("link", "add", "fhs0", "type", "veth", "peer", "name", "fhs1")
    try:
        ip("addr", "add", "198.18.61.1/24", "dev", "fhs0")
        ip("link", "set", "fhs0", "up")
        ip("link", "set", "fhs1", "up")
        yield "fhs0"
    finally:
        subprocess.run(["ip", "link", "del", "fhs0"], check=False)


def daemons() -> list[str]:
    """``ipvsadm -L --daemon``: one "master|backup sync daemon (...)" line each."""
    return [ln.strip() for ln in ipvsadm("-L", "--daemon").splitlines() if "sync daemon" in ln]


def wait_for(what: str, pred, proc: subprocess.Popen, log: Path) -> list[str]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + HANG_GUARD
    while True:
        now = daemons()
        if pred(now):
            return now
        if proc.poll() is not None:
            pytest.fail(f"fastha exited ({proc.returncode}) waiting for {what}\n{log.read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}; daemons {now}\n{log.read_text()}")
        time.sleep(0.05)


def test_vrrp_syncd_backup_then_master_then_stopped(veth: str, tmp_path: Path) -> None:
    for state in ("master", "backup"):
        subprocess.run(["ipvsadm", "--stop-daemon", state], capture_output=True, check=False)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    log = tmp_path / "vrrp.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastha.cli.main", "daemon", "-P", "-n", "-l", "-f", str(conf)],
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    try:
        # Started BACKUP: the backup sync daemon, with the configured syncid.
        seen = wait_for("the backup sync daemon", lambda d: any("backup" in x for x in d),
                        proc, log)  # fmt: skip
        assert any(re.search(r"backup sync daemon \(mcast=fhs0, syncid=7", x) for x in seen), seen
        # Alone on the link it becomes MASTER: master daemon, backup daemon stopped.
        seen = wait_for("the master sync daemon only",
                        lambda d: any("master" in x for x in d)
                        and not any("backup" in x for x in d), proc, log)  # fmt: skip
        assert any(re.search(r"master sync daemon \(mcast=fhs0, syncid=7", x) for x in seen), seen
        text = log.read_text()
        assert "Entering MASTER STATE" in text
        assert "Starting IPVS sync daemon in MASTER state" in text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(HANG_GUARD) == 0, log.read_text()
        assert daemons() == [], log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
