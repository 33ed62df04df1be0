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
``fastha lab down|status`` work from another invocation (bench/labstate). Teardown kills
only processes inside the lab's namespaces (ours), then deletes the namespaces, the
state file and the work directory -- only a directory this module made.

The namespaces and processes are bench/topology's, the daemons bench/daemons' (the same
code the system tests build their labs with). Daemon states for orchestration (wait for
a master before a trial) are read from the daemons' console logs; measurements never
are: they come from the client's capture.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import click

from fastha.bench import labstate, report
from fastha.bench.daemons import Daemon
from fastha.bench.daemons import Impl as Impl  # re-exported for the benches
from fastha.bench.daemons import keepalived_binary as keepalived_binary  # re-exported
from fastha.bench.directors import Directors
from fastha.bench.labstate import STATE_DIRS as STATE_DIRS  # re-exported for the CLI
from fastha.bench.labstate import WORKDIR_MARKER, state_dir, state_path
from fastha.bench.topology import Capture, Topology, namespaces
from fastha.bench.topology import LabError as LabError  # re-exported
from fastha.bench.topology import ns_pids as ns_pids  # re-exported

SUBNET = "198.18.0.0/15"  # RFC 2544 benchmark range; every address below is inside it
DIRECTOR_IP = "198.18.0.{}"
CLIENT_IP = "198.18.0.2"
PREFIX = 16  # /16: directors (198.18.0.x) and VIPs (198.18.1.x ...) on one link
IFNAME = "eth0"
VRID_BASE = 1


# -- description --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Director:
    name: str
    impl: Impl = "fastha"
    priority: int = 100


@dataclass(frozen=True, slots=True)
class BfdSpec:
    """BFD sessions B1..BN between the first two directors (a and b), single hop, the
    same bfd_instance blocks on both: min_rx = min_tx = ``interval_ms`` (keepalived
    reads ms with up to 3 decimals), ``multiplier``. B1 runs between the directors' own
    addresses (the one a VRRP backup knows its master by); B2.. between extra addresses
    (``address``), one pair per session. ``rt_priority``, ``rlimit_rttime``:
    ``bfd_rt_priority``, ``bfd_rlimit_rttime`` in global_defs (0: not set).
    ``vrrp_lines``: lines added to every vrrp_instance (a ``track_bfd`` block, the
    fastha extension's keyword)."""

    interval_ms: float = 10.0
    multiplier: int = 3
    sessions: int = 1
    rt_priority: int = 0
    rlimit_rttime: int = 0  # bfd_rlimit_rttime, µs (0: not set)
    vrrp_lines: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.sessions <= 1000:
            raise ValueError("BFD sessions: 1..1000")

    @property
    def bound_ms(self) -> float:
        """Detection time (RFC 5880 6.8.4) with both sides configured alike."""
        return self.multiplier * self.interval_ms

    def address(self, director: int, session: int) -> str:
        """Director ``director``'s (0: a, 1: b) address of session ``session`` (0-based):
        its own address for session 0, else 198.18.64.0/18, a pair per session."""
        if session == 0:
            return DIRECTOR_IP.format(11 + director)
        k = 2 * (session - 1) + director
        return f"198.18.{64 + k // 250}.{1 + k % 250}"


@dataclass(frozen=True, slots=True)
class LabSpec:
    """What to build: the directors and the virtual routers they all run."""

    name: str
    directors: tuple[Director, ...] = (Director("a", "fastha", 150), Director("b", "fastha", 100))
    version: Literal[2, 3] = 3
    advert_int: float = 0.01
    instances: int = 1  # VRRP instances (VI_1 .. VI_K, VRIDs 1..K) on the one interface
    client: bool = True
    bfd: BfdSpec | None = None  # BFD sessions between a and b; with instances 0, BFD alone

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", self.name):
            raise ValueError(f"lab name {self.name!r}: 1-20 of [a-z0-9-], starting with a letter")
        if not (0 if self.bfd else 1) <= self.instances <= 255:
            raise ValueError("instances: 1..255 (one VRID each; 0 with BFD only)")
        if self.bfd and len(self.directors) < 2:
            raise ValueError("BFD needs two directors")
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
        *(bfd_globals(spec.bfd) if spec.bfd else []),
        "}",
        "",
    ]
    if spec.bfd:
        out += bfd_conf(spec.bfd, [x.name for x in spec.directors].index(d.name))
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
            *(f"    {line}" for line in (spec.bfd.vrrp_lines if spec.bfd else ())),
            "}",
            "",
        ]
    return "\n".join(out)


def bfd_globals(bfd: BfdSpec) -> list[str]:
    """The BFD process's scheduling knobs, for global_defs."""
    out = []
    if bfd.rt_priority:
        out.append(f"    bfd_rt_priority {bfd.rt_priority}")
    if bfd.rlimit_rttime:
        out.append(f"    bfd_rlimit_rttime {bfd.rlimit_rttime}")
    return out


def bfd_conf(bfd: BfdSpec, director: int) -> list[str]:
    """The bfd_instance blocks of director ``director`` (0: a, 1: b; others none)."""
    if director > 1:
        return []
    out = []
    for k in range(bfd.sessions):
        out += [
            f"bfd_instance B{k + 1} {{",
            f"    neighbor_ip {bfd.address(1 - director, k)}",
            f"    source_ip {bfd.address(director, k)}",
            f"    min_rx {_num(bfd.interval_ms)}",
            f"    min_tx {_num(bfd.interval_ms)}",
            f"    multiplier {bfd.multiplier}",
            "}",
            "",
        ]
    return out


# -- helpers ---------------------------------------------------------------------------


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


@dataclass(frozen=True, slots=True)
class Port:
    """A bridge port in the switch namespace, as a place to capture."""

    ns: str
    ifname: str


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


class Lab(Directors):
    """Build with ``up()`` (or ``with Lab(spec) as lab``), tear down with ``down()``."""

    def __init__(self, spec: LabSpec, workdir: Path | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        # NAME-sw, NAME-a ...; each namespace goes into the state file as it is made.
        self.topo = Topology(f"{spec.name}-", on_namespace=lambda _ns: self.save())
        self.switch = self.topo.switch
        self.nodes: dict[str, Node] = {}
        self.daemons: dict[str, Daemon] = {}
        self.workdir = workdir
        self.own_workdir = workdir is None
        self.state_file: Path | None = None

    @property
    def namespaces(self) -> list[str]:
        return self.topo.namespaces

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
            self.topo.build()
            for i, d in enumerate(self.spec.directors):
                n = self._add_node(d.name, DIRECTOR_IP.format(11 + i))
                n.impl, n.priority = d.impl, d.priority
                if self.spec.bfd and i < 2 and self.spec.bfd.sessions > 1:
                    batch = "".join(
                        f"addr add {self.spec.bfd.address(i, k)}/{PREFIX} dev {IFNAME}\n"
                        for k in range(1, self.spec.bfd.sessions)
                    )
                    self.topo.run(n.ns, "ip", "-batch", "-", input=batch)
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

    def _add_node(self, name: str, ipv4: str) -> Node:
        t = self.topo.node(name, ipv4=f"{ipv4}/{PREFIX}", ifname=IFNAME)
        node = Node(name=name, ns=t.ns, port=t.port, ipv4=ipv4, mac=t.mac)
        self.nodes[name] = node
        return node

    # -- access -------------------------------------------------------------------------

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    @property
    def client(self) -> Node:
        return self.nodes["client"]

    # -- processes ----------------------------------------------------------------------

    def popen(self, node: Node | str, *cmd: str, **kw: Any) -> subprocess.Popen[Any]:
        """A process inside a node's namespace, in its own session (bench/topology);
        never in the operator's directory: it starts in /."""
        ns = node.ns if isinstance(node, Node) else self.nodes[node].ns
        kw.setdefault("stdin", subprocess.DEVNULL)
        return self.topo.popen(ns, *cmd, **kw)

    def run(self, node: Node | str, *cmd: str, check: bool = True) -> str:
        ns = node.ns if isinstance(node, Node) else self.nodes[node].ns
        return self.topo.run(ns, *cmd, check=check).stdout

    def python(self, node: Node | str, *args: str, **kw: Any) -> subprocess.Popen[Any]:
        """This interpreter (fastha importable; -I: isolated) inside a namespace."""
        return self.popen(node, sys.executable, "-I", *args, **kw)

    def link_down(self, name: str) -> None:
        """The director's bridge port down: carrier loss, as a pulled cable."""
        self.topo.run(self.switch, "ip", "link", "set", self.nodes[name].port, "down")

    def link_up(self, name: str) -> None:
        self.topo.run(self.switch, "ip", "link", "set", self.nodes[name].port, "up")

    def remove_vips(self, name: str) -> None:
        """After kill -9 the VIPs stay on the dead director (a crashed host's would go
        with it); remove them before it comes back."""
        n = self.nodes[name]
        for i in range(self.spec.instances):
            vip = f"{self.spec.vip(i)}/32"
            self.topo.run(n.ns, "ip", "addr", "del", vip, "dev", IFNAME, check=False)

    def cpu_ticks(self, name: str) -> int:
        """CPU (utime + stime, clock ticks) of every process in the director's namespace."""
        return sum(cpu_ticks(p) for p in ns_pids(self.nodes[name].ns))

    # -- capture ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def capture(
        self,
        path: Path,
        bpf: str = "ip proto 112 or arp",
        node: str = "client",
        *,
        at_port: bool = False,
    ) -> Iterator[Capture]:
        """tcpdump in a namespace writing a pcap: nanosecond kernel receive timestamps,
        a 32 MiB ring, flushed per packet so the file can be read while it runs. With
        ``at_port``, on ``node``'s bridge port in the switch namespace: every frame to and
        from that node, unicast between two directors included (the client sees only
        what the bridge floods)."""
        need_tools("tcpdump")
        n = self.nodes[node]
        place = Port(self.switch, n.port) if at_port else n
        cap = Capture(self.topo, place, bpf, path, buffer_kib=32768, nano=True, settle=0.1)
        cap.start()
        try:
            yield cap
        finally:
            cap.stop()

    # -- state file --------------------------------------------------------------------------

    def save(self) -> None:
        labstate.save(self)

    @classmethod
    def load(cls, name: str) -> Lab:
        path, doc = labstate.read(name)
        s = doc["spec"]
        spec = LabSpec(
            name=s["name"],
            directors=tuple(Director(**d) for d in s["directors"]),
            version=s["version"],
            advert_int=s["advert_int"],
            instances=s["instances"],
            client=s["client"],
            bfd=BfdSpec(**{**b, "vrrp_lines": tuple(b["vrrp_lines"])})
            if (b := s.get("bfd"))
            else None,
        )
        lab = cls(spec, Path(doc["workdir"]) if doc["workdir"] else None)
        lab.own_workdir = doc.get("own_workdir", True)
        lab.topo.namespaces[:] = doc["namespaces"]
        lab.nodes = {k: Node(**v) for k, v in doc["nodes"].items()}
        lab.state_file = path
        return lab

    def status(self) -> dict[str, Any]:
        return labstate.status(self, set(namespaces()))

    # -- teardown -----------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop every process in the lab's namespaces (SIGTERM, then SIGKILL after a
        second), delete the namespaces, the work directory and the state file. Safe to
        call twice, on a half-built lab, and from another invocation. Returns what was
        removed."""
        # Only namespaces named for this lab, whatever the state file lists.
        mine = [ns for ns in self.namespaces if ns == self.switch or ns.startswith(self.name + "-")]
        self.topo.namespaces[:] = mine
        removed = self.topo.close(grace=1.0)
        if self.workdir is not None and self.own_workdir:
            if labstate.made_by_us(self.workdir, self.name):
                shutil.rmtree(self.workdir, ignore_errors=True)
            elif self.workdir.exists():
                print(
                    f"lab {self.name}: not deleting {self.workdir}: not a work directory "
                    "this lab made",
                    file=sys.stderr,
                )
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


def captured_lab(stack: contextlib.ExitStack, spec: LabSpec, pcap: Path, *bpf: str) -> Lab:
    """``spec``'s lab, up for the life of ``stack``, its client capturing into ``pcap``
    (through the ``bpf`` filter, else Lab.capture's)."""
    lab = stack.enter_context(Lab(spec))
    stack.enter_context(lab.capture(pcap, *bpf))
    return lab


def settle(labs: Iterable[Lab], advert_int: float) -> None:
    """Wait until director "a" of every lab is master, then for a few adverts more."""
    for lab in labs:
        lab.wait_master("a", timeout=30)
    time.sleep(max(0.3, 3 * advert_int))


@contextlib.contextmanager
def live_run(
    description: str,
    total: int,
    tables: Callable[[], list[Any]],
    workdir: Path,
    keep: bool = False,
) -> Iterator[report.LiveReport]:
    """A bench's labs under a live view of ``tables()`` (nothing while it returns none):
    SIGTERM and SIGHUP tear them down as SIGINT does, a LabError becomes a click error,
    and ``workdir`` is removed at the end unless ``keep``."""

    def render() -> Any:
        from rich.console import Group

        shown = tables()
        return Group(*shown) if shown else ""

    try:
        with teardown_on_signals(), report.LiveReport(description, total, render) as live:
            yield live
    except LabError as e:
        raise click.ClickException(str(e)) from None
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


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
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "dev", iface], capture_output=True, text=True, check=True
    ).stdout
    sip = out.split()[3].split("/")[0]
    eth = b"\xff" * 6 + mac + b"\x08\x06"  # broadcast, ethertype ARP
    # request (Ethernet, IPv4, op 1) from mac/sip: who has vip?
    arp = bytes.fromhex("0001080006040001") + mac + socket.inet_aton(sip)
    arp += bytes(6) + socket.inet_aton(vip)
    frame = (eth + arp).ljust(60, b"\x00")
    from fastha.wire.timer import set_timer_slack_ns

    set_timer_slack_ns(1)  # sleeps end on time (50 µs late by default): fine probe intervals
    if interval_s < 0.001:
        # Sub-millisecond probes keep their schedule on a loaded machine only when the
        # prober is not queued behind the daemons (a few µs per probe, both labs alike).
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
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
