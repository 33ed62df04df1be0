"""The VRRP child: builds every instance from the config and runs them on one loop.

One raw socket per (interface, family, source) receives for all multicast instances on
it and is demultiplexed by VRID; unicast instances have their own socket. Every fd
(sockets, timerfd, netlink) belongs to this one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from fastha.config.model import Config
from fastha.drivers import sched
from fastha.drivers.fifo import NotifyFifo
from fastha.drivers.netlink import Netlink
from fastha.drivers.scripts import ScriptRunner
from fastha.drivers.vrrp_socket import VrrpSocket, VrrpSocketConfig
from fastha.vrrp.actions import RemoveVips
from fastha.vrrp.events import LinkChanged, Shutdown, Startup
from fastha.vrrp.from_config import InstanceSpec, VrrpSpec, vrrp_spec
from fastha.vrrp.instance import Context, Instance
from fastha.vrrp.states import State
from fastha.vrrp.sync import SyncGroup
from fastha.vrrp.trackers import FileTracker, InterfaceTracker, ScriptTracker, TrackerSet
from fastha.wire.timer import PreciseTimer, set_timer_slack_ns

log = logging.getLogger("fastha.vrrp")

# Scope values of rtnetlink addresses.
_SCOPE_LINK = 253
FILE_POLL_S = 1.0
STOP_GRACE_S = 5.0


# keepalived's JSON signal (`keepalived --signum=JSON`) and where it writes.
SIGJSON = signal.SIGRTMIN + 2
DEFAULT_JSON_FILE = "/tmp/keepalived.json"


@dataclass(slots=True)
class RunOptions:
    release_on_stop: bool = True  # keepalived -V turns it off
    json_file: str = DEFAULT_JSON_FILE


class Demux:
    """Hands a received advert to the instance owning its VRID."""

    __slots__ = ("by_vrid", "group", "multicast", "unknown_vrid")

    def __init__(self, multicast: bool, group: str) -> None:
        self.by_vrid: dict[int, Instance] = {}
        self.multicast = multicast
        self.group = group
        self.unknown_vrid = 0

    def on_packet(self, payload: memoryview, src: str, dst: str, ttl: int, ifindex: int) -> None:
        # Raw sockets see every VRRP packet on the interface: a multicast socket takes
        # only the group's, a unicast one everything else, so no packet is handled twice.
        if (dst == self.group) is not self.multicast or len(payload) < 2:
            return
        inst = self.by_vrid.get(payload[1])
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
    users: dict[str, list[Instance]] = field(default_factory=dict)  # "kind:name" -> users
    sets: dict[str, TrackerSet] = field(default_factory=dict)  # instance name -> set

    def changed(self, key: str) -> None:
        for inst in self.users.get(key, ()):
            for event in self.sets[inst.name].events():
                inst.feed(event)


class VrrpRunner:
    def __init__(self, config: Config, options: RunOptions) -> None:
        self.spec: VrrpSpec = vrrp_spec(config)
        self.options = options
        self.sockets: list[VrrpSocket] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.tracking = Tracking()
        self.ctx: Context | None = None
        self.stopping = asyncio.Event()
        self.vmacs: list[str] = []
        self.base_sysctls: dict[str, dict[str, int | None]] = {}

    async def _primary_address(self, nl: Netlink, spec: InstanceSpec) -> str:
        vip_addrs = {v.address for v in spec.vips}
        try:
            present = await nl.list_addresses(spec.ifname, spec.family)
        except Exception as exc:
            log.error(
                "VRRP_Instance(%s) cannot read addresses of %s: %s", spec.name, spec.ifname, exc
            )
            present = []
        for a in present:
            if a.address in vip_addrs:
                continue
            if spec.family == socket.AF_INET6 and a.scope != _SCOPE_LINK:
                continue  # RFC 5798 5.1.2.1: IPv6 adverts come from the link-local address
            return a.address
        log.warning("VRRP_Instance(%s) no usable source address on %s", spec.name, spec.ifname)
        return "::" if spec.family == socket.AF_INET6 else "0.0.0.0"

    def _socket_for(self, inst: Instance, demuxes: dict[tuple[str, int, str], Demux]) -> None:
        spec = inst.spec
        if spec.unicast_peers:
            demux = Demux(False, spec.mcast_group)
            config = VrrpSocketConfig(
                spec.sock_ifname,
                spec.family,
                src=inst.src,
                unicast_peers=spec.unicast_peers,
                unicast_ttl=spec.unicast_ttl,
            )
        else:
            key = (spec.sock_ifname, spec.family, inst.src)
            found = demuxes.get(key)
            if found is not None:
                found.by_vrid[spec.params.vrid] = inst
                inst.sock = next(
                    s
                    for s in self.sockets
                    if s.config.ifname == spec.sock_ifname
                    and s.config.family == spec.family
                    and s.config.src == inst.src
                    and not s.config.unicast_peers
                )
                return
            demux = demuxes[key] = Demux(True, spec.mcast_group)
            config = VrrpSocketConfig(
                spec.sock_ifname, spec.family, src=inst.src, mcast_group=spec.mcast_group
            )
        demux.by_vrid[spec.params.vrid] = inst
        sock = VrrpSocket(config, demux.on_packet)
        sock.open()
        self.sockets.append(sock)
        inst.sock = sock

    def _track(self, inst: Instance, ignore_weights: bool) -> None:
        t = self.tracking
        spec = inst.spec
        ts = TrackerSet(spec.params.priority, ignore_weights=ignore_weights)
        t.sets[inst.name] = ts
        for name, weight, reverse in spec.track_interfaces:
            iface = t.interfaces.setdefault(name, InterfaceTracker(name))
            ts.track_interface(iface, weight, reverse)
            t.users.setdefault(f"if:{name}", []).append(inst)
        for tracked in spec.track_scripts:
            s = self.spec.scripts.get(tracked.name)
            if s is None:
                log.warning(
                    "VRRP_Instance(%s) track_script %s not found, ignoring", inst.name, tracked.name
                )
                continue
            tracker = t.scripts.get(s.name)
            if tracker is None:
                tracker = t.scripts[s.name] = ScriptTracker(
                    s.name, s.weight, s.reverse, s.rise, s.fall, s.init_fail
                )
            ts.track_script(
                tracker, tracked.weight, tracked.reverse if tracked.weight is not None else None
            )
            t.users.setdefault(f"script:{s.name}", []).append(inst)
        for tracked in spec.track_files:
            f = self.spec.track_files.get(tracked.name)
            if f is None:
                log.warning(
                    "VRRP_Instance(%s) track_file %s not found, ignoring", inst.name, tracked.name
                )
                continue
            _, weight, reverse = f
            tracker = t.files.setdefault(tracked.name, FileTracker(tracked.name, weight, reverse))
            ts.track_file(
                tracker, tracked.weight, tracked.reverse if tracked.weight is not None else None
            )
            t.users.setdefault(f"file:{tracked.name}", []).append(inst)

    def _on_link(self, ifname: str, ifindex: int, up: bool) -> None:
        if self.ctx is None:
            return
        log.info("Netlink reports %s %s", ifname, "UP" if up else "DOWN")
        for inst in self.ctx.instances.values():
            if inst.spec.ifname == ifname and not inst.spec.params.dont_track_primary:
                inst.feed(LinkChanged(up))
        iface = self.tracking.interfaces.get(ifname)
        if iface is not None and iface.set(up):
            self.tracking.changed(f"if:{ifname}")

    async def _script_loop(self, name: str) -> None:
        assert self.ctx is not None
        s = self.spec.scripts[name]
        tracker = self.tracking.scripts[name]
        while True:
            result = await self.ctx.scripts.run(s.script)
            ok = result.returncode == 0 and not result.timed_out and result.error is None
            if tracker.feed(ok):
                log.info("VRRP_Script(%s) %s", name, "succeeded" if tracker.ok else "failed")
                self.tracking.changed(f"script:{name}")
            await asyncio.sleep(s.interval_s)

    async def _file_loop(self) -> None:
        while True:
            for name, tracker in self.tracking.files.items():
                path = self.spec.track_files[name][0]
                try:
                    with open(path) as fh:
                        text = fh.read(64)
                except OSError:
                    text = "0"
                if tracker.set_text(text):
                    log.info("VRRP_Track_File(%s) value now %d", name, tracker.value)
                    self.tracking.changed(f"file:{name}")
            await asyncio.sleep(FILE_POLL_S)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        set_timer_slack_ns(1)  # timerfd expiry may otherwise be deferred by 50 µs
        sched.apply(self.spec.sched, "VRRP child")
        timer = PreciseTimer(loop)
        timer.start()
        nl = Netlink()
        await nl.open()
        scripts = ScriptRunner()
        fifo_script = self.spec.notify_fifo_script
        fifo = None
        if self.spec.notify_fifo:
            ours = fifo_script is not None
            fifo = NotifyFifo(self.spec.notify_fifo, create=ours, hold_open=ours)
        ctx = self.ctx = Context(loop, timer, nl, scripts, fifo, self.options.release_on_stop)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(SIGJSON, self.write_json)
        loop.add_signal_handler(
            signal.SIGHUP,
            lambda: log.warning(
                "Reload requested: not supported by the VRRP child yet; keeping the running configuration"
            ),
        )
        if fifo is not None and fifo_script is not None:
            fifo.open()  # create it and hold it open before its reader starts
            scripts.spawn(fifo_script)
        try:
            await self._start(ctx, nl)
            await self.stopping.wait()
            log.info("Stopping")
            await self._stop(ctx)
        finally:
            for sock in self.sockets:
                sock.close()
            for sender in ctx.senders.values():
                sender.close()
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

    def write_json(self) -> None:
        """keepalived's JSON signal: every instance's state and counters, atomically."""
        import orjson

        path = self.options.json_file
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(orjson.dumps(self.status(), option=orjson.OPT_INDENT_2))
            os.replace(tmp, path)
        except OSError as exc:
            log.error("Cannot write %s: %s", path, exc)

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
        demuxes: dict[tuple[str, int, str], Demux] = {}
        group_of = {m: g for g in self.spec.groups for m in g.members}
        for spec in self.spec.instances:
            primary = await self._primary_address(nl, spec)
            if spec.params.primary_address is None:
                from dataclasses import replace

                spec = replace(
                    spec, params=replace(spec.params, primary_address=spec.src or primary)
                )
            inst = Instance(spec, ctx, primary)
            ctx.instances[inst.name] = inst
            if spec.vmac:
                await self._create_vmac(nl, inst)
            self._socket_for(inst, demuxes)
        for g in self.spec.groups:
            members = {m: ctx.instances[m].machine for m in g.members if m in ctx.instances}
            group = SyncGroup(g.name, members, tracking_weight=g.tracking_weight)
            ctx.groups[g.name] = group
            ctx.group_notify[g.name] = g.notify
            for m in members:
                ctx.instances[m].group = group
        for inst in ctx.instances.values():
            group = ctx.groups.get(group_of[inst.name].name) if inst.name in group_of else None
            self._track(inst, ignore_weights=group.member_ignores_weights if group else False)
        await nl.watch_links(self._on_link)
        if self.spec.startup_delay_s:
            log.info("Delaying startup for %g seconds", self.spec.startup_delay_s)
            await asyncio.sleep(self.spec.startup_delay_s)
        for inst in ctx.instances.values():
            inst.feed(Startup())
            for event in self.tracking.sets[inst.name].events():
                inst.feed(event)
            if inst.machine.state != State.MASTER:
                # keepalived removes VIPs at startup: a crashed run (kill -9) left them
                # configured, and a backup holding them would answer ARP for them.
                inst.execute(RemoveVips())
        loop = asyncio.get_running_loop()
        for name in self.tracking.scripts:
            self.tasks.append(loop.create_task(self._script_loop(name), name=f"script-{name}"))
        if self.tracking.files:
            self.tasks.append(loop.create_task(self._file_loop(), name="track-files"))

    async def _create_vmac(self, nl: Netlink, inst: Instance) -> None:
        """keepalived's use_vmac: at startup, a macvlan (private mode) on the interface
        with the VRRP virtual MAC, brought up; the VIPs go on it when master.

        Sysctls as keepalived sets them (vrrp_if_config.c): the VMAC answers ARP only
        for its own addresses, accepts packets with local sources and skips rp_filter;
        the base interface stops answering ARP for addresses it does not hold
        (arp_ignore 1, arp_filter 1), restored on exit."""
        spec = inst.spec
        assert spec.vmac is not None
        await nl.create_vmac(spec.vmac, spec.ifname, spec.params.vrid, family=spec.family)
        inst.vmac = spec.vmac
        self.vmacs.append(spec.vmac)
        if spec.family == socket.AF_INET:
            for name, value in (("arp_ignore", 1), ("accept_local", 1), ("rp_filter", 0)):
                _set_sysctl(spec.vmac, name, value)
            if spec.ifname not in self.base_sysctls:
                saved = {}
                for name in ("arp_ignore", "arp_filter"):
                    saved[name] = _set_sysctl(spec.ifname, name, 1)
                self.base_sysctls[spec.ifname] = saved
        log.info("VRRP_Instance(%s) using VMAC %s on %s", inst.name, spec.vmac, spec.ifname)

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
        for task in self.tasks:
            task.cancel()
        for inst in ctx.instances.values():
            if not self.options.release_on_stop:
                inst.spec = _no_release(inst.spec)
            inst.feed(Shutdown())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(i.drain() for i in ctx.instances.values())), STOP_GRACE_S
            )
        for inst in ctx.instances.values():
            log.info("VRRP_Instance(%s) stats: %s", inst.name, inst.status()["stats"])
        if self.options.release_on_stop:  # -V: the VIPs stay, so does the VMAC under them
            await self._remove_vmacs(ctx.netlink)
            await self._statics(ctx.netlink, add=False)


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
