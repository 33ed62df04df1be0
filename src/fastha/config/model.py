"""The root of the typed configuration model and the small types both sides share.

Field names are keepalived's keyword names (plural for repeated blocks); defaults are
the ones keepalived.conf(5) documents. `None` means "not configured" where keepalived
derives the value from something else (router_id -> host name, and so on).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from fastha.config.source import Positions, Where, no_positions
from fastha.config.values import IPAddress

if TYPE_CHECKING:
    from fastha.config.model_bfd import BfdInstance
    from fastha.config.model_lvs import SslConfig, VirtualServer, VirtualServerGroup
    from fastha.config.model_vrrp import (
        GarpGroup,
        InterfaceUpDownDelay,
        LinkbeatInterface,
        StaticAddress,
        StaticRoute,
        StaticRule,
        TrackFile,
        TrackGroup,
        VrrpInstance,
        VrrpScript,
        VrrpSyncGroup,
        VrrpTrackProcess,
    )


# RFC 5798 section 5.1.1.2 / 5.1.2.2: the IANA VRRP groups.
VRRP_MCAST_GROUP4 = ipaddress.IPv4Address("224.0.0.18")
VRRP_MCAST_GROUP6 = ipaddress.IPv6Address("ff02::12")


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """A script keepalived runs: `notify_master CMD [username [groupname]]`.

    `command` is the command line as written (a quoted string is one word).
    """

    command: str
    username: str | None = None
    groupname: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Fifo:
    """`notify_fifo NAME [username [groupname]]`."""

    name: str
    username: str | None = None
    groupname: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAs:
    """`script_user username [groupname]`."""

    username: str
    groupname: str | None = None


class FlushOnStop(StrEnum):
    ALL = "all"  # `lvs_flush_on_stop` alone
    VS = "VS"  # remove each virtual server, let the kernel drop its real servers


class RxBufsPolicy(StrEnum):
    MTU = "MTU"
    ADVERT = "ADVERT"
    SIZE = "SIZE"  # an explicit byte count, in vrrp_rx_bufs_size


@dataclass(frozen=True, slots=True, kw_only=True)
class LvsSyncDaemon:
    """`lvs_sync_daemon IF [[inst] VI] [id N] [maxlen N] [port N] [ttl N] [group IP]`."""

    interface: str
    instance: str | None = None
    id: int | None = None  # default: the VRID of `instance`, else 0
    maxlen: int | None = None
    port: int = 8848
    ttl: int | None = None
    group: IPAddress | None = None  # kernel default 224.0.0.81


@dataclass(frozen=True, slots=True, kw_only=True)
class LvsTimeouts:
    """Unset values leave the kernel's timeout unchanged."""

    tcp: int | None = None
    tcpfin: int | None = None
    udp: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GarpExtraIf:
    interval: int  # seconds, 0 disables
    all: bool = False  # every interface of the instance, not only VMACs


@dataclass(frozen=True, slots=True, kw_only=True)
class GlobalDefs:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    # Process setup
    tmp_config_directory: str | None = None
    config_save_dir: str | None = None
    process_names: bool = False
    process_name: str | None = None
    vrrp_process_name: str | None = None
    checker_process_name: str | None = None
    bfd_process_name: str | None = None
    startup_script: Script | None = None
    startup_script_timeout: int = 10
    shutdown_script: Script | None = None
    shutdown_script_timeout: int = 10
    # Email
    notification_emails: tuple[str, ...] = ()
    notification_email_from: str | None = None  # keepalived@<host name>
    smtp_server: str | None = None  # IP address or host name
    smtp_server_port: int = 25
    smtp_helo_name: str | None = None  # host name
    smtp_connect_timeout: int = 30
    smtp_alert: bool | None = None
    smtp_alert_vrrp: bool | None = None
    smtp_alert_checker: bool | None = None
    checker_log_all_failures: bool = False
    no_email_faults: bool = False
    router_id: str | None = None  # host name
    # VRRP defaults
    vrrp_mcast_group4: ipaddress.IPv4Address = VRRP_MCAST_GROUP4
    vrrp_mcast_group6: ipaddress.IPv6Address = VRRP_MCAST_GROUP6
    default_interface: str = "eth0"
    vrrp_garp_master_delay: int = 5
    vrrp_garp_master_repeat: int = 5
    vrrp_garp_lower_prio_delay: int | None = None  # vrrp_garp_master_delay
    vrrp_garp_lower_prio_repeat: int | None = None  # vrrp_garp_master_repeat
    vrrp_garp_master_refresh: int = 0
    vrrp_garp_master_refresh_repeat: int = 1
    vrrp_garp_interval: float = 0.0
    vrrp_gna_interval: float = 0.0
    vrrp_min_garp: bool = False
    vrrp_garp_extra_if: GarpExtraIf | None = None
    vrrp_down_timer_adverts: int = 3
    vrrp_lower_prio_no_advert: bool | None = None  # false unless strict
    vrrp_higher_prio_send_advert: bool | None = None
    vrrp_version: int = 2
    vrrp_iptables: tuple[str, ...] | None = None
    vrrp_ipsets: tuple[str, ...] | None = None
    nftables: str | None = None
    nftables_priority: int = -1
    nftables_ifindex: bool = False
    nftables_counters: bool = False
    nftables_ipvs: str | None = None
    nftables_ipvs_priority: int = -1
    nftables_ipvs_start_fwmark: int = 1000
    disable_local_igmp: bool = False
    vrrp_check_unicast_src: bool = False
    vrrp_skip_check_adv_addr: bool = False
    vrrp_strict: bool = False
    vrrp_notify_priority_changes: bool = False
    vrrp_startup_delay: float = 0.0
    log_unknown_vrids: bool = False
    vmac_prefix: str = "vrrp"
    vmac_addr_prefix: str | None = None
    vrrp_rx_bufs_policy: RxBufsPolicy | None = None
    vrrp_rx_bufs_size: int | None = None
    vrrp_rx_bufs_multiplier: int = 3
    # Scheduling of the children (DESIGN.md: applied to the vrrp / checker child)
    max_auto_priority: int = 0  # 0: no automatic increases; the keyword alone: 99
    min_auto_priority_delay: int = 1_000_000  # microseconds
    vrrp_priority: int | None = None
    checker_priority: int | None = None
    bfd_priority: int | None = None
    vrrp_no_swap: bool = False
    checker_no_swap: bool = False
    bfd_no_swap: bool = False
    vrrp_cpu_affinity: tuple[int, ...] = ()
    checker_cpu_affinity: tuple[int, ...] = ()
    bfd_cpu_affinity: tuple[int, ...] = ()
    vrrp_rt_priority: int | None = None
    checker_rt_priority: int | None = None
    bfd_rt_priority: int | None = None
    # RLIMIT_RTTIME (microseconds) set with realtime scheduling.
    vrrp_rlimit_rttime: int = 10000
    checker_rlimit_rttime: int = 10000
    bfd_rlimit_rttime: int = 10000
    # LVS globals
    lvs_timeouts: LvsTimeouts | None = None
    lvs_sync_daemon: LvsSyncDaemon | None = None
    lvs_flush: bool = False
    lvs_flush_on_stop: FlushOnStop | None = None
    rs_init_notifies: bool = False
    no_checker_emails: bool = False
    # SNMP / DBus
    snmp_socket: str = "unix:/var/agentx/master"
    enable_traps: bool = False
    enable_snmp_vrrp: bool = False
    enable_snmp_checker: bool = False
    enable_snmp_rfc: bool = False
    enable_snmp_rfcv2: bool = False
    enable_snmp_rfcv3: bool = False
    enable_dbus: bool = False
    dbus_service_name: str = "org.keepalived.Vrrp1"
    # Scripts
    script_user: RunAs | None = None
    enable_script_security: bool = False
    notify_fifo: Fifo | None = None
    notify_fifo_script: Script | None = None
    vrrp_notify_fifo: Fifo | None = None
    vrrp_notify_fifo_script: Script | None = None
    lvs_notify_fifo: Fifo | None = None
    lvs_notify_fifo_script: Script | None = None
    fifo_write_vrrp_states_on_reload: bool = False
    # Interfaces and netlink
    dynamic_interfaces: bool = False
    dynamic_interfaces_allow_if_changes: bool = False
    vrrp_netlink_cmd_rcv_bufs: int | None = None
    vrrp_netlink_cmd_rcv_bufs_force: bool = False
    vrrp_netlink_monitor_rcv_bufs: int | None = None
    vrrp_netlink_monitor_rcv_bufs_force: bool = False
    lvs_netlink_cmd_rcv_bufs: int | None = None
    lvs_netlink_cmd_rcv_bufs_force: bool = False
    lvs_netlink_monitor_rcv_bufs: int | None = None
    lvs_netlink_monitor_rcv_bufs_force: bool = False
    process_monitor_rcv_bufs: int | None = None
    process_monitor_rcv_bufs_force: bool = False
    # Reload and housekeeping
    umask: int | None = None
    random_seed: int | None = None
    reload_check_config: str | None = None  # "" = check without a log file
    reload_time_file: str | None = None
    reload_repeat: bool = False
    reload_file: str | None = None  # "" = keepalived.reload in the pid directory
    include_check: tuple[str, ...] | None = None
    data_use_instance: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    # Root-level daemon facilities
    net_namespace: str | None = None
    net_namespace_ipvs: str | None = None  # "" = the default namespace
    namespace_with_ipsets: bool = False
    instance: str | None = None
    use_pid_dir: bool = False
    linkbeat_use_polling: bool = False
    child_wait_time: int = 5
    global_defs: GlobalDefs = GlobalDefs()
    # VRRP side
    linkbeat_interfaces: tuple[LinkbeatInterface, ...] = ()
    interface_up_down_delays: tuple[InterfaceUpDownDelay, ...] = ()
    track_groups: tuple[TrackGroup, ...] = ()
    static_ipaddresses: tuple[StaticAddress, ...] = ()
    static_routes: tuple[StaticRoute, ...] = ()
    static_rules: tuple[StaticRule, ...] = ()
    track_files: tuple[TrackFile, ...] = ()
    vrrp_track_processes: tuple[VrrpTrackProcess, ...] = ()
    vrrp_scripts: tuple[VrrpScript, ...] = ()
    vrrp_sync_groups: tuple[VrrpSyncGroup, ...] = ()
    garp_groups: tuple[GarpGroup, ...] = ()
    vrrp_instances: tuple[VrrpInstance, ...] = ()
    # LVS side (keywords_lvs.py)
    virtual_server_groups: tuple[VirtualServerGroup, ...] = ()
    virtual_servers: tuple[VirtualServer, ...] = ()
    ssl: SslConfig | None = None
    bfd_instances: tuple[BfdInstance, ...] = ()
