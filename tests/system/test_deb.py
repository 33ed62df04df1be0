"""The Debian package as an operator meets it: built with scripts/build-deb (lintian
clean), installed with `apt-get install ./fastha_*.deb` (no service started: a
policy-rc.d says no), run exactly as its systemd unit runs it, and purged to nothing.

These machines have no systemd as PID 1, so the test plays systemd's part: it reads
the installed unit's ExecStart=/ExecReload= and EnvironmentFile=, runs those command
lines in a network namespace with a real keepalived.conf (a vrrp_instance and a
virtual_server) at the default path /etc/keepalived/keepalived.conf -- a private mount
namespace's bind mount, so the host's /etc/keepalived is never touched -- and reads
sd_notify messages on its own NOTIFY_SOCKET: READY=1, RELOADING=1, READY=1,
RELOADING=1 (a broken file: ExecReload fails, the old configuration keeps running),
READY=1, STOPPING=1, in that order. `systemctl stop` is SIGTERM to the main pid
(KillMode=process).

The build takes a minute or two (the venv's dependencies come from PyPI): it is done
once per run (module fixture), or taken from $FASTHA_DEB when a CI step built it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.netns import Topology
from tests.support.prereq import need_root, need_tool
from tests.support.wait import wait_for as support_wait_for

pytestmark = pytest.mark.system

REPO = Path(__file__).resolve().parents[2]
UNIT = Path("/lib/systemd/system/fastha.service")
DEADLINE = 60.0  # generous: nothing here measures time

CONF = """global_defs {{
    router_id deb_test
}}
vrrp_instance VI_1 {{
    interface {ifname}
    state BACKUP
    virtual_router_id 51
    priority {priority}
    advert_int 1
    virtual_ipaddress {{
        198.18.0.100/24
    }}
}}
virtual_server 198.18.0.100 80 {{
    delay_loop 30
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 198.18.0.1 80 {{
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"""
CHECKER_ONLY = (
    "\n".join(
        [*CONF.split("vrrp_instance")[:1], "virtual_server" + CONF.split("virtual_server")[1]]
    )
    .replace("{{", "{")
    .replace("}}", "}")
)
BROKEN = "vrrp_instance VI_1 {\n    virtual_router_id 300\n"


def wait_for(cond: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    return support_wait_for(cond, what, deadline, 0.05)


def sh(
    *cmd: str, check: bool = True, timeout: float = 600, **kw: Any
) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"{shlex.join(cmd)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def installed() -> bool:
    r = sh("dpkg-query", "-W", "-f=${Status}", "fastha", check=False)
    return "install ok installed" in r.stdout


@contextlib.contextmanager
def no_service_starts() -> Iterator[None]:
    """policy-rc.d exit 101 for the length of an apt run (one that exists is kept)."""
    policy = Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    if ours:
        policy.write_text("#!/bin/sh\n# tests/system/test_deb.py: no service starts\nexit 101\n")
        policy.chmod(0o755)
    try:
        yield
    finally:
        if ours:
            policy.unlink(missing_ok=True)


def purge() -> None:
    with no_service_starts():
        sh("apt-get", "-o", "DPkg::Lock::Timeout=600", "purge", "-y", "-q", "fastha",
           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_root()
    for tool in ("dpkg-deb", "lintian", "apt-get", "systemd-analyze"):
        need_tool(tool)
    if not Path("/usr/bin/python3.11").exists():
        pytest.fail("Debian's python3.11 is missing: run `bash scripts/test` (python3-venv)")
    given = os.environ.get("FASTHA_DEB")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("deb")
    # build-deb runs lintian with --fail-on error,warning: a new tag fails the build.
    r = sh("bash", str(REPO / "scripts" / "build-deb"), str(out), timeout=1200)
    return Path(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def package(deb: Path) -> Iterator[list[str]]:
    """The package installed (apt, as the README says), its file list; purged after."""
    if installed():
        pytest.fail("a fastha package is already installed here; the test would purge it")
    try:
        with no_service_starts():
            sh("apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", str(deb),
               env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
        files = sh("dpkg-query", "-L", "fastha").stdout.split("\n")
        yield [f for f in files if f]
    finally:
        if installed():
            purge()


def test_lintian_overrides_are_explained() -> None:
    """Each override in the package carries a comment saying why."""
    lines = (REPO / "contrib" / "debian" / "lintian-overrides").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("fastha:"):
            j = i
            while j > 0 and lines[j - 1].startswith("fastha:"):
                j -= 1  # a group of overrides shares the comment above it
            assert j > 0 and lines[j - 1].startswith("#"), f"override without a reason: {line}"


def test_install_run_purge(package: list[str], tmp_path: Path) -> None:
    assert "/usr/sbin/fastha" in package and str(UNIT) in package
    assert "/etc/default/fastha" in sh("dpkg-query", "-W", "-f=${Conffiles}", "fastha").stdout
    assert "/usr/share/man/man8/fastha.8.gz" in package
    assert "/usr/share/man/man8/fastha-daemon.8.gz" in package
    # Nothing in system Python: the application imports from /opt/fastha only.
    assert not any("/usr/lib/python3" in f or "/usr/local/lib" in f for f in package)
    assert sh("/usr/bin/python3.11", "-c", "import fastha", check=False).returncode != 0
    out = sh("/usr/sbin/fastha", "--version").stdout
    assert re.fullmatch(r"fastha, version \S+\n", out), out
    version = sh("dpkg-query", "-W", "-f=${Version}", "fastha").stdout
    assert version in out
    r = sh("/usr/sbin/fastha", "daemon", "-v", check=False)
    assert r.returncode == 0 and r.stderr.startswith(f"fastha v{version} ")
    # A sample without interfaces of this machine's: a checker-only director.
    sample = tmp_path / "sample.conf"
    sample.write_text(CHECKER_ONLY)
    r = sh("/usr/sbin/fastha", "check-config", "-f", str(sample), check=False)
    assert r.returncode == 0, r.stderr
    sample.write_text(BROKEN)
    assert sh("/usr/sbin/fastha", "check-config", "-f", str(sample), check=False).returncode == 5
    # The unit as installed, with its man pages (Documentation=) found by man.
    r = sh("systemd-analyze", "verify", str(UNIT), check=False)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    # Commands without the bench extra say what to install, in one line, no traceback.
    r = sh("/usr/sbin/fastha", "bench", "failover", "--help", check=False)
    assert r.returncode == 0, r.stderr
    r = sh("/usr/sbin/fastha", "bench", "failover", check=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "pip install 'fastha[bench]'" in r.stderr


def test_unit_is_hardened_beyond_keepalived(package: list[str]) -> None:
    """systemd-analyze security on the unit files: fastha's exposure below keepalived's."""

    def exposure(unit: str) -> float:
        r = sh("systemd-analyze", "security", "--offline=true", "--no-pager", unit, check=False)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        assert m, r.stdout[-2000:] + r.stderr
        return float(m.group(1))

    ours = exposure(str(UNIT))
    keepalived = exposure("/lib/systemd/system/keepalived.service")
    print(f"systemd-analyze security: fastha {ours}, keepalived {keepalived}")
    assert ours < keepalived
    text = UNIT.read_text()
    for line in ("Type=notify", "Delegate=yes", "ConditionFileNotEmpty=/etc/keepalived/keepalived.conf",
                 "Documentation=man:fastha(8)"):  # fmt: skip
        assert line in text.splitlines() or any(ln.startswith(line) for ln in text.splitlines())


def unit_lines(key: str) -> list[str]:
    return [ln.split("=", 1)[1].strip() for ln in UNIT.read_text().splitlines()
            if ln.startswith(f"{key}=")]  # fmt: skip


def environment() -> dict[str, str]:
    """EnvironmentFile= as systemd reads it (KEY=VALUE, quotes removed; `-` optional)."""
    env: dict[str, str] = {}
    for spec in unit_lines("EnvironmentFile"):
        path = Path(spec.lstrip("-"))
        if not path.exists():
            assert spec.startswith("-"), f"{path} is required by the unit but missing"
            continue
        for line in path.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k.strip()] = " ".join(shlex.split(v))
    return env


def expand(command: str, env: dict[str, str], mainpid: int | None = None) -> list[str]:
    """systemd's ExecStart= expansion: `$VAR` splits into words, `${VAR}` is one word."""
    words: list[str] = []
    prefix = command.lstrip("-@:+!")
    for word in shlex.split(prefix):
        if word == "$MAINPID":
            words.append(str(mainpid))
        elif re.fullmatch(r"\$[A-Za-z_][A-Za-z0-9_]*", word):
            words += env.get(word[1:], "").split()
        else:
            words.append(re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                                lambda m: env.get(m.group(1), ""), word))  # fmt: skip
    return words


class Notifications:
    """The NOTIFY_SOCKET systemd would own: every datagram, parsed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[dict[str, str]] = []

    def drain(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(4096)
            except (TimeoutError, BlockingIOError):
                return self.messages
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(fields)

    def states(self) -> list[str]:
        keys = ("READY", "RELOADING", "STOPPING")
        return [k for m in self.drain() for k in keys if m.get(k) == "1"]

    def close(self) -> None:
        self.sock.close()


def test_daemon_runs_as_its_unit_runs_it(
    package: list[str], topo: Topology, tmp_path: Path
) -> None:
    node = topo.node("director", ipv4="198.18.0.1/24")
    etc = tmp_path / "etc-keepalived"
    etc.mkdir()
    conf = etc / "keepalived.conf"
    conf.write_text(CONF.format(ifname=node.ifname, priority=100))
    assert conf.stat().st_size > 0  # ConditionFileNotEmpty=/etc/keepalived/keepalived.conf
    assert Path("/etc/keepalived").is_dir(), "keepalived's package makes /etc/keepalived"
    (start,) = unit_lines("ExecStart")
    (reload_line,) = unit_lines("ExecReload")
    assert unit_lines("Type") == ["notify"]
    env = environment()
    # -l: the daemon's log on stderr, so a failure here shows it (syslog is the unit's).
    env["DAEMON_ARGS"] = f"{env.get('DAEMON_ARGS', '')} -l".strip()
    notify = Notifications(tmp_path / "notify.sock")
    run_env = {**os.environ, **env, "NOTIFY_SOCKET": str(notify.path)}
    log = (tmp_path / "daemon.log").open("w")
    # The default config path, privately: a mount namespace with our file bind-mounted
    # over /etc/keepalived; the daemon's argv is the unit's own ExecStart=, exec'd.
    argv = ["ip", "netns", "exec", node.ns, "unshare", "--mount", "--propagation", "private",
            "sh", "-c", f'mount --bind {shlex.quote(str(etc))} /etc/keepalived && exec "$@"',
            "sh", *expand(start, env)]  # fmt: skip
    proc = subprocess.Popen(argv, env=run_env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip

    def reload() -> subprocess.CompletedProcess[str]:
        cmd = ["ip", "netns", "exec", node.ns, *expand(reload_line, env, proc.pid)]
        return sh(*cmd, check=False, timeout=60, env={**os.environ, **env})

    def status() -> dict[str, Any]:
        r = sh("ip", "netns", "exec", node.ns, "/usr/sbin/fastha", "status", "--json",
               check=False, timeout=30)  # fmt: skip
        return json.loads(r.stdout) if r.returncode == 0 else {}

    def instance() -> dict[str, Any] | None:
        vrrp = status().get("vrrp") or {}
        for inst in vrrp.get("instances") or ():
            if inst.get("name") == "VI_1":
                return inst
        return None

    try:
        wait_for(lambda: "READY" in notify.states(), "READY=1")
        assert proc.poll() is None
        # Process titles: what each process is, for ps, pgrep and monitoring agents.
        parent_cmd = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ")
        assert parent_cmd.startswith(b"fastha: parent"), parent_cmd
        assert Path(f"/proc/{proc.pid}/comm").read_text().strip() == "fastha: parent"
        for title in ("fastha: vrrp", "fastha: checker"):
            # (READY=1 comes once they are spawned; each names itself as it starts.)
            r = wait_for(lambda t=title: sh("pgrep", "-P", str(proc.pid), "-x", t, check=False)
                         if sh("pgrep", "-P", str(proc.pid), "-x", t, check=False).returncode == 0
                         else None, title)  # fmt: skip
            assert len(r.stdout.split()) == 1, (title, r)
        wait_for(lambda: (instance() or {}).get("priority") == 100, "VI_1 running")

        conf.write_text(CONF.format(ifname=node.ifname, priority=110))
        r = reload()
        assert r.returncode == 0, r.stderr
        wait_for(lambda: (instance() or {}).get("priority") == 110, "the new priority")

        conf.write_text(BROKEN)
        r = reload()
        assert r.returncode != 0, "a rejected file must fail the unit's ExecReload"
        assert "keyword" in r.stderr or "virtual_router_id" in r.stderr or "error" in r.stderr
        inst = instance()
        assert proc.poll() is None and inst is not None and inst["priority"] == 110

        os.kill(proc.pid, signal.SIGTERM)  # systemctl stop: KillMode=process, SIGTERM
        assert proc.wait(timeout=DEADLINE) == 0
        states = notify.states()
        assert states == ["READY", "RELOADING", "READY", "RELOADING", "READY", "STOPPING"], states
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        notify.close()
        log.close()
        print((tmp_path / "daemon.log").read_text()[-4000:])


def test_purge_leaves_nothing(package: list[str]) -> None:
    purge()
    assert not installed()
    left = [f for f in package if f.startswith(("/opt/fastha", "/etc/default/fastha",
            "/usr/sbin/fastha", "/lib/systemd/system/fastha", "/usr/share/man/man8/fastha",
            "/usr/share/doc/fastha")) and os.path.lexists(f)]  # fmt: skip
    assert left == []
    assert not Path("/opt/fastha").exists()
    leftovers = [p for p in ("/etc/systemd/system/multi-user.target.wants/fastha.service",
                             "/var/lib/systemd/deb-systemd-helper-enabled/fastha.service",
                             "/var/lib/systemd/deb-systemd-helper-masked/fastha.service")
                 if os.path.lexists(p)]  # fmt: skip
    leftovers += [str(p) for p in Path("/var/lib/systemd").rglob("*fastha*")]
    leftovers += [str(p) for p in Path("/etc/systemd").rglob("*fastha*")]
    assert leftovers == []
