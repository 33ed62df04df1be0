"""Issue 15: files and code a root daemon must not let a local user turn against it.

Every test performs the attack as a real unprivileged user it creates
(tests/support/attacker_files.py: useradd, setpriv, userdel on any exit), against the real
daemon in a network namespace, then asserts the attack failed AND the daemon kept its
state and VIP. Where keepalived 2.2.7 has the same defence (its /tmp dump files,
CVE-2018-19044/19045/19046; its non-blocking track_file read) the same attack runs
against keepalived too: it shows the test tells a defended daemon from an undefended one.

Each test here failed on the code before its fix (the planted temp file was written
through, the planted module ran as root, the planted pickle ran as root, the lab's
planted JSON had root delete a directory, the FIFO stopped the adverts, the squatted
notify FIFO received the notifications).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.attacker_files import PYTHON, Attacker, local_attacker, scratch_dir, victim
from tests.support.netns import Topology
from tests.support.vrrp_nodes import NodeSpec, Router, VrrpCluster, VrrpNode, need_impl
from tests.support.vrrp_peer import IMPLS, MARKER, Impl, Peer, command, fastha_binary

pytestmark = pytest.mark.system

DEADLINE = 20.0  # generous: CI machines are busy; nothing here measures time
SIGJSON = signal.SIGRTMIN + 2  # keepalived --signum=JSON (36), fastha's too


def wait_for(cond: Callable[[], Any], deadline: float = DEADLINE) -> Any:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    return cond()


class HardenedPeer(Peer):
    """A Peer started with extra arguments, environment or working directory."""

    def __init__(self, base: Peer, *, extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 cwd: str | None = None) -> None:  # fmt: skip
        super().__init__(base.topo, base.node, base.impl, base.conf, base.workdir)
        self.extra, self.env, self.cwd = extra, env, cwd

    def start(self) -> Peer:
        self.starts += 1
        self.stopped = False
        cmd = [*command(self.impl, self.conf, self.workdir), *self.extra]
        kw: dict[str, Any] = {"env": self.env} if self.env is not None else {}
        if self.cwd is not None:
            kw["cwd"] = self.cwd
        with self.log_path.open("a") as log:
            log.write(f"{MARKER} #{self.starts}: {' '.join(cmd)}\n")
            log.flush()
            self.proc = self.topo.popen(self.node, *cmd, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, **kw)  # fmt: skip
        return self


def harden(node: VrrpNode, **kw: Any) -> HardenedPeer:
    node.peer = HardenedPeer(node.peer, **kw)
    return node.peer


def single(topo: Topology, impl: Impl, **router: Any) -> VrrpCluster:
    return VrrpCluster(topo, Router(**router), [NodeSpec("a", impl, 150, state="MASTER")],
                       observer=False)  # fmt: skip


def up(cluster: VrrpCluster, name: str = "a") -> None:
    cluster.start(name)
    n = cluster.wait_state(name, "MASTER", timeout=DEADLINE)
    cluster.wait_vip(n, timeout=DEADLINE)


def holds(cluster: VrrpCluster, name: str = "a") -> None:
    """The daemon kept running, its state and its VIP."""
    n = cluster[name]
    assert n.peer.running, n.peer.tail()
    assert n.state() == "MASTER", n.peer.tail()
    assert cluster.has_vip(n), n.peer.tail()


def ns_pids(topo: Topology, node: VrrpNode) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", node.node.ns], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


@pytest.fixture
def mallory() -> Iterator[Attacker]:
    with local_attacker() as user:
        yield user


@pytest.fixture
def base() -> Iterator[Path]:
    with scratch_dir() as path:
        yield path


# -- item 2: the dump files (keepalived.data, .stats, keepalived.json) -------------------

PLANT_DUMPS = """
import os, sys
tmpd, data_victim, json_victim, tmp_victim = sys.argv[1:5]
pids = sys.argv[5:]
os.symlink(data_victim, f"{tmpd}/keepalived.data")    # CVE-2018-19044: followed?
os.symlink(json_victim, f"{tmpd}/keepalived.json")
fd = os.open(f"{tmpd}/keepalived.stats", os.O_CREAT | os.O_WRONLY, 0o666)  # pre-created
os.fchmod(fd, 0o666); os.close(fd)
for pid in pids:  # fastha's old, predictable temporary names
    os.symlink(tmp_victim, f"{tmpd}/keepalived.data.{pid}.tmp")
    os.symlink(tmp_victim, f"{tmpd}/keepalived.json.{pid}.tmp")
    fd = os.open(f"{tmpd}/keepalived.stats.{pid}.tmp", os.O_CREAT | os.O_WRONLY, 0o666)
    os.fchmod(fd, 0o666); os.close(fd)
"""


@pytest.mark.parametrize("impl", IMPLS)
def test_dump_files_planted_symlinks_and_files(topo: Topology, mallory: Attacker, base: Path,
                                               impl: Impl) -> None:  # fmt: skip
    need_impl(impl)
    tmpd = base / "tmp"  # the attacker's /tmp: root's, 1777
    victims = {k: victim(base, k) for k in ("data", "json", "tmp")}
    before = {k: v.read_bytes() for k, v in victims.items()}
    with single(topo, impl) as cluster:
        # keepalived puts them in $TMPDIR (lib/utils.c set_tmp_dir); fastha is told.
        harden(cluster["a"], env={**os.environ, "TMPDIR": str(tmpd)},
               extra=() if impl == "keepalived" else (
                   "--data-file", f"{tmpd}/keepalived.data",
                   "--stats-file", f"{tmpd}/keepalived.stats",
                   "--json-file", f"{tmpd}/keepalived.json"))  # fmt: skip
        up(cluster)
        pids = [str(p) for p in ns_pids(topo, cluster["a"])]
        mallory.python(PLANT_DUMPS, str(tmpd), str(victims["data"]), str(victims["json"]),
                       str(victims["tmp"]), *pids)  # fmt: skip
        daemon = cluster["a"].peer.proc
        assert daemon is not None
        for sig in (signal.SIGUSR1, signal.SIGUSR2, SIGJSON):
            os.kill(daemon.pid, sig)

        def written(name: str) -> bool:
            st = os.lstat(tmpd / name)
            return stat.S_ISREG(st.st_mode) and st.st_uid == 0 and st.st_size > 0

        wait_for(lambda: all(written(n) for n in ("keepalived.data", "keepalived.stats",
                                                   "keepalived.json")))  # fmt: skip
        for key, path in victims.items():
            assert path.read_bytes() == before[key], f"{impl} wrote through a planted {key} link"
        for name in ("keepalived.data", "keepalived.stats", "keepalived.json"):
            st = os.lstat(tmpd / name)
            assert stat.S_ISREG(st.st_mode), f"{name} is not a regular file ({impl})"
            assert st.st_uid == 0, f"{name} is owned by uid {st.st_uid} ({impl})"
            assert not st.st_mode & 0o022, f"{name} has mode {st.st_mode:o} ({impl})"
            assert b"VI_1" in (tmpd / name).read_bytes(), name
        # The attacker cannot write what the daemon wrote.
        probe = mallory.run("sh", "-c", f"echo x >> {tmpd}/keepalived.stats", check=False)
        assert probe.returncode != 0
        holds(cluster)


def test_dump_writer_refuses_places_others_control(mallory: Attacker, base: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """The one writer of every dump file (keepalived_check.data too): where someone else
    could redirect or replace the file it refuses, and says why; in a sticky /tmp it
    replaces what was planted by a file of root's."""
    from fastha.runtime.dumpfiles import check_data_file, write_text

    tmpd = base / "tmp"
    opened = base / "open"
    opened.mkdir()
    opened.chmod(0o777)  # root's, writable by all, not sticky
    mallory.run("mkdir", "-m", "0755", str(tmpd / "theirs"))
    mallory.run("ln", "-s", str(base / "root"), str(tmpd / "link"))  # -> root's directory
    refused = {
        tmpd / "theirs" / "keepalived.data": "owned by uid",
        opened / "keepalived.data": "writable by others",
        tmpd / "link" / "keepalived.data": "owned by uid",
    }
    for path, why in refused.items():
        caplog.clear()
        assert write_text(str(path), "VRRP Topology\n") is False, path
        assert f"Cannot write {path}" in caplog.text and why in caplog.text, caplog.text
    assert not (base / "root" / "keepalived.data").exists()
    assert not (opened / "keepalived.data").exists()
    target = Path(check_data_file(str(tmpd / "keepalived.data")))
    mallory.run("sh", "-c", f"echo planted > {target} && chmod 666 {target}")
    assert write_text(str(target), "LVS Topology\n") is True
    st = os.lstat(target)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    assert target.read_text() == "LVS Topology\n"
    assert sorted(p.name for p in tmpd.iterdir()) == ["keepalived_check.data", "link", "theirs"]


# -- item 4: a module planted in the daemon's working directory ----------------------

PLANT = "import sys\nopen(sys.argv[1], 'w').write(sys.argv[2])"
PAYLOAD = "import os\nopen({marker!r}, 'a').write(f'{{os.getuid()}}\\n')\n"


def test_planted_module_in_working_directory(topo: Topology, mallory: Attacker, base: Path) -> None:
    need_impl("fastha")
    work = base / "work"  # a directory the attacker owns, where root starts the daemon
    work.mkdir()
    os.chown(work, mallory.uid, mallory.gid)
    marker = base / "tmp" / "pwned"
    payload = PAYLOAD.format(marker=str(marker))
    for module in ("argparse", "ctypes", "uvloop", "orjson", "pickle"):
        mallory.python(PLANT, str(work / f"{module}.py"), payload)
    with single(topo, "fastha") as cluster:
        harden(cluster["a"], cwd=str(work))
        up(cluster)
        time.sleep(1)  # a respawn would import again
        assert not marker.exists(), f"planted module ran as uid {marker.read_text().split()}"
        holds(cluster)


# -- item 8: the config snapshot handed to the children --------------------------------

EVIL_PICKLE = """
import os, pickle, sys
class Evil:
    def __reduce__(self):
        return (os.system, (f"id -u >> {sys.argv[2]}",))
tmp = sys.argv[1] + ".evil"
with open(tmp, "wb") as f:
    f.write(pickle.dumps(Evil()))
os.replace(tmp, sys.argv[1])
"""


def test_snapshot_in_attacker_directory_never_loaded(topo: Topology, mallory: Attacker,
                                                      base: Path) -> None:  # fmt: skip
    need_impl("fastha")
    run = base / "tmp" / "run"  # the operator put the control socket in /tmp/run ...
    mallory.run("mkdir", "-m", "0755", str(run))  # ... which the attacker made first
    marker = base / "tmp" / "pwned"
    with single(topo, "fastha") as cluster:
        peer = harden(cluster["a"], extra=("--control-socket", f"{run}/control.sock"))
        peer.start()
        started = wait_for(lambda: not peer.running or peer.state() == "MASTER")
        assert started
        if peer.running:
            # Undefended: replace the snapshot, then a child crash makes a respawn load it.
            wait_for(lambda: (run / "config.snapshot").exists())
            mallory.python(EVIL_PICKLE, str(run / "config.snapshot"), str(marker))
            parent = peer.proc.pid if peer.proc else 0
            for pid in ns_pids(topo, cluster["a"]):
                if pid != parent:
                    os.kill(pid, signal.SIGKILL)
            wait_for(marker.exists, 10)
        assert not marker.exists(), f"the planted pickle ran as uid {marker.read_text().split()}"
        # Refused, and said why (the run directory is not root's).
        assert not peer.running
        assert "config.snapshot" in peer.log() and "not root" in peer.log(), peer.tail()


def test_snapshot_temporary_not_followed_on_reload(topo: Topology, mallory: Attacker,
                                                    base: Path) -> None:  # fmt: skip
    need_impl("fastha")
    tmpd = base / "tmp"  # root's and sticky, as /tmp: allowed, and nobody may swap our files
    target = victim(base, "snapshot-victim")
    before = target.read_bytes()
    with single(topo, "fastha") as cluster:
        peer = harden(cluster["a"], extra=("--control-socket", f"{tmpd}/control.sock"))
        up(cluster)
        assert peer.proc is not None
        parent = peer.proc.pid
        mallory.run("ln", "-s", str(target), f"{tmpd}/config.snapshot.{parent}.tmp")
        log_before = peer.log().count("Reload")
        os.kill(parent, signal.SIGHUP)
        assert wait_for(lambda: "accepted" in peer.log()[-2000:] or
                        peer.log().count("Reload") > log_before + 1), peer.tail()  # fmt: skip
        time.sleep(1)
        assert target.read_bytes() == before, "the reload wrote the snapshot through a symlink"
        snap = os.lstat(tmpd / "config.snapshot")
        assert stat.S_ISREG(snap.st_mode) and snap.st_uid == 0
        assert stat.S_IMODE(snap.st_mode) == 0o600
        holds(cluster)


# -- item 6: fastha lab down|status and a planted state file ----------------------------


def test_lab_down_ignores_planted_state(mallory: Attacker, base: Path) -> None:
    fastha = fastha_binary()
    assert fastha, "fastha is not installed in .venv"
    precious = base / "root" / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep me\n")
    name = f"fhsec{os.getpid() % 100000}"
    lab_tmp = Path("/tmp/fastha-lab")
    made = not lab_tmp.exists()
    if not made and lab_tmp.stat().st_uid != mallory.uid:
        # Someone else's /tmp/fastha-lab: plant beside it in a copy we can reach.
        pytest.fail(f"{lab_tmp} exists (uid {lab_tmp.stat().st_uid}); remove it and re-run")
    doc = {
        "name": name,
        "spec": {"name": name, "directors": [{"name": "a", "impl": "fastha", "priority": 150}],
                 "version": 3, "advert_int": 0.1, "instances": 1, "client": False},
        "switch": f"{name}-sw", "namespaces": [], "workdir": str(precious),
        "own_workdir": True, "nodes": {}, "created_by": 1,
    }  # fmt: skip
    try:
        mallory.run("mkdir", "-p", "-m", "0755", str(lab_tmp))
        mallory.python("import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
                       str(lab_tmp / f"{name}.json"), json.dumps(doc))  # fmt: skip
        down = subprocess.run([fastha, "lab", "down", name], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        st = subprocess.run([fastha, "lab", "status", name], capture_output=True, text=True,
                            timeout=60)  # fmt: skip
        assert (precious / "data").read_text() == "keep me\n", down.stdout + down.stderr
        assert down.returncode != 0, down.stdout
        assert st.returncode != 0 and str(precious) not in st.stdout, st.stdout
    finally:
        (lab_tmp / f"{name}.json").unlink(missing_ok=True)
        if made:
            subprocess.run(["rm", "-rf", str(lab_tmp)], check=False)


# -- Low: track_file replaced by a FIFO; notify_fifo squatted -------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_track_file_fifo_does_not_stop_adverts(topo: Topology, mallory: Attacker, base: Path,
                                               impl: Impl) -> None:  # fmt: skip
    need_impl(impl)
    need_impl("keepalived")
    app = base / "app"  # the monitored application's own directory, its status file
    app.mkdir()
    os.chown(app, mallory.uid, mallory.gid)
    status = app / "status"
    mallory.run("sh", "-c", f"echo 0 > {status}")
    track = (f"vrrp_track_file app {{\n    file {status}\n    weight 0\n}}",)
    router = Router(version=2, advert_int=1)
    specs = [NodeSpec("a", impl, 150, state="MASTER", root_extra=track,
                      extra=("track_file {", "    app", "}")),
             NodeSpec("b", "keepalived", 100)]  # fmt: skip
    with VrrpCluster(topo, router, specs, observer=False) as cluster:
        cluster.start_all()
        cluster.wait_state("a", "MASTER", timeout=DEADLINE)
        cluster.wait_state("b", "BACKUP", timeout=DEADLINE)
        cluster.wait_vip("a", timeout=DEADLINE)
        b_masters = cluster["b"].peer.states().count("MASTER")
        mallory.run("sh", "-c", f"rm -f {status} && mkfifo -m 0666 {status}")
        # Longer than the backup's master-down interval (3 x 1 s + skew) after the poll.
        time.sleep(6)
        assert cluster["b"].peer.states().count("MASTER") == b_masters, (
            f"{impl} stopped advertising with a FIFO as its track_file\n{cluster['a'].peer.tail()}"
        )
        holds(cluster)


def test_notify_fifo_squatted_by_another_user(topo: Topology, mallory: Attacker,
                                              base: Path) -> None:  # fmt: skip
    need_impl("fastha")
    fifo = base / "tmp" / "keepalived.fifo"
    stolen = base / "tmp" / "stolen"
    mallory.run("mkfifo", "-m", "0622", str(fifo))
    reader = mallory.popen(PYTHON, "-c", "import sys\nwith open(sys.argv[1], 'rb') as f, "
                           "open(sys.argv[2], 'wb', buffering=0) as out:\n"
                           "    while (b := f.read(1)):\n        out.write(b)\n",
                           str(fifo), str(stolen))  # fmt: skip
    try:
        with single(topo, "fastha", global_extra=(f"notify_fifo {fifo}",)) as cluster:
            up(cluster)
            time.sleep(1)
            holds(cluster)
            log = cluster["a"].peer.log()
    finally:
        reader.kill()
        reader.wait(timeout=10)
    got = stolen.read_bytes() if stolen.exists() else b""
    assert b"INSTANCE" not in got, f"the squatted FIFO received {got!r}"
    assert "notify_fifo" in log and "owned by uid" in log, log[-2000:]


def test_file_check_fifo_read_does_not_block(mallory: Attacker, base: Path) -> None:
    """FILE_CHECK (the checker's track_file) reads what is there without blocking."""
    path = base / "tmp" / "weight"
    mallory.run("mkfifo", "-m", "0666", str(path))
    code = "import sys\nfrom fastha.probes.file import read_value\nprint(read_value(sys.argv[1]))"
    try:
        r = subprocess.run([str(Path(fastha_binary() or "").parent / "python"), "-c", code,
                            str(path)], capture_output=True, text=True, timeout=30)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("reading a FIFO planted as a FILE_CHECK file blocked")
    assert r.returncode == 0 and r.stdout.strip() == "0", r.stderr


# -- Low: a reload of a config that fans out to nothing ---------------------------------


def test_reload_of_exploding_config_is_refused_and_daemon_holds(topo: Topology) -> None:
    need_impl("fastha")
    with single(topo, "fastha") as cluster:
        node = cluster["a"]
        up(cluster)
        good = node.conf.read_text()
        bomb = ["$L0="]
        for k in range(1, 12):  # ten of the level below, eleven levels, all empty
            bomb += [f"$L{k}=" + " \\\n".join([f"$L{k - 1}"] * 10), ""]
        node.conf.write_text("\n".join([*bomb, "$L11", good]))
        assert node.peer.proc is not None
        os.kill(node.peer.proc.pid, signal.SIGHUP)
        assert wait_for(lambda: "Reload failed" in node.peer.log(), 120), node.peer.tail()
        assert "fanning out to nothing" in node.peer.log(), node.peer.tail()
        holds(cluster)


def test_reload_validates_off_the_parents_loop(topo: Topology) -> None:
    """The parent answers `status` while it validates a big file (the ordering shows it:
    the answer predates the reload's outcome), so a hostile file cannot freeze it."""
    from fastha.runtime.control import request_sync

    need_impl("fastha")
    with single(topo, "fastha") as cluster:
        node = cluster["a"]
        up(cluster)
        good = node.conf.read_text()
        big = "~SEQ(i, 1, 100000) vrrp_script s${i} { script /bin/true }\n"
        bad = "vrrp_instance BAD {\n    virtual_router_id 300\n}\n"  # refused: nothing applied
        node.conf.write_text(good + big + bad)
        assert node.peer.proc is not None
        os.kill(node.peer.proc.pid, signal.SIGHUP)
        assert wait_for(lambda: "Reloading: validating" in node.peer.log()), node.peer.tail()
        answer = request_sync(f"/run/fastha/{node.node.ns}/control.sock", "status", timeout=120)
        assert answer["parent"]["last_reload"] is None, "status waited for the validation"
        assert wait_for(lambda: "Reload failed" in node.peer.log(), 120), node.peer.tail()
        holds(cluster)
