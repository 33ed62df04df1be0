"""Root keywords and global_defs, through the real loader."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest

from fastha.config.diagnostics import ExitCode
from fastha.config.loader import LoadResult, load
from fastha.config.model import FlushOnStop, GlobalDefs, RxBufsPolicy
from fastha.config.validate import Host
from fastha.config.validate_unsupported import GLOBAL

pytestmark = pytest.mark.unit
# The scripts named here do not exist: script security has tests of its own
# (test_config_scripts.py).
HOST = Host(interfaces=frozenset({"eth0"}), check_scripts=False)


def run(tmp_path: Path, text: str) -> LoadResult:
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    return load(path, host=HOST)


FULL = """
net_namespace blue
net_namespace_ipvs
namespace_with_ipsets
instance lb1
use_pid_dir
linkbeat_use_polling
child_wait_time 10
global_defs {
    router_id LB1
    notification_email {
        ops@example.com noc@example.com
        root@localhost
    }
    notification_email_from lb@example.com
    smtp_server 192.0.2.25 2525
    smtp_helo_name lb1.example.com
    smtp_connect_timeout 20
    smtp_alert false
    enable_traps
    enable_snmp_vrrp
    enable_snmp_checker
    script_user keepalived_script nogroup
    enable_script_security
    max_auto_priority 50
    vrrp_mcast_group4 224.0.0.19
    vrrp_mcast_group6 ff02::13
    vrrp_garp_master_delay 3
    vrrp_garp_master_repeat 2
    vrrp_garp_master_refresh 60
    vrrp_garp_master_refresh_repeat 2
    vrrp_garp_lower_prio_delay 4
    vrrp_garp_lower_prio_repeat 3
    vrrp_garp_interval 0.001
    vrrp_gna_interval 0.002
    vrrp_garp_extra_if all 120
    vrrp_lower_prio_no_advert
    vrrp_higher_prio_send_advert true
    vrrp_version 3
    vrrp_iptables keepalived_in keepalived_out
    vrrp_check_unicast_src
    vrrp_skip_check_adv_addr
    vrrp_strict
    vrrp_priority -10
    vrrp_no_swap
    vrrp_rt_priority 50
    vrrp_cpu_affinity 0 1
    vrrp_rlimit_rttime 10000
    checker_priority 5
    checker_no_swap
    checker_rt_priority 40
    checker_cpu_affinity 2
    checker_rlimit_rttime 20000
    lvs_timeouts tcp 900 tcpfin 60 udp 300
    lvs_sync_daemon eth0 inst VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 224.0.0.82
    lvs_flush
    lvs_flush_on_stop VS
    notify_fifo /run/ka.fifo root
    notify_fifo_script /bin/fifo.sh
    vrrp_notify_fifo /run/vrrp.fifo
    vrrp_notify_fifo_script /bin/vfifo.sh
    lvs_notify_fifo /run/lvs.fifo
    lvs_notify_fifo_script /bin/lfifo.sh
    dynamic_interfaces allow_if_changes
    vrrp_startup_delay 5.5
    vrrp_netlink_cmd_rcv_bufs 1048576
    vrrp_netlink_monitor_rcv_bufs_force
    vrrp_rx_bufs_policy MTU
    enable_dbus
    umask IWGRP|IWOTH
    startup_script /bin/up.sh nobody
    startup_script_timeout 30
    reload_check_config
    data_use_instance
}
"""


def test_full_global_defs(tmp_path: Path) -> None:
    result = run(tmp_path, FULL)
    # The only complaint: the sync daemon names an instance this file does not define.
    notes = [d for d in result.diagnostics if d.exit_code == ExitCode.OK]
    assert [d.message for d in result.diagnostics if d not in notes] == [
        "lvs_sync_daemon vrrp instance VI_1 not found - ignoring"
    ]
    # Besides, every keyword fastha reads and does not act on is named at its line.
    assert len(notes) == 13 and all("is not supported by fastha" in d.message for d in notes)
    enable_dbus = next(d for d in notes if d.message.startswith("enable_dbus "))
    assert enable_dbus.where is not None
    assert FULL.splitlines()[enable_dbus.where.line - 1].strip() == "enable_dbus"
    cfg = result.config
    assert (cfg.net_namespace, cfg.net_namespace_ipvs, cfg.instance) == ("blue", "", "lb1")
    assert cfg.use_pid_dir and cfg.linkbeat_use_polling and cfg.child_wait_time == 10
    g = cfg.global_defs
    assert g.router_id == "LB1"
    assert g.notification_emails == ("ops@example.com", "noc@example.com", "root@localhost")
    assert (g.smtp_server, g.smtp_server_port, g.smtp_connect_timeout) == ("192.0.2.25", 2525, 20)
    assert g.smtp_alert is False and g.enable_traps and g.enable_snmp_vrrp
    assert (g.script_user.username, g.script_user.groupname) == ("keepalived_script", "nogroup")
    assert g.vrrp_mcast_group4 == ipaddress.ip_address("224.0.0.19")
    assert (g.vrrp_garp_master_delay, g.vrrp_garp_lower_prio_repeat) == (3, 3)
    assert g.vrrp_garp_interval == 0.001
    assert g.vrrp_garp_extra_if.interval == 120 and g.vrrp_garp_extra_if.all
    assert g.vrrp_version == 3 and g.vrrp_strict
    assert g.vrrp_iptables == ("keepalived_in", "keepalived_out")
    assert (g.vrrp_priority, g.vrrp_rt_priority, g.vrrp_cpu_affinity) == (-10, 50, (0, 1))
    assert g.checker_rlimit_rttime == 20000
    assert (g.lvs_timeouts.tcp, g.lvs_timeouts.tcpfin, g.lvs_timeouts.udp) == (900, 60, 300)
    sync = g.lvs_sync_daemon
    assert (sync.interface, sync.instance, sync.id, sync.maxlen, sync.port, sync.ttl) == (
        "eth0",
        "VI_1",
        7,
        1400,
        8849,
        2,
    )
    assert g.lvs_flush_on_stop is FlushOnStop.VS
    assert g.notify_fifo.name == "/run/ka.fifo" and g.notify_fifo.username == "root"
    assert g.vrrp_notify_fifo_script.command == "/bin/vfifo.sh"
    assert g.dynamic_interfaces and g.dynamic_interfaces_allow_if_changes
    assert g.vrrp_rx_bufs_policy is RxBufsPolicy.MTU
    assert g.umask == 0o022
    assert g.startup_script.username == "nobody" and g.reload_check_config == ""


def test_documented_defaults() -> None:
    g = GlobalDefs()
    assert str(g.vrrp_mcast_group4) == "224.0.0.18" and str(g.vrrp_mcast_group6) == "ff02::12"
    assert (g.vrrp_garp_master_delay, g.vrrp_garp_master_repeat) == (5, 5)
    assert g.vrrp_garp_master_refresh_repeat == 1 and g.smtp_connect_timeout == 30
    assert g.vrrp_version == 2 and g.default_interface == "eth0"
    assert g.smtp_server_port == 25 and g.vmac_prefix == "vrrp"


@pytest.mark.parametrize(
    ("old", "new", "check"),
    [
        ("vrrp_rlimit_rtime 5000", "vrrp_rlimit_rttime", lambda g: g.vrrp_rlimit_rttime == 5000),
        (
            "checker_rlimit_rtime 5000",
            "checker_rlimit_rttime",
            lambda g: g.checker_rlimit_rttime == 5000,
        ),
        ("lvs_process_name lvs", "checker_process_name", lambda g: g.checker_process_name == "lvs"),
        (
            "vrrp_vmac_garp_intvl 30",
            "vrrp_garp_extra_if",
            lambda g: g.vrrp_garp_extra_if.interval == 30,
        ),
        ("enable_snmp_keepalived", "enable_snmp_vrrp", lambda g: g.enable_snmp_vrrp),
        ("lvs_id LB", "router_id", lambda g: g.router_id == "LB"),
    ],
)
def test_deprecated_global_spellings(tmp_path: Path, old: str, new: str, check) -> None:
    result = run(tmp_path, f"global_defs {{\n    {old}\n}}\n")
    name = old.split()[0]
    messages = [d.message for d in result.diagnostics]
    assert messages[0] == f"'{name}' is deprecated, use '{new}'"
    # ... and where fastha does not act on the new keyword either, it says so too.
    assert messages[1:] == (
        [f"{new} is not supported by fastha; ignored ({GLOBAL[new]})"] if new in GLOBAL else []
    )
    assert check(result.config.global_defs)


def test_global_lvs_sync_daemon_interface_is_unknown_as_in_keepalived(tmp_path: Path) -> None:
    """keepalived 2.2.7 knows lvs_sync_daemon_interface only in a vrrp_instance: in
    global_defs it is an unknown keyword (a warning) and starts no sync daemon."""
    result = run(tmp_path, "global_defs {\n    lvs_sync_daemon_interface eth0\n}\n")
    assert any("unknown keyword 'lvs_sync_daemon_interface'" in d.message
               for d in result.diagnostics), result.diagnostics  # fmt: skip
    assert result.config.global_defs.lvs_sync_daemon is None


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("vrrp_mcast_group4 10.0.0.1", "not an IPv4 multicast"),
        ("vrrp_version 4", "out of range"),
        ("vrrp_priority 20", "out of range"),
        ("vrrp_rt_priority 100", "out of range"),
        ("lvs_timeouts", "at least one"),
        ("lvs_timeouts tcp", "no value"),
        ("lvs_sync_daemon eth0 group 10.0.0.1", "not multicast"),
        ("lvs_flush_on_stop RS", "unknown lvs_flush_on_stop"),
        ("smtp_server 10.0.0.1 70000", "out of range"),
        ("umask IWFOO", "unknown umask bit"),
        ("dynamic_interfaces sometimes", "unknown dynamic_interfaces"),
    ],
)
def test_bad_global_values(tmp_path: Path, line: str, fragment: str) -> None:
    result = run(tmp_path, f"global_defs {{\n    {line}\n}}\n")
    assert any(fragment in d.message and d.where.line == 2 for d in result.errors), [
        str(d) for d in result.diagnostics
    ]
    assert result.exit_code == ExitCode.CONFIG


def test_unknown_keyword_warns_and_continues(tmp_path: Path) -> None:
    result = run(tmp_path, "global_defs {\n    no_such_thing 1\n    router_id X\n}\n")
    assert [d.message for d in result.diagnostics] == ["unknown keyword 'no_such_thing'"]
    assert result.config.global_defs.router_id == "X"


def test_daemon_config_test(tmp_path: Path) -> None:
    good = tmp_path / "good.conf"
    good.write_text("global_defs {\n    router_id X\n}\n")
    bad = tmp_path / "bad.conf"
    bad.write_text("global_defs {\n    vrrp_version 9\n}\n")
    cmd = [sys.executable, "-m", "fastha.cli.main", "daemon"]
    ok = subprocess.run([*cmd, "-t", "-f", str(good), "-l", "-D"], capture_output=True)
    assert ok.returncode == 0
    ko = subprocess.run([*cmd, "--config-test", "--use-file", str(bad)], capture_output=True)
    assert ko.returncode == 5 and b"bad.conf:2" in ko.stderr
