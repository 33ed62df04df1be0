"""The VRRP side of the model: instances, sync groups, trackers, VIPs, routes, rules.

Names and defaults follow keepalived.conf(5) (keepalived 2.4). `None` marks a value
keepalived derives later (an instance's garp delay from global_defs, its version from
vrrp_version, and so on); normalise_vrrp.py resolves those, for validation and runtime.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum

from fastha.config.model import Script
from fastha.config.source import Positions, Where, no_positions
from fastha.config.values import IPAddress

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class State(StrEnum):
    MASTER = "MASTER"
    BACKUP = "BACKUP"


class AuthType(StrEnum):
    PASS = "PASS"
    AH = "AH"


class ParamMatch(StrEnum):
    EXACT = "exact"  # bare `param_match`
    INITIAL = "initial"
    PARTIAL = "partial"


@dataclass(frozen=True, slots=True, kw_only=True)
class Tracked:
    """One line of a track_interface/script/file/process/bfd block.

    `weight` None means "the tracked object's own weight" (scripts, files, processes)
    or 0 (interfaces: any failure means FAULT).
    """

    name: str
    weight: int | None = None
    reverse: bool = False
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualAddress:
    """A virtual_ipaddress / static_ipaddress line (`ip addr add` syntax)."""

    address: IPInterface  # prefix defaults to /32 or /128
    brd: IPAddress | None = None
    brd_op: str | None = None  # "-" clears / "+" sets the host bits (`brd +`)
    dev: str | None = None
    scope: str | None = None
    label: str | None = None
    peer: IPInterface | None = None
    home: bool = False
    nodad: bool = False
    noprefixroute: bool = False
    autojoin: bool = False
    preferred_lft: int | None = None
    track_group: str | None = None
    no_track: bool = False
    use_vmac: bool = False
    vmac_name: str | None = None
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class NextHop:
    """One `nexthop via ADDR dev IF weight N onlink` of a multipath route."""

    via: IPAddress | None = None
    dev: str | None = None
    weight: int | None = None  # 1-256, as written
    onlink: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualRoute:
    """A virtual_routes / static_routes line (`ip route add` syntax).

    The commonly used options are typed; the rest of keepalived's ip-route options
    are kept as written in `options` (name -> value, "" for flags).
    """

    to: ipaddress.IPv4Network | ipaddress.IPv6Network | None  # None: `default`
    family: int = 4
    type: str = "unicast"  # unicast, blackhole, unreachable, prohibit, throw, ...
    src: IPAddress | None = None
    via: IPAddress | None = None
    dev: str | None = None
    table: int | None = None  # resolved through /etc/iproute2/rt_tables (config.rttables)
    metric: int | None = None
    scope: str | None = None
    # What the kernel gets: keepalived's RTPROT_KEEPALIVED (18) unless `no_track`.
    protocol: int | None = None
    tos: int | None = None
    onlink: bool = False
    # RTA_METRICS: (name, value) as `ip route` spells them (mtu, advmss, congctl...),
    # and the names given with `lock`.
    metrics: tuple[tuple[str, int | str], ...] = ()
    lock: tuple[str, ...] = ()
    nexthops: tuple[NextHop, ...] = ()  # RTA_MULTIPATH
    track_group: str | None = None
    no_track: bool = False
    # Options keepalived accepts that fastha keeps but does not install (validate says so).
    options: tuple[tuple[str, str], ...] = ()
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualRule:
    """A virtual_rules / static_rules line (`ip rule add` syntax)."""

    from_: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    to: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    family: int = 4
    action: str = "table"  # table, goto, nop, blackhole, unreachable, prohibit
    table: int | None = None  # resolved through /etc/iproute2/rt_tables (config.rttables)
    goto: int | None = None
    priority: int | None = None
    iif: str | None = None
    oif: str | None = None
    fwmark: int | None = None
    fwmask: int | None = None
    invert: bool = False  # `not`: FIB_RULE_INVERT
    tos: int | None = None
    # FRA_PROTOCOL: RTPROT_KEEPALIVED (18) unless `no_track`.
    protocol: int | None = None
    suppress_prefixlength: int | None = None
    ipproto: int | None = None
    sport: str | None = None  # "lo:hi"
    dport: str | None = None
    uidrange: str | None = None
    l3mdev: bool = False
    track_group: str | None = None
    no_track: bool = False
    # Options keepalived accepts that fastha keeps but does not install (validate says so).
    options: tuple[tuple[str, str], ...] = ()
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)


StaticAddress = VirtualAddress
StaticRoute = VirtualRoute
StaticRule = VirtualRule


@dataclass(frozen=True, slots=True, kw_only=True)
class UnicastPeer:
    address: IPAddress
    min_ttl: int | None = None
    max_ttl: int | None = None
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Authentication:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    auth_type: AuthType | None = None
    auth_pass: str | None = None  # keepalived uses the first 8 characters


@dataclass(frozen=True, slots=True, kw_only=True)
class UseVmac:
    name: str | None = None  # default: <vmac_prefix>.<VRID>
    mac: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UseIpvlan:
    name: str | None = None
    address: IPInterface | None = None
    mode: str | None = None  # bridge, private, vepa


@dataclass(frozen=True, slots=True, kw_only=True)
class VrrpInstance:
    name: str
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    state: State | None = None  # BACKUP unless priority 255
    interface: str | None = None
    vrf: str | None = None
    use_vmac: UseVmac | None = None
    use_vmac_addr: bool = False
    vmac_xmit_base: bool = False
    use_ipvlan: UseIpvlan | None = None
    native_ipv6: bool = False
    dont_track_primary: bool = False
    track_interfaces: tuple[Tracked, ...] = ()
    track_scripts: tuple[Tracked, ...] = ()
    track_files: tuple[Tracked, ...] = ()
    track_processes: tuple[Tracked, ...] = ()
    track_bfds: tuple[Tracked, ...] = ()
    # fastha's extension (docs/MIGRATING.md): this bfd_instance going Down is the
    # Master_Down timer expiring, for a BACKUP. keepalived -t calls it unknown.
    fastha_bfd_master_down: str | None = None
    mcast_src_ip: IPAddress | None = None  # unicast_src_ip is the same setting
    mcast_dst_ip: IPAddress | None = None
    track_src_ip: bool = False
    version: int | None = None  # global vrrp_version (3 for IPv6)
    check_unicast_src: bool = False
    unicast_peers: tuple[UnicastPeer, ...] = ()
    unicast_fault_no_peer: bool = False
    unicast_ttl: int | None = None
    old_unicast_checksum: str | None = None  # "" or "never"
    garp_master_delay: int | None = None
    garp_master_repeat: int | None = None
    garp_lower_prio_delay: int | None = None
    garp_lower_prio_repeat: int | None = None
    garp_master_refresh: int | None = None
    garp_master_refresh_repeat: int | None = None
    garp_extra_if: int | None = None
    garp_extra_if_all: bool = False
    down_timer_adverts: int | None = None
    lower_prio_no_advert: bool | None = None
    higher_prio_send_advert: bool | None = None
    virtual_router_id: int | None = None  # required
    priority: int | None = None  # 255 for state MASTER, else 100
    advert_int: float = 1.0
    authentication: Authentication | None = None
    virtual_ipaddresses: tuple[VirtualAddress, ...] = ()
    virtual_ipaddresses_excluded: tuple[VirtualAddress, ...] = ()
    promote_secondaries: bool = False
    virtual_routes: tuple[VirtualRoute, ...] = ()
    virtual_rules: tuple[VirtualRule, ...] = ()
    accept: bool | None = None  # accept unless strict (then no_accept)
    nopreempt: bool = False
    preempt_delay: float = 0.0
    skip_check_adv_addr: bool = False
    strict_mode: bool | None = None  # global vrrp_strict
    debug: int = 0
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify_deleted: Script | None = None
    notify: Script | None = None
    notify_master_rx_lower_pri: Script | None = None
    notify_priority_changes: bool | None = None
    smtp_alert: bool | None = None
    kernel_rx_buf_size: int | None = None
    linkbeat_use_polling: bool = False
    lvs_sync_daemon_interface: str | None = None  # deprecated: global lvs_sync_daemon


@dataclass(frozen=True, slots=True, kw_only=True)
class VrrpSyncGroup:
    name: str
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    group: tuple[str, ...] = ()
    track_interfaces: tuple[Tracked, ...] = ()
    track_scripts: tuple[Tracked, ...] = ()
    track_files: tuple[Tracked, ...] = ()
    track_processes: tuple[Tracked, ...] = ()
    track_bfds: tuple[Tracked, ...] = ()
    notify_master: Script | None = None
    notify_backup: Script | None = None
    notify_fault: Script | None = None
    notify_stop: Script | None = None
    notify_deleted: Script | None = None
    notify: Script | None = None
    notify_priority_changes: bool | None = None
    smtp_alert: bool | None = None
    sync_group_tracking_weight: bool = False  # global_tracking is the old name


@dataclass(frozen=True, slots=True, kw_only=True)
class VrrpScript:
    name: str
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    script: str | None = None  # required
    interval: int = 1
    timeout: int | None = None  # default: interval
    weight: int = 0
    weight_reverse: bool = False
    rise: int = 1
    fall: int = 1
    user: str | None = None
    group: str | None = None
    init_fail: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackFile:
    name: str
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    file: str | None = None  # required
    weight: int = 1
    weight_reverse: bool = False
    init_file: bool = False
    init_file_value: int = 0
    init_file_overwrite: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VrrpTrackProcess:
    name: str
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    process: tuple[str, ...] = ()  # command name, then its parameters
    param_match: ParamMatch | None = None
    weight: int = 0
    weight_reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    fork_delay: float = 0.0
    terminate_delay: float = 0.0
    full_command: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class GarpGroup:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    garp_interval: float | None = None
    gna_interval: float | None = None
    interfaces: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackGroup:
    name: str
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    group: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkbeatInterface:
    name: str
    method: str | None = None  # MII, ETHTOOL, IOCTL
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceUpDownDelay:
    name: str
    down_delay: float
    up_delay: float | None = None  # same as down_delay
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
