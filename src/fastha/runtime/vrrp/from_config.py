"""keepalived.conf model -> what the VRRP child runs: one `InstanceSpec` per vrrp_instance.

Everything keepalived derives from global_defs (vrrp_version, vrrp_strict, the garp
defaults, the multicast groups...) is resolved here, once, so the runtime never looks
at the config model again.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from fastha.config import bfd
from fastha.config import normalise_vrrp as fix
from fastha.config.invocation import Script as RunScript
from fastha.config.model import Config, GlobalDefs, RxBufsPolicy, Script
from fastha.config.model_bfd import BfdInstance
from fastha.config.model_vrrp import (
    Tracked,
    VrrpInstance,
    VrrpScript,
    VrrpSyncGroup,
    VrrpTrackProcess,
)
from fastha.config.model_vrrp import VirtualAddress as ConfAddress
from fastha.config.model_vrrp import VirtualRoute as ConfRoute
from fastha.config.model_vrrp import VirtualRule as ConfRule
from fastha.config.scheduling import Scheduling
from fastha.config.scripts import enabled
from fastha.vrrp import addresses
from fastha.vrrp.params import PRIO_OWNER, InstanceParams
from fastha.vrrp.proctrack import ProcessMatch, ProcessSpec
from fastha.vrrp.rxbufs import RxBufs
from fastha.vrrp.states import State
from fastha.vrrp.timing import NS_PER_S

# keepalived gives notify scripts no timeout; we never let one live for ever.
NOTIFY_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class TrackedScript:
    name: str
    weight: int | None
    reverse: bool


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    params: InstanceParams
    ifname: str
    family: int
    vips: tuple[addresses.VirtualAddress, ...]
    excluded: tuple[addresses.VirtualAddress, ...]
    routes: tuple[addresses.VirtualRoute, ...]
    rules: tuple[addresses.VirtualRule, ...]
    src: str | None  # mcast_src_ip / unicast_src_ip
    mcast_group: str
    unicast_peers: tuple[str, ...]
    unicast_ttl: int
    auth_type: int  # wire AUTH_* value
    auth_data: bytes
    notify: dict[str, RunScript] = field(default_factory=dict)  # MASTER/BACKUP/.../"" generic
    garp_interval_s: float = 0.0
    gna_interval_s: float = 0.0
    track_interfaces: tuple[tuple[str, int, bool], ...] = ()  # name, weight, reverse
    track_scripts: tuple[TrackedScript, ...] = ()
    track_files: tuple[TrackedScript, ...] = ()
    track_processes: tuple[TrackedScript, ...] = ()
    track_bfds: tuple[tuple[str, int, bool], ...] = ()  # name, weight, reverse (resolved)
    # fastha_bfd_master_down: the bfd_instance whose Down is Master_Down expiry.
    bfd_master_down: str | None = None
    sync_group: str | None = None
    # notify_priority_changes (instance, else its sync group, else global): the
    # MASTER_PRIORITY / BACKUP_PRIORITY lines on the notify FIFOs.
    notify_priority_changes: bool = False
    vmac: str | None = None  # use_vmac: the macvlan's name (VIPs without dev go on it)
    vmac_xmit_base: bool = False
    # unicast_peer ... min_ttl/max_ttl: the TTL range accepted from that peer.
    peer_ttl: tuple[tuple[str, int, int], ...] = ()
    # global_defs vrrp_rx_bufs_*: this instance's share of its socket's receive buffer.
    rx_bufs: RxBufs = field(default_factory=RxBufs)
    untracked_vips: tuple[str, ...] = ()  # VIPs / eVIPs with no_track

    @property
    def name(self) -> str:
        return self.params.name

    @property
    def sock_ifname(self) -> str:
        """Where adverts are sent and received: the VMAC, so that they carry the virtual
        MAC (and because macvlan hands frames from our own MAC only to the macvlan)."""
        return self.vmac if self.vmac and not self.vmac_xmit_base else self.ifname

    @property
    def advert_addresses(self) -> tuple[bytes, ...]:
        """Packed VIPs carried in adverts: those of the instance's family (RFC 5798 5.2.9)."""
        return tuple(
            socket.inet_pton(self.family, v.address) for v in self.vips if v.family == self.family
        )

    def tracked_vip(self, address: str) -> str | None:
        """The interface of `address` if deleting it by hand makes us leave MASTER: a
        VIP or eVIP without `no_track` (keepalived_netlink.c address_is_ours)."""
        if address in self.untracked_vips:
            return None
        return next((v.dev for v in (*self.vips, *self.excluded) if v.address == address), None)


@dataclass(frozen=True, slots=True)
class ScriptSpec:
    """A vrrp_script, run by the tracker loop."""

    name: str
    script: RunScript
    interval_s: float
    weight: int
    reverse: bool
    rise: int
    fall: int
    init_fail: bool


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    members: tuple[str, ...]
    notify: dict[str, RunScript]
    tracking_weight: bool


@dataclass(frozen=True, slots=True)
class LvsSyncSpec:
    """global_defs lvs_sync_daemon, resolved: the kernel's IPVS sync daemon follows
    `instance` (master daemon while it is MASTER, backup daemon otherwise)."""

    instance: str
    ifname: str
    syncid: int  # keepalived: the instance's VRID unless `id` is given
    maxlen: int = 0  # 0: kernel default
    mcast_group: str = ""  # "": kernel default 224.0.0.81
    mcast_port: int = 0  # 0: kernel default 8848
    mcast_ttl: int = 0  # 0: kernel default 1


@dataclass(frozen=True, slots=True)
class VrrpSpec:
    instances: tuple[InstanceSpec, ...]
    scripts: dict[str, ScriptSpec]
    track_files: dict[str, tuple[str, int, bool]]  # name -> (path, weight, reverse)
    groups: tuple[GroupSpec, ...]
    notify_fifo: str | None
    notify_fifo_script: RunScript | None
    startup_delay_s: float
    router_id: str
    sched: Scheduling = field(default_factory=Scheduling)
    # static_ipaddress / static_routes / static_rules: set at start, never moved by VRRP.
    static_addresses: tuple[addresses.VirtualAddress, ...] = ()
    static_routes: tuple[addresses.VirtualRoute, ...] = ()
    static_rules: tuple[addresses.VirtualRule, ...] = ()
    lvs_syncd: LvsSyncSpec | None = None
    track_processes: dict[str, ProcessSpec] = field(default_factory=dict)
    # global_defs nftables [TABLENAME] / nftables_priority: the no_accept firewall.
    nft_table: str | None = None
    nft_priority: int = -1

    def no_accept_addresses(self) -> set[str]:
        """VIPs and eVIPs of the instances not in Accept_Mode (no_accept, vrrp_strict)."""
        return {
            v.address
            for i in self.instances
            if not i.params.accept_mode
            for v in (*i.vips, *i.excluded)
        }


def _run_script(
    s: Script | None, g: GlobalDefs, name: str, timeout: float | None, what: str | None = None
) -> RunScript | None:
    """The script as keepalived runs it (fastha.config.scripts); None when disabled."""
    if s is None:
        return None
    r = enabled(s.command, s.username, s.groupname, g, what)
    if r is None:
        return None
    return RunScript(argv=r.argv, timeout=timeout, uid=r.uid, gid=r.gid, name=name)


def _address(v: ConfAddress, default_dev: str) -> addresses.VirtualAddress:
    scope = v.scope
    return addresses.VirtualAddress(
        address=str(v.address.ip),
        prefixlen=v.address.network.prefixlen,
        dev=v.dev or default_dev,
        broadcast=_opt_str(v.brd),
        scope=scope,
        label=v.label,
        peer=str(v.peer.ip) if v.peer is not None else None,
        home=v.home,
        # keepalived adds every IPv6 address with IFA_F_NODAD (no DAD: a split brain
        # must not leave a VIP "dadfailed") unless `-nodad` asks for DAD (model: nodad).
        nodad=v.address.version == 6 and not v.nodad,
        noprefixroute=v.noprefixroute,
        preferred_lft=v.preferred_lft,
    )


def _opt_str(v: object) -> str | None:
    """The config value as text; None stays None."""
    return None if v is None else str(v)


def _af(family: int) -> int:
    """The socket family of a config's IP version (6, else IPv4)."""
    return socket.AF_INET6 if family == 6 else socket.AF_INET


def _route(r: ConfRoute) -> addresses.VirtualRoute:
    return addresses.VirtualRoute(
        dst=str(r.to) if r.to is not None else "default",
        via=_opt_str(r.via),
        src=_opt_str(r.src),
        dev=r.dev,
        table=r.table,
        metric=r.metric,
        scope=r.scope,
        proto=r.protocol,
        type=r.type,
        family=_af(r.family),
        tos=r.tos,
        onlink=r.onlink,
        metrics=r.metrics,
        lock=r.lock,
        nexthops=tuple((_opt_str(h.via), h.dev, h.weight, h.onlink) for h in r.nexthops),
        extras=r.options,
    )


def _rule(r: ConfRule) -> addresses.VirtualRule:
    return addresses.VirtualRule(
        from_=_opt_str(r.from_),
        to=_opt_str(r.to),
        table=r.table,
        priority=r.priority,
        iif=r.iif,
        oif=r.oif,
        fwmark=r.fwmark,
        fwmask=r.fwmask,
        action="to_tbl" if r.action == "table" else r.action,
        family=_af(r.family),
        invert=r.invert,
        goto=r.goto,
        tos=r.tos,
        protocol=r.protocol,
        suppress_prefixlen=r.suppress_prefixlength,
        ip_proto=r.ipproto,
        sport=r.sport,
        dport=r.dport,
        uid_range=r.uidrange,
        l3mdev=r.l3mdev,
    )


def rx_bufs(g: GlobalDefs, family: int, version: int, naddr: int) -> RxBufs:
    """keepalived's vrrp_rx_bufs_policy for one instance (vrrp.c, vrrp_create_sockpool):
    SIZE bytes; ADVERT: multiplier x the advert's length with its IPv4 header
    (vrrp_adv_len); MTU: multiplier x the interface MTU (resolved when the socket opens).
    No policy: keepalived keeps the kernel default, fastha the socket's DEFAULT_RCVBUF
    (a larger one: see fastha.drivers.vrrp_socket)."""
    policy, mult = g.vrrp_rx_bufs_policy, g.vrrp_rx_bufs_multiplier
    if policy is RxBufsPolicy.SIZE:
        return RxBufs(size=g.vrrp_rx_bufs_size or 0)
    if policy is RxBufsPolicy.ADVERT:
        v6 = family == socket.AF_INET6
        length = (0 if v6 else 20) + 8 + naddr * (16 if v6 else 4) + (8 if version == 2 else 0)
        return RxBufs(size=mult * length)
    if policy is RxBufsPolicy.MTU:
        return RxBufs(mtu_multiplier=mult)
    return RxBufs()


def _tracked(
    own: tuple[Tracked, ...],
    group: tuple[Tracked, ...],
    defaults: Mapping[str, int] | None = None,
) -> tuple[TrackedScript, ...]:
    """An instance's track_* lines, then its sync group's (keepalived applies a group's
    tracking to every member). A name on both takes the group's line unless the
    instance's weight (its own or the object's default, ``defaults``) is 0: keepalived's
    add_vrrp_to_track_* ("configured on VRRP instance and sync group") "use the sync
    group's weight unless the vrrp setting is unweighted"."""
    by_name = {t.name: t for t in group}
    lines = []
    for t in own:
        g = by_name.get(t.name)
        weight = t.weight if t.weight is not None else (defaults or {}).get(t.name, 0)
        lines.append(g if g is not None and weight else t)
    names = {t.name for t in own}
    lines += [t for t in group if t.name not in names]
    return tuple(TrackedScript(t.name, t.weight, t.reverse) for t in lines)


def _track_bfds(
    vi: VrrpInstance, group: VrrpSyncGroup | None, bfds: tuple[BfdInstance, ...]
) -> tuple[tuple[str, int, bool], ...]:
    """The instance's track_bfd lines, then its sync group's, as keepalived's vrrp.c
    builds them: an instance in a sync group without sync_group_tracking_weight, or an
    address owner, drops its weighted lines ("ignoring tracked bfd ... with weight");
    a group's line replaces the instance's unless that one is unweighted
    (add_vrrp_to_track_bfd); a group with an owner member has its weights set to 0."""
    owner = fix.effective_priority(vi) == PRIO_OWNER
    own = bfd.track_lines(bfds, vi.track_bfds)
    if owner or (group is not None and not group.sync_group_tracking_weight):
        own = [t for t in own if not t.weight]
    lines = {t.name: (t.weight, t.reverse) for t in own}
    if group is not None:
        for t in bfd.track_lines(bfds, group.track_bfds):
            if t.name not in lines or lines[t.name][0]:
                lines[t.name] = (0 if owner else t.weight, t.reverse)
    return tuple((name, w, r) for name, (w, r) in lines.items())


def instance_spec(
    vi: VrrpInstance,
    g: GlobalDefs,
    group: VrrpSyncGroup | None = None,
    disabled_scripts: frozenset[str] | set[str] = frozenset(),
    weights: Mapping[str, Mapping[str, int]] | None = None,
    bfds: tuple[BfdInstance, ...] = (),
) -> InstanceSpec:
    """``weights``: the default weight of each vrrp_script / track_file /
    vrrp_track_process by name ("script", "file", "process")."""
    w = weights or {}
    ifname = vi.interface or ""
    vmac = None
    if vi.use_vmac is not None:
        vmac = vi.use_vmac.name or f"{g.vmac_prefix}.{vi.virtual_router_id or 0}"
    # keepalived puts addresses without `dev` on the instance's interface: the VMAC.
    vip_dev = vmac or ifname
    vips = tuple(_address(v, vip_dev) for v in vi.virtual_ipaddresses)
    # keepalived's fix-ups, each in one place (fastha.config.normalise_vrrp; check-config
    # said what they change).
    family = _af(fix.family(vi))
    version, _ = fix.version(g, vi)
    strict = fix.strict(g, vi)
    master, _, _ = fix.initial_master(g, vi, version)
    preempt, _ = fix.preemption(g, vi, master)
    adverts, _ = fix.adverts(g, vi)
    auth, _ = fix.authentication(g, vi, version)
    params = InstanceParams(
        name=vi.name,
        vrid=vi.virtual_router_id or 0,
        version=version,
        priority=fix.effective_priority(vi),
        adver_int_cs=fix.advert_int_cs(vi, version)[0],
        initial_state=State.MASTER if master else State.BACKUP,
        primary_address=_opt_str(vi.mcast_src_ip),
        nopreempt=preempt.nopreempt,
        preempt_delay_ns=round(preempt.preempt_delay * NS_PER_S),
        down_timer_adverts=fix.down_timer_adverts(g, vi)[0],
        strict=strict,
        accept=fix.accept(g, vi, version)[0],
        dont_track_primary=vi.dont_track_primary,
        skip_check_adv_addr=vi.skip_check_adv_addr or g.vrrp_skip_check_adv_addr,
        check_unicast_src=vi.check_unicast_src or g.vrrp_check_unicast_src,
        lower_prio_no_advert=adverts.lower_prio_no_advert,
        higher_prio_send_advert=adverts.higher_prio_send_advert,
        garp_master_delay_ns=adverts.garp_master_delay * NS_PER_S,
        garp_master_repeat=adverts.garp_master_repeat,
        garp_master_refresh_ns=adverts.garp_master_refresh * NS_PER_S,
        garp_master_refresh_repeat=adverts.garp_master_refresh_repeat,
        garp_lower_prio_delay_ns=adverts.garp_lower_prio_delay * NS_PER_S,
        garp_lower_prio_repeat=adverts.garp_lower_prio_repeat,
    )
    group_addr = g.vrrp_mcast_group6 if family == socket.AF_INET6 else g.vrrp_mcast_group4
    notify: dict[str, RunScript] = {}
    for key, script in (
        ("MASTER", vi.notify_master),
        ("BACKUP", vi.notify_backup),
        ("FAULT", vi.notify_fault),
        ("STOP", vi.notify_stop),
        ("MASTER_RX_LOWER_PRI", vi.notify_master_rx_lower_pri),
        ("", vi.notify),
    ):
        run = _run_script(
            script, g, f"{vi.name} notify{'_' + key.lower() if key else ''}", NOTIFY_TIMEOUT_S
        )
        if run is not None:
            notify[key] = run
    return InstanceSpec(
        params=params,
        ifname=ifname,
        family=family,
        vips=vips,
        excluded=tuple(_address(v, vip_dev) for v in vi.virtual_ipaddresses_excluded),
        routes=tuple(_route(r) for r in vi.virtual_routes),
        rules=tuple(_rule(r) for r in vi.virtual_rules),
        src=_opt_str(vi.mcast_src_ip),
        mcast_group=str(group_addr),
        unicast_peers=tuple(str(p.address) for p in vi.unicast_peers),
        unicast_ttl=vi.unicast_ttl or 255,
        peer_ttl=tuple(
            (str(p.address), p.min_ttl or 0, p.max_ttl if p.max_ttl is not None else 255)
            for p in vi.unicast_peers
            if p.min_ttl is not None or p.max_ttl is not None
        ),
        auth_type=auth.type,
        auth_data=auth.data,
        notify=notify,
        garp_interval_s=g.vrrp_garp_interval,
        gna_interval_s=g.vrrp_gna_interval,
        track_interfaces=_track_interfaces(
            vi, _tracked(vi.track_interfaces, group.track_interfaces if group else ())
        ),
        # keepalived drops a disabled (insecure, missing) vrrp_script from every list.
        track_scripts=tuple(
            t
            for t in _tracked(
                vi.track_scripts, group.track_scripts if group else (), w.get("script")
            )
            if t.name not in disabled_scripts
        ),
        track_files=_tracked(vi.track_files, group.track_files if group else (), w.get("file")),
        track_processes=_tracked(
            vi.track_processes, group.track_processes if group else (), w.get("process")
        ),
        track_bfds=_track_bfds(vi, group, bfds),
        bfd_master_down=(
            vi.fastha_bfd_master_down
            if vi.fastha_bfd_master_down in bfd.tracked(bfds, vrrp=True)[0]
            else None
        ),
        sync_group=group.name if group else None,
        notify_priority_changes=fix.notify_priority_changes(g, vi, group),
        vmac=vmac,
        vmac_xmit_base=fix.vmac_xmit_base(g, vi)[0],
        rx_bufs=rx_bufs(g, family, version, sum(1 for v in vips if v.family == family)),
        untracked_vips=tuple(
            str(v.address.ip)
            for v in (*vi.virtual_ipaddresses, *vi.virtual_ipaddresses_excluded)
            if v.no_track
        ),
    )


def _script_spec(s: VrrpScript, g: GlobalDefs) -> ScriptSpec | None:
    """None for a script keepalived disables (removed from every track_script list)."""
    timeout = float(s.timeout if s.timeout is not None else s.interval)
    run = _run_script(
        Script(command=s.script or "/bin/false", username=s.user, groupname=s.group),
        g,
        s.name,
        timeout,
        f"track script {s.name}",
    )
    if run is None:
        return None
    return ScriptSpec(
        name=s.name,
        script=run,
        interval_s=float(s.interval),
        weight=s.weight,
        reverse=s.weight_reverse,
        rise=s.rise,
        fall=s.fall,
        init_fail=s.init_fail,
    )


def _lvs_syncd(config: Config) -> LvsSyncSpec | None:
    """keepalived's lvs_syncd: the global keyword, or the deprecated per-instance
    `lvs_sync_daemon_interface` (which names the instance holding it)."""
    g = config.global_defs
    by_name = {vi.name: vi for vi in config.vrrp_instances}
    sd = g.lvs_sync_daemon
    if sd is not None:
        vi = by_name.get(sd.instance) if sd.instance is not None else None
        if vi is None:
            return None  # validation warned: "... not found - ignoring"
        return LvsSyncSpec(
            instance=vi.name,
            ifname=sd.interface,
            syncid=sd.id if sd.id is not None else (vi.virtual_router_id or 0),
            maxlen=sd.maxlen or 0,
            mcast_group=str(sd.group) if sd.group is not None else "",
            mcast_port=sd.port if sd.port != 8848 else 0,
            mcast_ttl=sd.ttl or 0,
        )
    for vi in config.vrrp_instances:
        if vi.lvs_sync_daemon_interface:
            # keepalived sets no syncid for this form (only the global one defaults to
            # the VRID, vrrp.c): the kernel's sync daemon runs with syncid 0.
            return LvsSyncSpec(vi.name, vi.lvs_sync_daemon_interface, 0)
    return None


def _process_spec(p: VrrpTrackProcess) -> ProcessSpec:
    match = ProcessMatch.from_words(
        p.name, p.process, p.param_match.value if p.param_match else None, p.full_command
    )
    qmax, _ = fix.quorum_max(p)
    return ProcessSpec(
        match,
        p.weight,
        p.weight_reverse,
        p.quorum,
        qmax,
        round(p.fork_delay * 1e9),
        round(p.terminate_delay * 1e9),
    )


def vrrp_spec(config: Config) -> VrrpSpec:
    g = config.global_defs
    member_of = {m: sg for sg in config.vrrp_sync_groups for m in sg.group}
    groups = []
    for sg in config.vrrp_sync_groups:
        notify = {}
        for key, script in (
            ("MASTER", sg.notify_master),
            ("BACKUP", sg.notify_backup),
            ("FAULT", sg.notify_fault),
            ("STOP", sg.notify_stop),
            ("", sg.notify),
        ):
            run = _run_script(script, g, f"{sg.name} notify", NOTIFY_TIMEOUT_S)
            if run is not None:
                notify[key] = run
        groups.append(GroupSpec(sg.name, sg.group, notify, sg.sync_group_tracking_weight))
    fifo, fifo_script = g.vrrp_notify_fifo, g.vrrp_notify_fifo_script
    if fifo is None:
        fifo, fifo_script = g.notify_fifo, g.notify_fifo_script
    fifo_run = None
    if fifo is not None and fifo_script is not None:
        # keepalived runs the FIFO's reader itself, the FIFO's name appended, for ever.
        run = _run_script(fifo_script, g, "notify_fifo_script", None)
        if run is not None:
            fifo_run = dataclasses.replace(run, argv=(*run.argv, fifo.name))
    scripts = {s.name: _script_spec(s, g) for s in config.vrrp_scripts}
    disabled = {name for name, spec in scripts.items() if spec is None}
    weights = {
        "script": {s.name: s.weight for s in config.vrrp_scripts},
        "file": {t.name: t.weight for t in config.track_files},
        "process": {p.name: p.weight for p in config.vrrp_track_processes},
    }
    return VrrpSpec(
        instances=tuple(
            instance_spec(vi, g, member_of.get(vi.name), disabled, weights, config.bfd_instances)
            for vi in config.vrrp_instances
        ),
        scripts={name: spec for name, spec in scripts.items() if spec is not None},
        track_files={
            t.name: (t.file or "", t.weight, t.weight_reverse) for t in config.track_files
        },
        track_processes={
            p.name: _process_spec(p) for p in config.vrrp_track_processes if p.process
        },
        nft_table=g.nftables,
        nft_priority=g.nftables_priority,
        groups=tuple(groups),
        notify_fifo=fifo.name if fifo is not None else None,
        notify_fifo_script=fifo_run,
        startup_delay_s=g.vrrp_startup_delay,
        router_id=g.router_id or socket.gethostname(),
        static_addresses=tuple(_address(a, a.dev or "") for a in config.static_ipaddresses),
        static_routes=tuple(_route(r) for r in config.static_routes),
        static_rules=tuple(_rule(r) for r in config.static_rules),
        sched=Scheduling(
            nice=g.vrrp_priority,
            rt_priority=g.vrrp_rt_priority,
            rlimit_rttime_us=g.vrrp_rlimit_rttime,
            no_swap=g.vrrp_no_swap,
            cpu_affinity=g.vrrp_cpu_affinity,
        ),
        lvs_syncd=_lvs_syncd(config),
    )


def _track_interfaces(
    vi: VrrpInstance, tracked: tuple[TrackedScript, ...]
) -> tuple[tuple[str, int, bool], ...]:
    """track_interface entries, then every other interface a VIP, eVIP or route `dev`
    or a rule's iif/oif names, unless `no_track`: keepalived tracks those with weight 0,
    so the instance goes to FAULT while one is down (vrrp.c vrrp_complete_instance,
    TRACK_ADDR / TRACK_ROUTE / TRACK_RULE). The primary interface is tracked anyway."""
    out = [(t.name, t.weight or 0, t.reverse) for t in tracked]
    names: list[str | None] = []
    for a in (*vi.virtual_ipaddresses, *vi.virtual_ipaddresses_excluded):
        if not a.no_track:
            names.append(a.dev)
    for route in vi.virtual_routes:
        if not route.no_track:
            names.append(route.dev)
    for r in vi.virtual_rules:
        if not r.no_track:
            names += [r.iif, r.oif]
    seen = {name for name, _, _ in out}
    for name in names:
        if name and name != vi.interface and name not in seen:
            seen.add(name)
            out.append((name, 0, False))
    return tuple(out)


# -- reload: what changed between two specs ------------------------------------------------

# What binds an instance to its socket and its place in the VRID demultiplexer: a change
# in any of these stops the running instance and starts a new one (keepalived, too,
# treats a changed interface/VRID/family as a different router).
_IDENTITY_NAMES = {
    "ifname": "interface",
    "family": "family",
    "src": "source address",
    "mcast_group": "multicast group",
    "unicast_peers": "unicast peers",
    "unicast_ttl": "unicast_ttl",
    "vmac": "use_vmac",
    "vmac_xmit_base": "vmac_xmit_base",
}
# Friendlier names for the in-place changes the log reports.
_PARAM_NAMES = {"adver_int_cs": "advert_int", "primary_address": "mcast_src_ip"}
_SPEC_NAMES = {
    "vips": "virtual_ipaddress",
    "excluded": "virtual_ipaddress_excluded",
    "routes": "virtual_routes",
    "rules": "virtual_rules",
    "rx_bufs": "vrrp_rx_bufs_policy",
    "track_processes": "track_process",
    "track_bfds": "track_bfd",
    "bfd_master_down": "fastha_bfd_master_down",
}


@dataclass(frozen=True, slots=True)
class InstanceChange:
    """One vrrp_instance present before and after a reload."""

    old: InstanceSpec
    new: InstanceSpec
    changes: tuple[str, ...]  # what differs, keepalived keyword names where they exist

    @property
    def name(self) -> str:
        return self.new.name


@dataclass(frozen=True, slots=True)
class SpecDiff:
    unchanged: tuple[str, ...]
    changed: tuple[InstanceChange, ...]  # applied to the running instance in place
    restarted: tuple[InstanceChange, ...]  # identity changed: stop, then start anew
    added: tuple[InstanceSpec, ...]
    removed: tuple[InstanceSpec, ...]
    scripts: tuple[str, ...]  # vrrp_script / vrrp_track_file names added, removed, changed
    groups: bool  # vrrp_sync_group definitions differ
    statics: bool  # static_ipaddress / static_routes / static_rules differ
    lvs_syncd: bool
    restart_only: tuple[str, ...]  # global settings a reload cannot change (logged)

    @property
    def empty(self) -> bool:
        return not (
            self.changed
            or self.restarted
            or self.added
            or self.removed
            or self.scripts
            or self.groups
            or self.statics
            or self.lvs_syncd
            or self.restart_only
        )

    def summary(self) -> str:
        return (
            f"{len(self.unchanged)} unchanged, {len(self.changed)} changed, "
            f"{len(self.restarted)} restarted, {len(self.added)} added, "
            f"{len(self.removed)} removed"
        )


def identity_changes(old: InstanceSpec, new: InstanceSpec) -> tuple[str, ...]:
    """Why `new` cannot take over `old`'s running instance (empty: it can)."""
    out = [label for f, label in _IDENTITY_NAMES.items() if getattr(old, f) != getattr(new, f)]
    if old.params.vrid != new.params.vrid:
        out.insert(0, "virtual_router_id")
    if bool(old.unicast_peers) != bool(new.unicast_peers):
        out.append("unicast/multicast")
    if (old.auth_type == 2) != (new.auth_type == 2):
        out.append("auth_type AH")  # AH adverts are IP protocol 51: another socket
    return tuple(out)


def instance_changes(old: InstanceSpec, new: InstanceSpec) -> tuple[str, ...]:
    """What an in-place reload of `old` into `new` changes."""
    out = [
        _PARAM_NAMES.get(f.name, f.name)
        for f in fields(InstanceParams)
        if getattr(old.params, f.name) != getattr(new.params, f.name)
    ]
    for f in fields(InstanceSpec):
        if f.name in ("params", *_IDENTITY_NAMES):
            continue
        if getattr(old, f.name) != getattr(new, f.name):
            out.append(_SPEC_NAMES.get(f.name, f.name))
    return tuple(out)


def diff_specs(old: VrrpSpec, new: VrrpSpec) -> SpecDiff:
    """The reload plan: which running instances stay as they are, change in place,
    restart, stop or start. Instances are matched by name, as keepalived does."""
    before = {i.name: i for i in old.instances}
    after = {i.name: i for i in new.instances}
    unchanged: list[str] = []
    changed: list[InstanceChange] = []
    restarted: list[InstanceChange] = []
    for name, n in after.items():
        o = before.get(name)
        if o is None:
            continue
        if n == o:
            unchanged.append(name)
        elif why := identity_changes(o, n):
            restarted.append(InstanceChange(o, n, why))
        else:
            changed.append(InstanceChange(o, n, instance_changes(o, n)))
    scripts = sorted(
        {
            k
            for k in old.scripts.keys() | new.scripts.keys()
            if old.scripts.get(k) != new.scripts.get(k)
        }
        | {
            k
            for k in old.track_files.keys() | new.track_files.keys()
            if old.track_files.get(k) != new.track_files.get(k)
        }
        | {
            k
            for k in old.track_processes.keys() | new.track_processes.keys()
            if old.track_processes.get(k) != new.track_processes.get(k)
        }
    )
    restart_only: list[str] = []  # (the notify FIFO is reopened on every reload)
    if old.sched != new.sched:
        restart_only.append("vrrp scheduling (vrrp_priority, vrrp_rt_priority ...)")
    return SpecDiff(
        unchanged=tuple(unchanged),
        changed=tuple(changed),
        restarted=tuple(restarted),
        added=tuple(s for name, s in after.items() if name not in before),
        removed=tuple(s for name, s in before.items() if name not in after),
        scripts=tuple(scripts),
        groups=old.groups != new.groups,
        statics=(old.static_addresses, old.static_routes, old.static_rules)
        != (new.static_addresses, new.static_routes, new.static_rules),
        lvs_syncd=old.lvs_syncd != new.lvs_syncd,
        restart_only=tuple(restart_only),
    )
