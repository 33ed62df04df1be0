"""The VRRP child: builds every instance from the config and runs them on one loop.

One raw socket per (interface, family, source) receives for all multicast instances on
it and is demultiplexed by VRID; unicast instances have their own socket. Every fd
(sockets, timerfd, netlink) belongs to this one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from fastha.config.model import Config
from fastha.daemon import child_status
from fastha.daemon.alerts import VrrpAlerts
from fastha.daemon.dumpfiles import vrrp_data_text, vrrp_stats_text, write_text
from fastha.drivers import sched
from fastha.drivers.addrwatch import Address, AddressWatcher
from fastha.drivers.fifo import NotifyFifo, fifo_owner
from fastha.drivers.files import read_small
from fastha.drivers.firewall import VipFirewall
from fastha.drivers.inotify import DirWatch
from fastha.drivers.netlink import Netlink
from fastha.drivers.procwatch import ProcWatch
from fastha.drivers.scripts import ScriptRunner
from fastha.drivers.signals import SIGJSON, SIGSTATS_CLEAR
from fastha.drivers.vrrp_socket import (
    AH_LEN,
    IPPROTO_AH,
    IPPROTO_VRRP,
    VrrpSocket,
    VrrpSocketConfig,
)
from fastha.vrrp.actions import RemoveVips, StateChanged
from fastha.vrrp.events import (
    LinkChanged,
    PriorityChanged,
    Shutdown,
    Startup,
    SyncFault,
    TrackFault,
    VipDeleted,
)
from fastha.runtime.vrrp.from_config import (
    InstanceSpec,
    LvsSyncSpec,
    SpecDiff,
    VrrpSpec,
    diff_specs,
    vrrp_spec,
)
from fastha.runtime.vrrp.instance import Context, Instance
from fastha.vrrp.params import PRIO_OWNER
from fastha.vrrp.proctrack import ProcessTracker
from fastha.vrrp.states import State
from fastha.vrrp.sync import SyncGroup
from fastha.vrrp.trackers import (
    Evaluation,
    FileTracker,
    InterfaceTracker,
    ScriptTracker,
    TrackerSet,
)
from fastha.wire import AUTH_AH
from fastha.wire.timer import PreciseTimer, set_timer_slack_ns

if TYPE_CHECKING:
    from fastha.drivers.ipvs import IPVS

log = logging.getLogger("fastha.vrrp")

# Scope values of rtnetlink addresses.
_SCOPE_LINK = 253
FILE_POLL_S = 1.0
STOP_GRACE_S = 5.0


NOTIFY_STOP_GRACE_S = 1.0  # keepalived: system_call_script(..., TIMER_HZ, notify_stop)
# Where keepalived's JSON signal (`keepalived --signum=JSON`) writes.
DEFAULT_JSON_FILE = "/tmp/keepalived.json"


@dataclass(slots=True)
class RunOptions:
    release_on_stop: bool = True  # keepalived -V turns it off
    json_file: str = DEFAULT_JSON_FILE
    # SIGHUP re-reads the configuration through this; None means the file has errors
    # (already logged with file:line) and the running configuration stays.
    reload_config: Callable[[], Config | None] | None = None
    # keepalived's SIGUSR1 / SIGUSR2 files (fastha.daemon.dumpfiles).
    data_file: str = "/tmp/keepalived.data"
    stats_file: str = "/tmp/keepalived.stats"


class Demux:
    """Hands a received advert to the instance owning its VRID."""

    __slots__ = ("ah", "by_vrid", "group", "multicast", "unknown_vrid")

    def __init__(self, multicast: bool, group: str, ah: bool = False) -> None:
        self.by_vrid: dict[int, Instance] = {}
        self.multicast = multicast
        self.group = group
        self.ah = ah  # an AH socket's payload is the whole IPv4 packet
        self.unknown_vrid = 0

    def on_packet(self, payload: memoryview, src: str, dst: str, ttl: int, ifindex: int) -> None:
        # Raw sockets see every VRRP packet on the interface: a multicast socket takes
        # only the group's, a unicast one everything else, so no packet is handled twice.
        at = (payload[0] & 0x0F) * 4 + AH_LEN + 1 if self.ah and payload else 1
        if (dst == self.group) is not self.multicast or len(payload) <= at:
            return
        inst = self.by_vrid.get(payload[at])
        if inst is None:
            self.unknown_vrid += 1
            return
        inst.on_packet(payload, src, dst, ttl, ifindex)


@dataclass(slots=True)
class Tracking:
    """Shared tracked objects and the instances that use each."""

    interfaces: dict[str, InterfaceTracker] = field(default_factory=dict)
    scripts: dict[str, ScriptTracker] = field(default_factory=dict)
    files: dict[str, FileTracker] = field(default_factory=dict)
    processes: dict[str, ProcessTracker] = field(default_factory=dict)
    users: dict[str, list[Instance]] = field(default_factory=dict)  # "kind:name" -> users
    sets: dict[str, TrackerSet] = field(default_factory=dict)  # instance name -> set

    def changed(self, key: str) -> None:
        for inst in self.users.get(key, ()):
            for event in self.sets[inst.name].events():
                if isinstance(event, PriorityChanged):
                    inst.change_priority(event.priority)
                else:
                    inst.feed(event)


class VrrpRunner:
    def __init__(self, config: Config, options: RunOptions) -> None:
        self.spec: VrrpSpec = vrrp_spec(config)
        self.config = config
        self.options = options
        self.sockets: list[VrrpSocket] = []
        # Multicast sockets, shared per (interface, family, source) and demultiplexed.
        self.mcast: dict[tuple[str, int, str, int], tuple[Demux, VrrpSocket]] = {}
        # dynamic_interfaces: instances whose interface does not exist yet, by its name
        # (keepalived: "will use if created"); in FAULT, without a socket, until it appears.
        self.waiting: dict[str, list[Instance]] = {}
        self.script_tasks: dict[str, tuple[asyncio.Task[None], ScriptTracker]] = {}
        self.file_task: asyncio.Task[None] | None = None
        self.procwatch: ProcWatch | None = None
        self.addrwatch: AddressWatcher | None = None  # VIPs deleted by hand
        self.firewall = VipFirewall(self.spec.nft_table, self.spec.nft_priority)
        self.tracking = Tracking()
        self.script_runs: dict[str, dict[str, int]] = {}  # vrrp_script -> result -> runs
        self.ctx: Context | None = None
        self.stopping = asyncio.Event()
        self.vmacs: list[str] = []
        self.base_sysctls: dict[str, dict[str, int | None]] = {}
        # Held by start, every reload and stop: they never interleave.
        self.reload_lock = asyncio.Lock()
        self.reload_tasks: set[asyncio.Task[SpecDiff | None]] = set()
        # lvs_sync_daemon: (state, config) wanted and running; see _syncd_work.
        self.ipvs: IPVS | None = None
        self.syncd_want: tuple[str, object] | None = None
        self.syncd_running: tuple[str, object] | None = None
        self.syncd_task: asyncio.Task[None] | None = None
        # Status and alerts: wall-clock time of each instance's last transition, and
        # the SMTP alerts this configuration asks for (fastha.daemon.alerts).
        self.transitions: dict[str, float] = {}
        self.alerts = VrrpAlerts(config)
        self.started_at = time.time()

    async def _primary_address(self, nl: Netlink, spec: InstanceSpec) -> str:
        # keepalived takes the first address it learns of the interface that is none of
        # its instances' VIPs or excluded VIPs, and learns them before it adds the
        # static_ipaddress ones: those are never the source either (a link-scope static
        # address sorts first in the kernel's list).
        vip_addrs = {v.address for v in (*spec.vips, *spec.excluded)}
        vip_addrs |= {a.address for a in self.spec.static_addresses}
        try:
            present = await nl.list_addresses(spec.ifname, spec.family)
        except Exception as exc:
            log.error("(%s) cannot read addresses of %s: %s", spec.name, spec.ifname, exc)
            present = []
        for a in present:
            if a.address in vip_addrs:
                continue
            if spec.family == socket.AF_INET6 and a.scope != _SCOPE_LINK:
                continue  # RFC 5798 5.1.2.1: IPv6 adverts come from the link-local address
            return a.address
        log.warning("(%s) no usable source address on %s", spec.name, spec.ifname)
        return "::" if spec.family == socket.AF_INET6 else "0.0.0.0"

    def _socket_for(self, inst: Instance) -> None:
        spec = inst.spec
        try:
            socket.if_nametoindex(spec.sock_ifname)
        except OSError:
            # Only with dynamic_interfaces: without, validation stops the daemon as
            # keepalived's VRRP child stops ("Non-existent interface specified").
            log.warning(
                "(%s) interface %s doesn't exist - waiting for it to be created",
                spec.name, spec.sock_ifname,
            )  # fmt: skip
            self.waiting.setdefault(spec.sock_ifname, []).append(inst)
            return
        # keepalived's AH adverts are IP protocol 51: a socket of their own. IPv4 adverts
        # carry our own IP header (IP_HDRINCL), as keepalived's do.
        proto = IPPROTO_AH if spec.auth_type == AUTH_AH else IPPROTO_VRRP
        hdrincl = spec.family == socket.AF_INET
        if spec.unicast_peers:
            demux = Demux(False, spec.mcast_group, proto == IPPROTO_AH)
            config = VrrpSocketConfig(
                spec.sock_ifname,
                spec.family,
                src=inst.src,
                unicast_peers=spec.unicast_peers,
                unicast_ttl=spec.unicast_ttl,
                proto=proto,
                hdrincl=hdrincl,
            )
        else:
            key = _mcast_key(inst)
            found = self.mcast.get(key)
            if found is not None:
                found[0].by_vrid[spec.params.vrid] = inst
                found[1].add_vrid(spec.params.vrid, spec.rx_bufs)  # kernel VRID filter
                inst.sock = found[1]
                return
            demux = Demux(True, spec.mcast_group, proto == IPPROTO_AH)
            config = VrrpSocketConfig(
                spec.sock_ifname,
                spec.family,
                src=inst.src,
                mcast_group=spec.mcast_group,
                proto=proto,
                hdrincl=hdrincl,
            )
        demux.by_vrid[spec.params.vrid] = inst
        sock = VrrpSocket(
            config,
            demux.on_packet,
            vrids={spec.params.vrid: spec.rx_bufs},
            timer=inst.ctx.timer,
            budget=inst.ctx.rx_budget,
        )
        sock.open()
        self.sockets.append(sock)
        inst.sock = sock
        if not spec.unicast_peers:
            self.mcast[_mcast_key(inst)] = (demux, sock)

    def _unsocket(self, inst: Instance) -> None:
        """Detach a stopped instance; close its socket when nobody else uses it."""
        for waiting in self.waiting.values():
            if inst in waiting:
                waiting.remove(inst)
        sock, inst.sock = inst.sock, None
        if sock is None:
            return
        spec = inst.spec
        if not spec.unicast_peers:
            key = _mcast_key(inst)
            demux, _ = self.mcast[key]
            if demux.by_vrid.get(spec.params.vrid) is inst:
                del demux.by_vrid[spec.params.vrid]
            if demux.by_vrid:
                return
            del self.mcast[key]
        sock.close()
        self.sockets.remove(sock)

    def _build_tracking(self, old: Tracking | None, old_spec: VrrpSpec | None) -> Tracking:
        """Tracked objects and every instance's TrackerSet, from the current spec.

        On reload a tracker whose definition did not change is reused with its state
        (a script's rise/fall count, a file's value, a link's state), so an unchanged
        instance evaluates exactly as before."""
        assert self.ctx is not None
        t = Tracking()
        group_of = {m: g.name for g in self.spec.groups for m in g.members}
        for inst in self.ctx.instances.values():
            group = self.ctx.groups.get(group_of.get(inst.name, ""))
            self._track(t, old, old_spec, inst, group.member_ignores_weights if group else False)
        return t

    def _track(
        self,
        t: Tracking,
        old: Tracking | None,
        old_spec: VrrpSpec | None,
        inst: Instance,
        ignore_weights: bool,
    ) -> None:
        spec = inst.spec
        ts = TrackerSet(spec.params.priority, ignore_weights=ignore_weights)
        t.sets[inst.name] = ts
        links = {ls.ifname: ls.up for ls in self.ctx.netlink.links.values()} if self.ctx else {}
        for name, weight, reverse in spec.track_interfaces:
            iface = t.interfaces.get(name) or (old.interfaces.get(name) if old else None)
            if iface is None:
                iface = InterfaceTracker(name, links.get(name, True))
            t.interfaces[name] = iface
            ts.track_interface(iface, weight, reverse)
            t.users.setdefault(f"if:{name}", []).append(inst)
        # Per kind: user key, keyword, the instance's lines, definitions now and before
        # the reload, trackers now and before, how to make one, how the set binds it.
        kinds = (
            ("script", "track_script", spec.track_scripts, self.spec.scripts,
             old_spec.scripts if old_spec else None, t.scripts, old.scripts if old else None,
             lambda _, s: ScriptTracker(s.name, s.weight, s.reverse, s.rise, s.fall, s.init_fail),
             ts.track_script),
            ("file", "track_file", spec.track_files, self.spec.track_files,
             old_spec.track_files if old_spec else None, t.files, old.files if old else None,
             lambda name, f: FileTracker(name, f[1], f[2]), ts.track_file),
            ("proc", "track_process", spec.track_processes, self.spec.track_processes,
             old_spec.track_processes if old_spec else None, t.processes,
             old.processes if old else None, lambda _, p: p.tracker(), ts.track_process),
        )  # fmt: skip
        for key, keyword, tracked_items, defs, old_defs, now, before, make, bind in kinds:
            for tracked in tracked_items:
                d = defs.get(tracked.name)
                if d is None:
                    log.warning(
                        "(%s) %s %s not found, ignoring",
                        inst.name, keyword, tracked.name,
                    )  # fmt: skip
                    continue
                # One tracker per definition; a reload keeps it (and its state) when the
                # definition did not change.
                tracker = now.get(tracked.name)
                if tracker is None and old_defs is not None and old_defs.get(tracked.name) == d:
                    tracker = before.get(tracked.name) if before is not None else None
                if tracker is None:
                    tracker = make(tracked.name, d)
                now[tracked.name] = tracker
                bind(
                    tracker, tracked.weight, tracked.reverse if tracked.weight is not None else None
                )
                t.users.setdefault(f"{key}:{tracked.name}", []).append(inst)

    def _on_link(self, ifname: str, ifindex: int, up: bool) -> None:
        if self.ctx is None:
            return
        log.info("Netlink reports %s %s", ifname, "up" if up else "down")
        waiting = self.waiting.get(ifname, ())
        if up and waiting:
            self._adopt_interface(ifname)
        for inst in self.ctx.instances.values():
            if inst in waiting:
                continue  # stays in FAULT until it has a socket
            if inst.spec.ifname == ifname and not inst.spec.params.dont_track_primary:
                inst.feed(LinkChanged(up))
        iface = self.tracking.interfaces.get(ifname)
        if iface is not None and iface.set(up):
            self.tracking.changed(f"if:{ifname}")

    async def _watch_addresses(self) -> None:
        watcher = AddressWatcher(self._on_address)
        try:
            await watcher.open()
        except OSError as exc:
            log.warning("cannot watch addresses: %s", exc.strerror or exc)
            return
        self.addrwatch = watcher

    def _on_address(self, address: Address, present: bool) -> None:
        if not present and self.ctx is not None:
            # Checked on the next loop pass: our own re-add of the same address (a
            # reload) may be right behind the deletion on the netlink socket.
            self.ctx.loop.call_soon(self._address_gone, address)

    def _address_gone(self, address: Address) -> None:
        """keepalived_netlink.c: one of our VIPs deleted while MASTER -> BACKUP."""
        if self.ctx is None or self.addrwatch is None or self.addrwatch.is_local(address):
            return
        text = str(address)
        for inst in list(self.ctx.instances.values()):
            if inst.machine.state != State.MASTER or not inst.vips_installed:
                continue
            dev = inst.tracked_vip(text)
            # An interface taken down drops its IPv6 addresses: that is a link event
            # (FAULT), which may reach us after the deletions on another socket.
            if dev is not None and _admin_up(dev):
                log.info("Netlink reflector reports IP %s removed from %s", text, dev)
                inst.feed(VipDeleted(text))

    async def _script_loop(self, name: str, tracker: ScriptTracker) -> None:
        assert self.ctx is not None
        s = self.spec.scripts[name]  # a reload that changes it restarts this loop
        while True:
            result = await self.ctx.scripts.run(s.script)
            ok = result.returncode == 0 and not result.timed_out and result.error is None
            how = "succeeded" if ok else "timed_out" if result.timed_out else "failed"
            runs = self.script_runs.setdefault(name, {})
            runs[how] = runs.get(how, 0) + 1
            if tracker.feed(ok):
                log.info("VRRP_Script(%s) %s", name, _script_outcome(result, tracker.ok))
                self.tracking.changed(f"script:{name}")
            await asyncio.sleep(s.interval_s)

    async def _file_loop(self) -> None:
        # keepalived watches each track file's directory with inotify and reacts as the
        # file is written; the poll stays as the fallback (no inotify, a directory that
        # cannot be watched).
        watch: DirWatch | None = None
        try:
            watch = DirWatch()
        except OSError as exc:
            log.warning("inotify unavailable (%s): track files are polled", exc)
        try:
            while True:
                for name in list(self.tracking.files):
                    if name in self.spec.track_files and watch is not None:
                        path = self.spec.track_files[name][0]
                        watch.watch(os.path.dirname(os.path.abspath(path)))
                self._read_files()
                if watch is not None:
                    await watch.wait(FILE_POLL_S)
                else:
                    await asyncio.sleep(FILE_POLL_S)
        finally:
            if watch is not None:
                watch.close()

    def _read_files(self) -> None:
        for name, tracker in list(self.tracking.files.items()):
            if name not in self.spec.track_files:
                continue  # removed by a reload in progress
            path = self.spec.track_files[name][0]
            # Non-blocking, no symlink, regular files only: a FIFO put in its place
            # would block open() and every advert with it (keepalived: O_NONBLOCK).
            try:
                text = read_small(path, 64).decode(errors="replace")
            except OSError:
                text = "0"
            if tracker.set_text(text):
                log.info("VRRP_Track_File(%s) value now %d", name, tracker.value)
                self.tracking.changed(f"file:{name}")

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        set_timer_slack_ns(1)  # timerfd expiry may otherwise be deferred by 50 µs
        timer = PreciseTimer(loop)
        timer.start()
        nl = Netlink()
        await nl.open()
        scripts = ScriptRunner()
        fifo_script = self.spec.notify_fifo_script
        fifo = None
        if self.spec.notify_fifo:
            ours = fifo_script is not None
            fifo = NotifyFifo(self.spec.notify_fifo, create=ours, hold_open=ours,
                              owner=fifo_owner(_vrrp_fifo_user(self.config)))  # fmt: skip
        ctx = self.ctx = Context(loop, timer, nl, scripts, fifo, self.options.release_on_stop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(SIGJSON, self.write_json)
        loop.add_signal_handler(signal.SIGUSR1, self.write_data)
        loop.add_signal_handler(signal.SIGUSR2, self.write_stats)
        loop.add_signal_handler(SIGSTATS_CLEAR, self.write_stats, True)
        loop.add_signal_handler(signal.SIGHUP, self._on_hup)
        ctx.on_state_change = self._on_state_change
        if fifo is not None and fifo_script is not None:
            fifo.open()  # create it and hold it open before its reader starts
            scripts.spawn(fifo_script)
        status_server = None
        try:
            status_server = await child_status.serve_from_env(
                {"status": self.status_dict, "dump": self.status_dict,
                 "metrics": self.metrics_dict})  # fmt: skip
            async with self.reload_lock:
                await self._start(ctx, nl)
            # Start-up garbage is frozen out of future collections, then the child goes
            # real-time: a long GC pass under SCHED_RR would trip RLIMIT_RTTIME.
            gc.collect()
            gc.freeze()
            sched.apply(self.spec.sched, "VRRP child")
            if self.spec.sched.rt_priority is not None:
                ctx.rx_budget.set_rttime(self.spec.sched.rlimit_rttime_us)
            await self.stopping.wait()
            ctx.rx_budget.disable()
            sched.leave_realtime()
            log.info("Stopping")
            async with self.reload_lock:
                await self._stop(ctx)
            await self.alerts.drain(STOP_GRACE_S)
        finally:
            await child_status.close(status_server)
            if self.procwatch is not None:
                self.procwatch.close()
            if self.addrwatch is not None:
                self.addrwatch.close()
            for sock in self.sockets:
                sock.close()
            for sender in ctx.senders.values():
                sender.close()
            ctx.close_arp_watches()
            ctx.rx_budget.close()
            timer.close()
            await scripts.close()
            if self.vmacs and self.options.release_on_stop:  # a failed start, too
                await self._remove_vmacs(nl)
            await nl.close()
            if fifo is not None:
                fifo.close()
        return 0

    def status(self) -> list[dict[str, object]]:
        if self.ctx is None:
            return []
        return [inst.status() for inst in self.ctx.instances.values()]

    def status_dict(self, _request: object = None) -> dict[str, object]:
        """The VRRP child's `status` answer (fastha.daemon.metrics documents the shape):
        keepalived's JSON entry per instance plus master, wantstate, last transition."""
        from fastha.daemon.child_status import timer_status

        instances: list[dict[str, object]] = []
        groups: list[dict[str, object]] = []
        timer: dict[str, object] | None = None
        if self.ctx is not None:
            for inst in self.ctx.instances.values():
                entry = inst.status()
                m = inst.machine
                entry["wantstate"] = m.wantstate.name
                entry["master_address"] = (
                    m.master_address if m.state == State.MASTER or m.master_priority else None
                )
                entry["master_priority"] = m.master_priority
                entry["last_transition"] = self.transitions.get(inst.name)
                entry["sync_group"] = inst.group.name if inst.group is not None else None
                instances.append(entry)
            for name, g in self.ctx.groups.items():
                groups.append({"name": name, "state": g.state.name, "members": list(g.members)})
            timer = timer_status(self.ctx.timer)
        return {"pid": os.getpid(), "started_at": self.started_at, "instances": instances,
                "sync_groups": groups, "timer": timer,
                "smtp": {"sent": self.alerts.sent, "failed": self.alerts.failed}}  # fmt: skip

    def metrics_dict(self, _request: object = None) -> dict[str, object]:
        """`status` plus what only metrics use: vrrp_script runs by result."""
        return {**self.status_dict(), "script_runs": self.script_runs}

    def write_data(self) -> None:
        """keepalived's SIGUSR1: the data file (VRRP topology as text)."""
        log.info("Printing VRRP data for process(%d) on signal", os.getpid())
        write_text(self.options.data_file, vrrp_data_text(self.config, self.status_dict()))

    def write_stats(self, clear: bool = False) -> None:
        """keepalived's SIGUSR2: the stats file (per-instance counters as text); with
        ``clear`` (SIGSTATS_CLEAR) the counters are zeroed once written, as keepalived's
        vrrp_print_stats(true) does."""
        log.info(
            "Printing %sVRRP stats for process(%d) on signal",
            "and clearing " if clear else "",
            os.getpid(),
        )
        write_text(self.options.stats_file, vrrp_stats_text(self.status_dict()))
        if clear and self.ctx is not None:
            for inst in self.ctx.instances.values():
                inst.counters.clear()

    def write_json(self) -> None:
        """keepalived's JSON signal: every instance's state and counters, atomically."""
        import orjson

        log.info("Printing VRRP as json for process(%d) on signal", os.getpid())
        write_text(self.options.json_file, orjson.dumps(self.status(), option=orjson.OPT_INDENT_2))

    async def _statics(self, nl: Netlink, add: bool) -> None:
        """static_ipaddress/routes/rules: keepalived sets them at start and, unless -V,
        removes them on stop."""
        spec = self.spec
        if add:
            for a in spec.static_addresses:
                await nl.add_address(a)
            for r in spec.static_routes:
                await nl.add_route(r)
            for rule in spec.static_rules:
                await nl.add_rule(rule)
        else:
            for rule in spec.static_rules:
                await nl.delete_rule(rule)
            for r in spec.static_routes:
                await nl.delete_route(r)
            for a in spec.static_addresses:
                await nl.delete_address(a)

    async def _start(self, ctx: Context, nl: Netlink) -> None:
        await self._statics(nl, add=True)
        await self.firewall.apply(self.spec.no_accept_addresses())  # before any VIP
        for spec in self.spec.instances:
            await self._create(ctx, nl, spec)
        self._rebuild_groups(ctx)
        self.tracking = self._build_tracking(None, None)
        self._sync_procwatch(set(self.tracking.processes))
        await nl.watch_links(self._on_link)
        await self._watch_addresses()
        if self.spec.startup_delay_s:
            log.info("Delaying startup for %g seconds", self.spec.startup_delay_s)
            await asyncio.sleep(self.spec.startup_delay_s)
        for inst in ctx.instances.values():
            self._boot(inst)
        self._sync_tasks()

    async def _create(self, ctx: Context, nl: Netlink, spec: InstanceSpec) -> Instance:
        """An instance with its socket (and VMAC), not started yet."""
        primary = await self._primary_address(nl, spec)
        if spec.params.primary_address is None:
            spec = replace(spec, params=replace(spec.params, primary_address=spec.src or primary))
        inst = Instance(spec, ctx, primary)
        ctx.instances[inst.name] = inst
        if spec.vmac:
            try:
                socket.if_nametoindex(spec.ifname)
            except OSError:
                # dynamic_interfaces with a VMAC whose base interface is missing: not
                # waited for (check-config says so); the instance stays in FAULT rather
                # than the VRRP child failing.
                log.error("(%s) interface %s for the VMAC doesn't exist", spec.name, spec.ifname)
            else:
                await self._create_vmac(nl, inst)
        self._socket_for(inst)
        return inst

    def _adopt_interface(self, ifname: str) -> None:
        """An interface instances were waiting for exists now: give them their socket and
        let them leave FAULT (keepalived's dynamic_interfaces)."""
        for inst in self.waiting.pop(ifname, []):
            if self.ctx is None or self.ctx.instances.get(inst.name) is not inst:
                continue  # removed by a reload meanwhile
            self._socket_for(inst)
            if inst.sock is None:
                continue  # gone again (put back on the list)
            log.info("(%s) interface %s now exists - using it", inst.name, ifname)
            inst.feed(LinkChanged(True))

    def _boot(self, inst: Instance) -> None:
        if inst in self.waiting.get(inst.spec.sock_ifname, ()):
            inst.feed(LinkChanged(False))  # keepalived: FAULT (interface ... down)
        # Tracking first, as keepalived: an instance whose track script has not run yet
        # starts in FAULT (silently) and leaves it with the script's first success,
        # instead of BACKUP -> FAULT -> BACKUP.
        for event in self.tracking.sets[inst.name].events():
            inst.feed(event)
        inst.feed(Startup())
        if inst.machine.state != State.MASTER:
            # keepalived removes VIPs at startup: a crashed run (kill -9) left them
            # configured, and a backup holding them would answer ARP for them.
            inst.execute(RemoveVips())

    def _rebuild_groups(self, ctx: Context) -> None:
        """vrrp_sync_groups over the running instances. A group that existed keeps its
        state; members whose group changed are released or held as the group says."""
        old = ctx.groups
        for inst in ctx.instances.values():
            inst.group = None
            inst.machine.sync_gate = None
        ctx.groups, ctx.group_notify = {}, {}
        for g in self.spec.groups:
            members = {m: ctx.instances[m].machine for m in g.members if m in ctx.instances}
            group = SyncGroup(g.name, members, tracking_weight=g.tracking_weight)
            prev = old.get(g.name)
            if prev is not None and prev.members.keys() == members.keys():
                group.state = prev.state
            else:
                states = {m.state for m in members.values()}
                if len(states) == 1 and states <= {State.MASTER, State.BACKUP, State.FAULT}:
                    group.state = next(iter(states))
            ctx.groups[g.name] = group
            ctx.group_notify[g.name] = g.notify
            for m in members:
                ctx.instances[m].group = group
        for inst in ctx.instances.values():
            m = inst.machine
            if inst.group is None:
                want = False
            else:
                want = m.own_up and any(not o.own_up for o in inst.group.members.values())
            if m.sync_fault != want:
                inst.feed(SyncFault(want))

    def _sync_tasks(self) -> None:
        """One loop per tracked vrrp_script (restarted when its tracker was replaced)
        and one for the track files."""
        loop = asyncio.get_running_loop()
        for name, (task, tracker) in list(self.script_tasks.items()):
            if self.tracking.scripts.get(name) is not tracker:
                task.cancel()
                del self.script_tasks[name]
        for name, tracker in self.tracking.scripts.items():
            if name not in self.script_tasks:
                task = loop.create_task(self._script_loop(name, tracker), name=f"script-{name}")
                self.script_tasks[name] = (task, tracker)
        if self.tracking.files and self.file_task is None:
            self.file_task = loop.create_task(self._file_loop(), name="track-files")

    def _sync_procwatch(self, fresh: set[str]) -> None:
        """The process watch follows the tracked processes: rebuilt (and /proc read
        again) when what it looks for changed; `fresh` trackers start from that scan."""
        loop = asyncio.get_running_loop()
        tracked = {
            name: (self.spec.track_processes[name].match, tracker)
            for name, tracker in self.tracking.processes.items()
        }
        old = self.procwatch
        if old is not None and not fresh and old.tracked == tracked:
            return
        if old is not None:
            old.close()
        self.procwatch = None
        if tracked:
            self.procwatch = ProcWatch(tracked, lambda name: self.tracking.changed(f"proc:{name}"))
            self.procwatch.start(loop, fresh)

    # -- reload ---------------------------------------------------------------------------

    def _on_hup(self) -> None:
        if self.options.reload_config is None:
            log.warning("Reload requested, but no configuration file to re-read; ignored")
            return
        task = asyncio.get_running_loop().create_task(self.reload(), name="vrrp-reload")
        self.reload_tasks.add(task)
        task.add_done_callback(self.reload_tasks.discard)

    async def reload(self) -> SpecDiff | None:
        """SIGHUP: re-read the configuration and apply only what changed. Returns the
        plan applied, or None when the new file has errors (the old one keeps running)."""
        assert self.options.reload_config is not None
        async with self.reload_lock:
            if self.stopping.is_set() or self.ctx is None:
                return None
            log.info("Reloading")
            try:
                # Parsed off the loop's thread: the GIL still switches every few ms, so
                # adverts stay on time while a large file is read.
                loop = asyncio.get_running_loop()
                config = await loop.run_in_executor(None, self.options.reload_config)
            except Exception:
                log.exception("Reload failed")
                config = None
            if config is None:
                log.error("Reload failed: configuration has errors; keeping the running one")
                return None
            new = vrrp_spec(config)
            diff = diff_specs(self.spec, new)
            self.config = config
            self.alerts.configure(config)
            try:
                await self._apply(self.ctx, diff, new)
            except Exception:
                # Half applied: what ran stays; log loudly rather than lose the child.
                log.exception("Reload failed while applying the new configuration")
                return None
            log.info("Reload finished: %s", diff.summary())
            return diff

    async def _apply(self, ctx: Context, diff: SpecDiff, new: VrrpSpec) -> None:
        nl = ctx.netlink
        for label in diff.restart_only:
            log.warning("Reload: %s changed; it takes effect at the next restart", label)
        for name in diff.unchanged:
            log.debug("(%s) unchanged", name)
        for spec in diff.removed:
            log.info("(%s) removed from the configuration: stopping", spec.name)
            await self._remove(ctx, ctx.instances[spec.name])
        for ch in diff.restarted:
            log.info(
                "(%s) %s changed: restarting the instance",
                ch.name, ", ".join(ch.changes),
            )  # fmt: skip
            await self._remove(ctx, ctx.instances[ch.name])
        old_spec, self.spec = self.spec, new
        await self._firewall_follow(old_spec, new)
        for ch in diff.changed:
            inst = ctx.instances[ch.name]
            log.info("(%s) reloading in place: %s", ch.name, ", ".join(ch.changes))
            spec = ch.new
            if spec.params.primary_address is None:
                spec = replace(spec, params=replace(spec.params, primary_address=inst.src))
            inst.reconfigure(spec)
        fresh: list[Instance] = []
        for spec in (*(ch.new for ch in diff.restarted), *diff.added):
            if spec in diff.added:
                log.info("(%s) added to the configuration: starting", spec.name)
            fresh.append(await self._create(ctx, nl, spec))
        # Trackers and groups are rebuilt for everyone; an instance whose evaluation did
        # not change receives no event, so nothing moves.
        old_tracking = self.tracking
        before = {n: ts.evaluate() for n, ts in old_tracking.sets.items() if n in ctx.instances}
        self._rebuild_groups(ctx)
        self.tracking = self._build_tracking(old_tracking, old_spec)
        self._sync_procwatch(
            {
                n
                for n, p in self.tracking.processes.items()
                if old_tracking.processes.get(n) is not p
            }
        )
        for inst in ctx.instances.values():
            if inst not in fresh:
                ts = self.tracking.sets[inst.name]
                ts.events()  # later events are relative to this evaluation
                self._retrack(inst, before.get(inst.name), ts.evaluate())
        self._sync_tasks()
        for inst in fresh:
            self._boot(inst)
        if diff.statics:
            await self._statics_swap(nl, old_spec, new)
        if diff.lvs_syncd:
            self._syncd_follow()
        ctx.update_arp_watches()  # a master's VIPs may now sit on another interface

    async def _firewall_follow(self, old: VrrpSpec, new: VrrpSpec) -> None:
        """Reload: the no_accept table follows the new file (before any new VIP)."""
        addresses = new.no_accept_addresses()
        if (old.nft_table, old.nft_priority) != (new.nft_table, new.nft_priority):
            await self.firewall.remove()
            self.firewall = VipFirewall(new.nft_table, new.nft_priority)
        elif old.no_accept_addresses() == addresses:
            return
        await self.firewall.apply(addresses)

    def _retrack(self, inst: Instance, before: Evaluation | None, now: Evaluation) -> None:
        m = inst.machine
        if m.base_priority == PRIO_OWNER:
            m.effective_priority = PRIO_OWNER  # the owner's priority never moves
        elif now.priority != m.effective_priority:
            inst.change_priority(now.priority)
        if (before.fault if before is not None else False) != now.fault:
            inst.feed(TrackFault(now.fault, "; ".join(now.faults) or "tracking recovered"))

    async def _remove(self, ctx: Context, inst: Instance) -> None:
        """Stop one instance for good (reload): priority 0 if master, VIPs removed."""
        inst.group = None
        inst.machine.sync_gate = None
        inst.feed(Shutdown())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(inst.drain(), STOP_GRACE_S)
        inst.queue.put_nowait(None)  # ends its worker
        for handle in inst.timers.values():
            handle.cancel()
        inst.timers.clear()
        self._unsocket(inst)
        if inst.vmac is not None:
            with contextlib.suppress(Exception):
                await ctx.netlink.delete_vmac(inst.vmac)
            if inst.vmac in self.vmacs:
                self.vmacs.remove(inst.vmac)
        del ctx.instances[inst.name]
        log.info("(%s) stats: %s", inst.name, inst.status()["stats"])

    async def _statics_swap(self, nl: Netlink, old: VrrpSpec, new: VrrpSpec) -> None:
        for rule in old.static_rules:
            if rule not in new.static_rules:
                await nl.delete_rule(rule)
        for route in old.static_routes:
            if route not in new.static_routes:
                await nl.delete_route(route)
        for a in old.static_addresses:
            if a not in new.static_addresses:
                await nl.delete_address(a)
        for a in new.static_addresses:
            if a not in old.static_addresses:
                await nl.add_address(a)
        for route in new.static_routes:
            if route not in old.static_routes:
                await nl.add_route(route)
        for rule in new.static_rules:
            if rule not in old.static_rules:
                await nl.add_rule(rule)

    # -- lvs_sync_daemon ------------------------------------------------------------------

    def _on_state_change(self, inst: Instance, change: StateChanged) -> None:
        """keepalived (vrrp.c, ipvswrapper.c): the sync daemon's instance starts it as
        master on entering MASTER (stopping the backup one) and as backup at start-up
        otherwise and on leaving MASTER (stopping the master one)."""
        self.transitions[inst.name] = time.time()
        self.alerts.transition(inst, change.new)
        sd = self.spec.lvs_syncd
        if sd is None or inst.name != sd.instance:
            return
        if change.new == State.MASTER:
            self._syncd_set("master")
        elif change.new in (State.BACKUP, State.FAULT) and change.old in (
            State.INIT,
            State.MASTER,
        ):
            self._syncd_set("backup")

    def _syncd_follow(self) -> None:
        """After a reload changed lvs_sync_daemon: restart it with the new settings in
        the state its instance is in now (stop it when it is gone)."""
        sd = self.spec.lvs_syncd
        inst = self.ctx.instances.get(sd.instance) if sd is not None and self.ctx else None
        if inst is None or inst.machine.state not in (State.MASTER, State.BACKUP, State.FAULT):
            self._syncd_set(None)
        else:
            self._syncd_set("master" if inst.machine.state == State.MASTER else "backup")

    def _syncd_set(self, state: str | None) -> None:
        sd = self.spec.lvs_syncd
        self.syncd_want = None if state is None or sd is None else (state, sd)
        if self.syncd_task is None or self.syncd_task.done():
            self.syncd_task = asyncio.get_running_loop().create_task(
                self._syncd_work(), name="lvs-syncd"
            )

    async def _syncd_work(self) -> None:
        """Drive the kernel's sync daemon to `syncd_want`, one netlink call at a time."""
        from fastha.drivers.ipvs import IPVS, SyncDaemon

        while self.syncd_running != self.syncd_want:
            want = self.syncd_want
            try:
                if self.ipvs is None:
                    ipvs = IPVS()
                    await ipvs.open()
                    self.ipvs = ipvs
                if self.syncd_running is not None:
                    state = self.syncd_running[0]
                    self.syncd_running = None
                    await self.ipvs.stop_daemon(state)
                    log.info("Stopped IPVS sync daemon (%s)", state)
                if want is not None:
                    state, sd = want
                    assert isinstance(sd, LvsSyncSpec)
                    # As keepalived's ipvs_syncd_master/backup: stop the other one first.
                    await self.ipvs.stop_daemon("backup" if state == "master" else "master")
                    await self.ipvs.start_daemon(
                        SyncDaemon(
                            state=state,
                            ifname=sd.ifname,
                            syncid=sd.syncid,
                            maxlen=sd.maxlen,
                            mcast_group=sd.mcast_group,
                            mcast_port=sd.mcast_port,
                            mcast_ttl=sd.mcast_ttl,
                        )
                    )
                    self.syncd_running = want
                    log.info(
                        "Starting IPVS sync daemon in %s state (interface %s, syncid %d)",
                        state.upper(), sd.ifname, sd.syncid,
                    )  # fmt: skip
            except Exception as exc:
                log.error("IPVS sync daemon: cannot go %s: %s", want and want[0], exc)
                if self.syncd_want == want:
                    self.syncd_want = self.syncd_running  # retried on the next change
                    return

    async def _syncd_stop(self) -> None:
        if self.syncd_want is None and self.syncd_running is None:
            return
        self._syncd_set(None)
        if self.syncd_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.syncd_task), STOP_GRACE_S)
        if self.ipvs is not None:
            self.ipvs.close()
            self.ipvs = None

    async def _create_vmac(self, nl: Netlink, inst: Instance) -> None:
        """keepalived's use_vmac: at startup, a macvlan (private mode) on the interface
        with the VRRP virtual MAC, brought up; the VIPs go on it when master.

        Sysctls as keepalived sets them (vrrp_if_config.c): the VMAC answers ARP only
        for its own addresses, accepts packets with local sources and skips rp_filter;
        the base interface stops answering ARP for addresses it does not hold
        (arp_ignore 1, arp_filter 1), restored on exit."""
        spec = inst.spec
        assert spec.vmac is not None
        # IPv6 stays on for an IPv4 instance with IPv6 excluded addresses (keepalived's
        # VRRP_FLAG_EVIP_OTHER_FAMILY)
        other = any(v.family != spec.family for v in spec.excluded)
        await nl.create_vmac(
            spec.vmac,
            spec.ifname,
            spec.params.vrid,
            family=spec.family,
            ipv6=spec.family == socket.AF_INET6 or other,
        )
        inst.vmac = spec.vmac
        self.vmacs.append(spec.vmac)
        if spec.family == socket.AF_INET:
            for name, value in (
                ("arp_ignore", 1),
                ("accept_local", 1),
                ("rp_filter", 0),
                ("promote_secondaries", 1),
            ):
                _set_sysctl(spec.vmac, name, value)
            if spec.ifname not in self.base_sysctls:
                saved = {}
                for name in ("arp_ignore", "arp_filter"):
                    saved[name] = _set_sysctl(spec.ifname, name, 1)
                self.base_sysctls[spec.ifname] = saved
        log.info("(%s) using VMAC %s on %s", inst.name, spec.vmac, spec.ifname)

    async def _remove_vmacs(self, nl: Netlink) -> None:
        for name in self.vmacs:
            with contextlib.suppress(Exception):
                await nl.delete_vmac(name)
        self.vmacs.clear()
        for ifname, saved in self.base_sysctls.items():
            for name, value in saved.items():
                if value is not None:
                    _set_sysctl(ifname, name, value)
        self.base_sysctls.clear()

    async def _stop(self, ctx: Context) -> None:
        if self.procwatch is not None:
            self.procwatch.close()
        for task, _ in self.script_tasks.values():
            task.cancel()
        if self.file_task is not None:
            self.file_task.cancel()
        for inst in ctx.instances.values():
            if not self.options.release_on_stop:
                inst.spec = _no_release(inst.spec)
            inst.feed(Shutdown())
        # keepalived's notify_shutdown: after every instance's STOP, every sync group's
        # (its notify_stop, its generic notify "GROUP name STOP 0", the FIFO line).
        for name, group in ctx.groups.items():
            member = next((ctx.instances[m] for m in group.members if m in ctx.instances), None)
            if member is None:
                continue
            group.state = State.STOP
            member.notify_group_stop(name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(i.drain() for i in ctx.instances.values())), STOP_GRACE_S
            )
        # The STOP notifies (notify_stop, the generic notify's STOP) have just started:
        # keepalived waits for notify_stop (system_call_script, 1 s) rather than killing
        # it with the process.
        await ctx.scripts.drain(NOTIFY_STOP_GRACE_S)
        for inst in ctx.instances.values():
            log.info("(%s) stats: %s", inst.name, inst.status()["stats"])
        # keepalived vrrp_terminate_phase1: stop the sync daemon this process runs.
        await self._syncd_stop()
        if self.options.release_on_stop:  # -V: the VIPs stay, so does the VMAC under them
            await self._remove_vmacs(ctx.netlink)
            await self._statics(ctx.netlink, add=False)
            await self.firewall.remove()  # ... and the rules that guard them


def _vrrp_fifo_user(config: Config) -> str | None:
    g = config.global_defs
    fifo = g.vrrp_notify_fifo or g.notify_fifo
    return fifo.username if fifo is not None else None


def _admin_up(ifname: str) -> bool:
    """IFF_UP of an interface, read now (False when it is gone)."""
    try:
        with open(f"/sys/class/net/{ifname}/flags") as fh:
            return bool(int(fh.read(), 16) & 1)
    except (OSError, ValueError):
        return False


def _mcast_key(inst: Instance) -> tuple[str, int, str, int]:
    """Multicast sockets are shared per (interface, family, source, IP protocol)."""
    spec = inst.spec
    proto = IPPROTO_AH if spec.auth_type == AUTH_AH else IPPROTO_VRRP
    return (spec.sock_ifname, spec.family, inst.src, proto)


def _set_sysctl(ifname: str, name: str, value: int) -> int | None:
    """Set net.ipv4.conf.IFNAME.NAME; returns the old value (None if unreadable)."""
    path = f"/proc/sys/net/ipv4/conf/{ifname}/{name}"
    try:
        with open(path) as fh:
            old = int(fh.read().strip() or 0)
        if old != value:
            with open(path, "w") as fh:
                fh.write(f"{value}\n")
        return old
    except (OSError, ValueError) as exc:
        log.warning("Cannot set %s to %d: %s", path, value, exc)
        return None


def _no_release(spec: InstanceSpec) -> InstanceSpec:
    """-V: leave VIPs, routes and rules in place on stop."""
    from dataclasses import replace

    return replace(spec, vips=(), excluded=(), routes=(), rules=())


def configure_logging(console: bool, detail: bool, name: str = "fastha_vrrp") -> None:
    level = logging.DEBUG if detail else logging.INFO
    if console:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(f"%(asctime)s {name}[{os.getpid()}]: %(message)s"))
    else:
        from logging.handlers import SysLogHandler

        handler = (
            SysLogHandler(address="/dev/log")
            if os.path.exists("/dev/log")
            else logging.StreamHandler()
        )
        handler.setFormatter(logging.Formatter(f"{name}[{os.getpid()}]: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # -D is about our own detail; pyroute2's debug output would drown it.
    logging.getLogger("fastha").setLevel(level)
    logging.getLogger("pyroute2").setLevel(logging.WARNING)


def run_vrrp(
    config: Config,
    options: RunOptions,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    """Run the VRRP side in this process until SIGTERM/SIGINT."""
    import uvloop

    runner = VrrpRunner(config, options)
    with asyncio.Runner(loop_factory=loop_factory or uvloop.new_event_loop) as r:
        return r.run(runner.run())


def _script_outcome(result: Any, ok: bool) -> str:
    """keepalived 2.2.7's words after `VRRP_Script(NAME) ` (vrrp_scheduler.c
    vrrp_script_child_thread): `succeeded`, `timed_out`, `failed (exited with status N)`,
    `failed (due to signal N)`."""
    if ok:
        return "succeeded"
    if result.timed_out:
        return "timed_out"
    if result.error is None and result.returncode < 0:
        return f"failed (due to signal {-result.returncode})"
    if result.error is None:
        return f"failed (exited with status {result.returncode})"
    return "failed"
