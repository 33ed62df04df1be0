"""A VRRP lab in network namespaces: a bridge, N directors, a client that observes.

    lab = Lab(LabSpec(name="fhl1", directors=[Director("a", "fastha", 150),
                                              Director("b", "keepalived", 100)]))
    with lab:                      # builds, starts the daemons; tears down on any exit
        lab.wait_master("a")
        with lab.capture("cap.pcap"):      # tcpdump in the client namespace
            lab.kill("a")                  # kill -9 (stop(): SIGTERM; link_down(): cable)
            lab.wait_state("b", "MASTER")

Topology: namespace ``NAME-sw`` holds bridge ``br0``; each node namespace ``NAME-X``
has ``eth0``, a veth created inside the switch namespace with its peer moved straight
into the node, so nothing is ever created in the host's namespace and deleting the
namespaces removes every interface. Addresses come from the benchmark range
198.18.0.0/15 (RFC 2544) only: directors 198.18.0.11, .12 ...; the client 198.18.0.2;
VIPs 198.18.1.1 and up (one per VRRP instance). Nothing is routed to the host.

Every director runs its daemon (``fastha daemon -P -n -l`` or Debian's keepalived, same
flags) from one generated keepalived.conf: the same file whichever implementation runs
it. State (namespaces, pids, paths) is written to ``/run/fastha-lab/NAME.json`` so
``fastha lab down|status`` work from another invocation; it is read back only from a
root-owned, 0600 file in root-owned directories (there is no /tmp fallback: anyone can
write a JSON there naming a directory to delete). Teardown kills only processes inside
the lab's namespaces (ours), then deletes the namespaces, the state file and the work
directory -- only a directory this module made (a root-owned mkdtemp directory holding
its marker file), whatever the state file says.

Daemon states for orchestration (wait for a master before a trial) are read from the
daemons' console logs; measurements never are: they come from the client's capture.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from fastha.drivers.files import open_dir, read_private, write_atomic

Impl = Literal["fastha", "keepalived"]
KEEPALIVED = "/usr/sbin/keepalived"
STATE_DIRS = (Path("/run/fastha-lab"),)
WORKDIR_MARKER = ".fastha-lab"  # in every work directory up() made: down() deletes only those
SUBNET = "198.18.0.0/15"  # RFC 2544 benchmark range; every address below is inside it
DIRECTOR_IP = "198.18.0.{}"
CLIENT_IP = "198.18.0.2"
PREFIX = 16  # /16: directors (198.18.0.x) and VIPs (198.18.1.x ...) on one link
IFNAME = "eth0"
VRID_BASE = 1

# keepalived 2.x and fastha log "(VI_1) Entering MASTER STATE"; keepalived 1.x
# "VRRP_Instance(VI_1) Entering MASTER STATE" (still accepted).
STATE_RE = re.compile(
    r"(?:VRRP_Instance)?\((?P<instance>[^)\s]+)\) Entering (?P<state>MASTER|BACKUP|FAULT) STATE"
)
MARKER = "=== fastha lab: start"


class LabError(RuntimeError):
    """The lab could not be built or a daemon did not reach a state in time."""


# -- description --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Director:
    name: str
    impl: Impl = "fastha"
    priority: int = 100


@dataclass(frozen=True, slots=True)
class LabSpec:
    """What to build: the directors and the virtual routers they all run."""

    name: str
    directors: tuple[Director, ...] = (Director("a", "fastha", 150), Director("b", "fastha", 100))
    version: Literal[2, 3] = 3
    advert_int: float = 0.01
    instances: int = 1  # VRRP instances (VI_1 .. VI_K, VRIDs 1..K) on the one interface
    client: bool = True

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", self.name):
            raise ValueError(f"lab name {self.name!r}: 1-20 of [a-z0-9-], starting with a letter")
        if not 1 <= self.instances <= 255:
            raise ValueError("instances: 1..255 (one VRID each)")
        if len({d.name for d in self.directors}) != len(self.directors):
            raise ValueError("director names must be unique")
        if self.version == 2 and self.advert_int < 1:
            raise ValueError("VRRPv2 advert_int is whole seconds; use version 3 for sub-second")

    def vip(self, i: int) -> str:
        """The VIP of instance ``i`` (0-based): 198.18.1.1 and up."""
        return f"198.18.{1 + i // 250}.{1 + i % 250}"


def default_directors(
    n: int, impl: Impl = "fastha", keepalived: bool = False
) -> tuple[Director, ...]:
    """a (150), b (100), c (90) ...; with ``keepalived`` one more node, ``k`` (50)."""
    names = "abcdefghij"
    ds = [Director(names[i], impl, 150 if i == 0 else 100 - 10 * (i - 1)) for i in range(n)]
    if keepalived:
        ds.append(Director("k", "keepalived", 50))
    return tuple(ds)


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def keepalived_conf(spec: LabSpec, d: Director) -> str:
    """One director's keepalived.conf (valid for keepalived 2.2.7 and for fastha)."""
    out = [
        f"! generated by fastha lab {spec.name} for director {d.name}",
        "global_defs {",
        f"    router_id {spec.name}-{d.name}",
        f"    vrrp_version {spec.version}",
        "    enable_script_security",
        "    script_user root",
        "}",
        "",
    ]
    for i in range(spec.instances):
        out += [
            f"vrrp_instance VI_{i + 1} {{",
            "    state BACKUP",
            f"    interface {IFNAME}",
            f"    virtual_router_id {VRID_BASE + i}",
            f"    priority {d.priority}",
            f"    advert_int {_num(spec.advert_int)}",
            "    virtual_ipaddress {",
            f"        {spec.vip(i)}/32",
            "    }",
            "}",
            "",
        ]
    return "\n".join(out)


# -- helpers ---------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def _exec(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *cmd], check=check, capture_output=True, text=True
    )


def ns_pids(ns: str) -> list[int]:
    out = _ip("netns", "pids", ns, check=False).stdout.split()
    return [int(p) for p in out if p.isdigit()]


def namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines()]


def state_dir() -> Path:
    d = STATE_DIRS[0]
    try:
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(open_dir(str(d)))
    except OSError as exc:
        raise LabError(f"state directory {d}: {exc}") from None
    return d


def _made_by_us(workdir: Path, name: str) -> bool:
    """A work directory up() made: a real directory (no symlink) of ours, named by
    mkdtemp for this lab, holding our marker -- never what a state file merely names."""
    try:
        st = workdir.lstat()
        marker = (workdir / WORKDIR_MARKER).lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(st.st_mode)
        and st.st_uid == os.geteuid()
        and not st.st_mode & 0o022
        and workdir.name.startswith(f"fastha-lab-{name}-")
        and stat.S_ISREG(marker.st_mode)
        and marker.st_uid == os.geteuid()
    )


def state_path(name: str) -> Path | None:
    """The state file of a lab, wherever it was written."""
    return next((p for d in STATE_DIRS if (p := d / f"{name}.json").exists()), None)


def daemon_command(impl: Impl, conf: Path, rundir: Path) -> list[str]:
    """The foreground, VRRP-only command line of ``impl`` for ``conf``."""
    if impl == "fastha":
        return [
            sys.executable, "-I", "-m", "fastha.cli.main", "daemon", "-P", "-n", "-l",
            "-f", str(conf), "--json-file", str(rundir / "fastha.json"),
            "-p", str(rundir / "fastha.pid"), "-r", str(rundir / "vrrp.pid"),
        ]  # fmt: skip
    exe = keepalived_binary()
    if exe is None:
        raise LabError("keepalived is not installed (Debian: apt-get install keepalived)")
    return [
        exe, "-n", "-l", "-D", "-P", "-f", str(conf),
        "-p", str(rundir / "keepalived.pid"), "-r", str(rundir / "vrrp.pid"),
        "-c", str(rundir / "checkers.pid"),
    ]  # fmt: skip


def keepalived_binary() -> str | None:
    return shutil.which("keepalived") or (KEEPALIVED if os.access(KEEPALIVED, os.X_OK) else None)


def need_tools(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)} (Debian: iproute2, tcpdump)")


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (/proc/PID/stat fields 14 and 15);
    0 when it is gone. The command name may hold spaces: split after its ')'."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    rest = stat[stat.rindex(")") + 2 :].split()
    return int(rest[11]) + int(rest[12])


# -- the lab ------------------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    name: str
    ns: str
    port: str  # its bridge port in the switch namespace
    ipv4: str
    mac: str = ""
    impl: str = ""  # "" for the client
    priority: int = 0
    conf: str = ""
    log: str = ""
    rundir: str = ""
    pid: int = 0  # the daemon's pid (its own session: the process group id too)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ifname(self) -> str:
        return IFNAME


class Lab:
    """Build with ``up()`` (or ``with Lab(spec) as lab``), tear down with ``down()``."""

    def __init__(self, spec: LabSpec, workdir: Path | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.switch = f"{spec.name}-sw"
        self.nodes: dict[str, Node] = {}
        self.namespaces: list[str] = []
        self.workdir = workdir
        self._own_workdir = workdir is None
        self._procs: dict[int, subprocess.Popen[Any]] = {}
        self.state_file: Path | None = None

    # -- building -------------------------------------------------------------------

    def up(self, *, start: bool = True) -> Lab:
        """Build the namespaces, write each director's conf, start the daemons. On any
        failure everything built so far is torn down before the error propagates."""
        need_tools("ip")
        taken = {ns for ns in namespaces() if ns == self.switch or ns.startswith(self.name + "-")}
        if taken or state_path(self.name):
            raise LabError(
                f"lab {self.name!r} exists (namespaces {sorted(taken)}); `fastha lab down {self.name}`"
            )
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"fastha-lab-{self.name}-"))
            (self.workdir / WORKDIR_MARKER).write_text(f"{self.name}\n")
        try:
            self.state_file = state_dir() / f"{self.name}.json"
            self.save()  # first, so a crash mid-build still leaves `lab down` a record
            self._add_ns(self.switch)
            _exec(self.switch, "ip", "link", "add", "br0", "type", "bridge",
                  "mcast_snooping", "0", "stp_state", "0", "forward_delay", "0")  # fmt: skip
            _exec(self.switch, "ip", "link", "set", "br0", "up")
            for i, d in enumerate(self.spec.directors):
                n = self._add_node(d.name, DIRECTOR_IP.format(11 + i))
                n.impl, n.priority = d.impl, d.priority
                rundir = self.workdir / d.name
                rundir.mkdir(parents=True, exist_ok=True)
                conf = rundir / "keepalived.conf"
                conf.write_text(keepalived_conf(self.spec, d))
                n.conf, n.rundir, n.log = str(conf), str(rundir), str(rundir / "daemon.log")
            if self.spec.client:
                self._add_node("client", CLIENT_IP)
            self.save()
            if start:
                for n in self.directors():
                    self.start(n.name)
        except BaseException:
            self.down()
            raise
        return self

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        self.save()
        _exec(ns, "ip", "link", "set", "lo", "up")

    def _add_node(self, name: str, ipv4: str) -> Node:
        ns = f"{self.name}-{name}"
        port = f"p{len(self.nodes)}"
        self._add_ns(ns)
        _exec(self.switch, "ip", "link", "add", port, "type", "veth",
              "peer", "name", IFNAME, "netns", ns)  # fmt: skip
        _exec(self.switch, "ip", "link", "set", port, "master", "br0", "up")
        _exec(ns, "ip", "addr", "add", f"{ipv4}/{PREFIX}", "dev", IFNAME)
        _exec(ns, "ip", "link", "set", IFNAME, "up")
        mac = json.loads(_exec(ns, "ip", "-j", "link", "show", "dev", IFNAME).stdout)[0]["address"]
        node = Node(name=name, ns=ns, port=port, ipv4=ipv4, mac=mac)
        self.nodes[name] = node
        return node

    # -- access -------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def directors(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.impl]

    @property
    def client(self) -> Node:
        return self.nodes["client"]

    # -- processes ----------------------------------------------------------------------

    def popen(self, node: Node | str, *cmd: str, **kw: Any) -> subprocess.Popen[Any]:
        """A process inside a node's namespace (``ip netns exec`` execs it: same pid),
        in its own session so its whole group can be signalled."""
        ns = node.ns if isinstance(node, Node) else self.nodes[node].ns
        kw.setdefault("start_new_session", True)
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("cwd", "/")  # never the operator's directory: nothing looked up there
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)
        self._procs[proc.pid] = proc
        return proc

    def run(self, node: Node | str, *cmd: str, check: bool = True) -> str:
        ns = node.ns if isinstance(node, Node) else self.nodes[node].ns
        return _exec(ns, *cmd, check=check).stdout

    def python(self, node: Node | str, *args: str, **kw: Any) -> subprocess.Popen[Any]:
        """This interpreter (fastha importable; -I: isolated) inside a namespace."""
        return self.popen(node, sys.executable, "-I", *args, **kw)

    def start(self, name: str) -> Node:
        n = self.nodes[name]
        if n.pid and _alive(n.pid):
            raise LabError(f"{name} is already running (pid {n.pid})")
        rundir = Path(n.rundir)
        for pidfile in rundir.glob("*.pid"):  # keepalived refuses to start over stale ones
            pidfile.unlink(missing_ok=True)
        cmd = daemon_command(n.impl, Path(n.conf), rundir)  # type: ignore[arg-type]
        with open(n.log, "a") as log:
            log.write(f"{MARKER}: {' '.join(cmd)}\n")
            log.flush()
            proc = self.popen(n, *cmd, stdout=log, stderr=subprocess.STDOUT)
        n.pid = proc.pid
        self.save()
        return n

    def stop(self, name: str, timeout: float = 10) -> None:
        """SIGTERM (a master sends priority 0 and removes its VIPs) and wait."""
        n = self.nodes[name]
        if not n.pid:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(n.pid, signal.SIGTERM)
        if not self._wait_exit(n, timeout):
            self.kill(name)

    def kill(self, name: str) -> None:
        """kill -9 of the daemon's whole process group: a crash, no goodbye."""
        n = self.nodes[name]
        if not n.pid:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(n.pid, signal.SIGKILL)
        self._wait_exit(n, 10)
        # keepalived's VRRP child shares the group; wait until none is left in the netns.
        deadline = time.monotonic() + 5
        while ns_pids(n.ns) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _wait_exit(self, n: Node, timeout: float) -> bool:
        proc = self._procs.get(n.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None:
                if proc.poll() is not None:
                    return True
            elif not _alive(n.pid):
                return True
            time.sleep(0.005)
        return False

    def running(self, name: str) -> bool:
        n = self.nodes[name]
        proc = self._procs.get(n.pid)
        if proc is not None:
            return proc.poll() is None
        return bool(n.pid) and _alive(n.pid)

    def link_down(self, name: str) -> None:
        """The director's bridge port down: carrier loss, as a pulled cable."""
        _exec(self.switch, "ip", "link", "set", self.nodes[name].port, "down")

    def link_up(self, name: str) -> None:
        _exec(self.switch, "ip", "link", "set", self.nodes[name].port, "up")

    def remove_vips(self, name: str) -> None:
        """After kill -9 the VIPs stay on the dead director (a crashed host's would go
        with it); remove them before it comes back."""
        n = self.nodes[name]
        for i in range(self.spec.instances):
            _exec(n.ns, "ip", "addr", "del", f"{self.spec.vip(i)}/32", "dev", IFNAME, check=False)

    def cpu_ticks(self, name: str) -> int:
        """CPU (utime + stime, clock ticks) of every process in the director's namespace."""
        return sum(cpu_ticks(p) for p in ns_pids(self.nodes[name].ns))

    # -- daemon states (orchestration only) ----------------------------------------------

    def log(self, name: str) -> str:
        try:
            text = Path(self.nodes[name].log).read_text(errors="replace")
        except OSError:
            return ""
        i = text.rfind(MARKER)
        return text[i:] if i >= 0 else text

    def states(self, name: str) -> dict[str, str]:
        """Instance -> last logged state of the current run ({} before any, or when the
        daemon is not running)."""
        if not self.running(name):
            return {}
        out: dict[str, str] = {}
        for m in STATE_RE.finditer(self.log(name)):
            out[m["instance"]] = m["state"]
        return out

    def state(self, name: str, instance: str = "VI_1") -> str:
        if not self.running(name):
            return "STOPPED"
        return self.states(name).get(instance, "INIT")

    def wait(self, what: str, cond: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            for n in self.directors():
                proc = self._procs.get(n.pid)
                if (
                    proc is not None
                    and proc.poll() is not None
                    and proc.returncode
                    not in (
                        0,
                        -signal.SIGKILL,
                        -signal.SIGTERM,
                    )
                ):
                    raise LabError(f"{n.name} ({n.impl}) exited with {proc.returncode}\n"
                                   + self.tail(n.name))  # fmt: skip
            if time.monotonic() > deadline:
                raise LabError(
                    f"timed out after {timeout:g} s waiting for {what}\n"
                    + "\n".join(self.tail(n.name) for n in self.directors())
                )
            time.sleep(0.01)

    def wait_state(self, name: str, state: str, timeout: float = 10) -> None:
        self.wait(f"{name} {state}", lambda: self.state(name) == state, timeout)

    def wait_master(self, name: str, timeout: float = 20) -> None:
        """``name`` MASTER on every instance, every other running director BACKUP."""
        k = self.spec.instances

        def settled() -> bool:
            mine = self.states(name)
            if len(mine) < k or any(s != "MASTER" for s in mine.values()):
                return False
            for other in self.directors():
                if other.name != name and self.running(other.name):
                    st = self.states(other.name)
                    if any(s == "MASTER" for s in st.values()):
                        return False
            return True

        self.wait(f"{name} MASTER of {k} instance(s)", settled, timeout)

    def tail(self, name: str, lines: int = 15) -> str:
        body = "\n".join(self.log(name).splitlines()[-lines:])
        return f"--- {name} ({self.nodes[name].impl}) {self.nodes[name].log} ---\n{body}"

    # -- capture ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def capture(
        self, path: Path, bpf: str = "ip proto 112 or arp", node: str = "client"
    ) -> Iterator[Capture]:
        cap = Capture(self, self.nodes[node], path, bpf)
        cap.start()
        try:
            yield cap
        finally:
            cap.stop()

    # -- state file --------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": {
                **{k: v for k, v in asdict(self.spec).items() if k != "directors"},
                "directors": [asdict(d) for d in self.spec.directors],
            },
            "switch": self.switch,
            "namespaces": self.namespaces,
            "workdir": str(self.workdir) if self.workdir else None,
            "own_workdir": self._own_workdir,
            "nodes": {k: asdict(v) for k, v in self.nodes.items()},
            "created_by": os.getpid(),
        }

    def save(self) -> None:
        if self.state_file is None:
            return
        write_atomic(str(self.state_file), json.dumps(self.as_dict(), indent=2).encode(), 0o600)

    @classmethod
    def load(cls, name: str) -> Lab:
        path = state_path(name)
        if path is None:
            raise LabError(
                f"no lab named {name!r} (no state file in {[str(d) for d in STATE_DIRS]})"
            )
        try:
            # Only a file root wrote (0600, root's, in root's directories) is believed.
            doc = json.loads(read_private(str(path)))
        except (OSError, ValueError) as exc:
            raise LabError(f"lab {name!r}: state file refused: {exc}") from None
        s = doc["spec"]
        spec = LabSpec(
            name=s["name"],
            directors=tuple(Director(**d) for d in s["directors"]),
            version=s["version"],
            advert_int=s["advert_int"],
            instances=s["instances"],
            client=s["client"],
        )
        lab = cls(spec, Path(doc["workdir"]) if doc["workdir"] else None)
        lab._own_workdir = doc.get("own_workdir", True)
        lab.namespaces = list(doc["namespaces"])
        lab.nodes = {k: Node(**v) for k, v in doc["nodes"].items()}
        lab.state_file = path
        return lab

    def status(self) -> dict[str, Any]:
        present = set(namespaces())
        nodes = {}
        for n in self.nodes.values():
            row: dict[str, Any] = {
                "namespace": n.ns,
                "present": n.ns in present,
                "ipv4": n.ipv4,
                "mac": n.mac,
            }
            if n.impl:
                row.update(impl=n.impl, priority=n.priority, pid=n.pid,
                           running=self.running(n.name), states=self.states(n.name),
                           log=n.log)  # fmt: skip
            nodes[n.name] = row
        return {
            "name": self.name,
            "switch": self.switch,
            "namespaces": {ns: ns in present for ns in self.namespaces},
            "version": self.spec.version,
            "advert_int": self.spec.advert_int,
            "instances": self.spec.instances,
            "vips": [self.spec.vip(i) for i in range(self.spec.instances)],
            "nodes": nodes,
            "workdir": str(self.workdir),
            "state_file": str(self.state_file),
        }

    # -- teardown -----------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop every process in the lab's namespaces (SIGTERM, then SIGKILL after a
        second), delete the namespaces, the work directory and the state file. Safe to
        call twice, on a half-built lab, and from another invocation. Returns what was
        removed."""
        removed = []
        mine = [ns for ns in self.namespaces if ns == self.switch or ns.startswith(self.name + "-")]
        pids = {p for ns in mine for p in ns_pids(ns)}
        pids |= {p.pid for p in self._procs.values() if p.poll() is None}
        for p in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGTERM)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            for proc in self._procs.values():
                proc.poll()  # reap ours so they stop counting as alive
            time.sleep(0.02)
        for ns in mine:
            for p in ns_pids(ns):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        for proc in self._procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._procs.clear()
        present = set(namespaces())
        for ns in reversed(mine):
            if ns in present:
                _ip("netns", "del", ns, check=False)
                removed.append(ns)
        self.namespaces.clear()
        if self.workdir is not None and self._own_workdir:
            if _made_by_us(self.workdir, self.name):
                shutil.rmtree(self.workdir, ignore_errors=True)
            elif self.workdir.exists():
                print(f"lab {self.name}: not deleting {self.workdir}: not a work directory "
                      "this lab made", file=sys.stderr)  # fmt: skip
        if self.state_file is not None:
            self.state_file.unlink(missing_ok=True)
            self.state_file = None
        return removed

    def __enter__(self) -> Lab:
        if not self.namespaces:
            self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def _alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


class Capture:
    """tcpdump in a namespace writing a pcap: kernel receive timestamps at nanosecond
    precision, flushed per packet (-U) so the file can be read while it runs."""

    def __init__(self, lab: Lab, node: Node, path: Path, bpf: str) -> None:
        self.lab, self.node, self.path, self.bpf = lab, node, path, bpf
        self.proc: subprocess.Popen[bytes] | None = None
        self.dropped: int | None = None

    def start(self) -> Capture:
        need_tools("tcpdump")
        self.proc = self.lab.popen(
            self.node,
            "tcpdump", "-U", "--immediate-mode", "-B", "32768", "--time-stamp-precision", "nano",
            "-n", "-i", IFNAME, "-w", str(self.path), self.bpf,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline().decode(errors="replace")
        if "listening" not in line:
            raise LabError(f"tcpdump did not start in {self.node.ns}: {line!r}")
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        time.sleep(0.1)  # let in-flight frames reach the ring before SIGINT
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        m = re.search(rb"(\d+) packets? dropped by kernel", err or b"")
        self.dropped = int(m.group(1)) if m else None


# -- signals -------------------------------------------------------------------------------


@contextlib.contextmanager
def teardown_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt (as SIGINT does) so the ``finally``
    and ``with`` blocks that tear labs down run; restored on exit."""

    def raise_interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {s: signal.signal(s, raise_interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def unique_name(stem: str) -> str:
    """A lab name unique on this machine for this process: other engineers run labs
    and namespace tests at the same time."""
    return f"{stem}{os.getpid() % 100000}{int(time.monotonic() * 1000) % 1000}"


# -- the client's ARP prober (runs inside the client namespace) -------------------------------


def probe_main(iface: str, vip: str, count: int, interval_s: float) -> int:
    """Send ``count`` ARP requests for ``vip`` on an absolute schedule every
    ``interval_s`` (replies are read from the capture, not here)."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    mac = bytes.fromhex(
        Path(f"/sys/class/net/{iface}/address").read_text().strip().replace(":", "")
    )
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", iface],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    sip = out.split()[3].split("/")[0]
    frame = (
        b"\xff" * 6 + mac + b"\x08\x06"
        + bytes.fromhex("0001080006040001") + mac + socket.inet_aton(sip)
        + b"\x00" * 6 + socket.inet_aton(vip)
    ).ljust(60, b"\x00")  # fmt: skip
    print("ready", flush=True)
    t0 = time.monotonic()
    for i in range(count):
        delay = t0 + i * interval_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        with contextlib.suppress(OSError):
            s.send(frame)
    return 0


def hog_main() -> int:
    """A CPU hog: spins until killed."""
    while True:
        pass


def main(argv: Sequence[str]) -> int:
    if len(argv) == 5 and argv[0] == "probe":
        return probe_main(argv[1], argv[2], int(argv[3]), float(argv[4]))
    if len(argv) == 1 and argv[0] == "hog":
        return hog_main()
    print(
        "usage: python -m fastha.bench.lab probe IFACE VIP COUNT INTERVAL_S | hog", file=sys.stderr
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
