"""The children's status answers, the JSON schema of `fastha status --json`, the table,
keepalived's SIGUSR1/SIGUSR2 texts, the alert rules and `fastha daemon`'s refusals.

The daemon's real answers are validated against the same schema in
tests/ipvs/inside/test_daemon_e2e.py; here the checker's answer comes from a real
CheckerRunner (no kernel needed before start) and the VRRP one from a recorded shape.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

from fastha.cli.status import render
from fastha.config.loader import load
from fastha.runtime import alerts as alerts_mod
from fastha.runtime.check.runner import CheckerRunner
from fastha.runtime.dumpfiles import (
    check_data_file,
    checker_data_text,
    vrrp_data_text,
    vrrp_stats_text,
)
from fastha.runtime.logs import parse_facility

pytestmark = pytest.mark.unit

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "src/fastha/daemon/status.schema.json").read_text()
)

CONF = """\
global_defs {
    router_id unit
    notification_email {
        ops@example.com
    }
    smtp_server 127.0.0.1
    smtp_alert_checker true
}
vrrp_sync_group G {
    group {
        VI_2
    }
    smtp_alert
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    smtp_alert
    virtual_ipaddress {
        198.18.0.100/24
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        198.18.0.101/24
    }
}
virtual_server 198.18.1.1 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 198.18.2.1 80 {
        weight 3
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 198.18.2.2 80 {
        smtp_alert false
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
"""


def _config(tmp_path: Path) -> Any:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF)
    result = load(str(path), "unit")
    assert result.ok, [str(d) for d in result.diagnostics]
    return result.config


def _instance(name: str, state: int, prio: int) -> dict[str, Any]:
    """A VRRP instance entry as the VRRP child's StatusOutput.status_dict() gives it."""
    stats = dict.fromkeys(
        ("advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
         "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err",
         "invalid_authtype", "authtype_mismatch", "auth_failure", "pri_zero_rcvd",
         "pri_zero_sent"), 0)  # fmt: skip
    stats["advert_sent"] = 12
    names = {1: "BACKUP", 2: "MASTER"}
    return {
        "data": {
            "iname": name,
            "state": state,
            "vrid": 51,
            "base_priority": prio,
            "effective_priority": prio,
            "ifp_ifname": "eth0",
            "version": 2,
            "vips": ["198.18.0.100/24 dev eth0"],
            "adver_int": 1.0,
            "accept": 1,
            "nopreempt": False,
            "preempt_delay": 0,
            "garp_delay": 5.0,
            "garp_rep": 5,
            "auth_type": None,
        },
        "stats": stats,
        "name": name,
        "state": names[state],
        "wantstate": names[state],
        "priority": prio,
        "effective_priority": prio,
        "vrid": 51,
        "interface": "eth0",
        "master_address": "198.18.0.1",
        "master_priority": prio,
        "last_transition": 1700000000.25,
        "sync_group": None,
        "counters": {"advert_sent": 12, "vip_claimed": prio // 50, "drops": {"TTL": 3, "AUTH": 4}},
    }


def _status(check: dict[str, Any]) -> dict[str, Any]:
    timer = {"lateness_histogram": [1, 0], "bounds_ns": [1000], "fired": 3, "wakeups": 3,
             "spurious_wakeups": 0}  # fmt: skip
    return {
        "parent": {
            "pid": 1,
            "config_file": "/etc/keepalived/keepalived.conf",
            "started_at": 1.0,
            "uptime_s": 2.0,
            "reloads": 1,
            "refused_reloads": 1,
            "last_reload": None,
            "children": {
                "vrrp": {"pid": 2, "running": True, "restarts": 1, "last_exit_status": "SIGKILL"},
                "check": {"pid": 3, "running": True, "restarts": 0, "last_exit_status": None},
            },
        },
        "vrrp": {
            "pid": 2,
            "instances": [_instance("VI_1", 2, 150), _instance("VI_2", 1, 100)],
            "sync_groups": [{"name": "G", "state": "BACKUP", "members": ["VI_2"]}],
            "timer": timer,
        },
        "check": check,
    }


def test_checker_status_matches_the_schema_and_renders(tmp_path: Path) -> None:
    runner = CheckerRunner(_config(tmp_path))
    check = runner.status_dict()
    [vs] = check["virtual_servers"]
    assert vs["vs"] == "[198.18.1.1]:tcp:80"
    assert [(r["rs"], r["weight"], r["alive"], r["last_check"]) for r in vs["real_servers"]] == [
        ("[198.18.2.1]:tcp:80", 3, True, "pending"),
        ("[198.18.2.2]:tcp:80", 1, True, "pending"),
    ]
    status = json.loads(json.dumps(_status(check)))
    jsonschema.validate(status, SCHEMA)
    text = render(status)
    assert "VI_1      MASTER" in text and "198.18.0.1" in text, text
    header, vi_1, vi_2 = (ln.split() for ln in text.splitlines() if "PRIO 0" in ln or "VI_" in ln)
    assert header[-3:] == ["DROPPED", "VIP", "CLAIMED"], header
    assert vi_1[-2:] == ["7", "3"] and vi_2[-2:] == ["7", "2"], (vi_1, vi_2)  # drops, claims
    assert "[198.18.2.1]:tcp:80" in text and "pending" in text
    # A child that did not answer is valid too, and shown as such.
    status["check"] = {"error": "timed out"}
    jsonschema.validate(status, SCHEMA)
    assert "Checkers: timed out" in render(status)
    status["check"] = {"virtual_servers": "nope"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(status, SCHEMA)


def test_keepalived_data_and_stats_texts(tmp_path: Path) -> None:
    config = _config(tmp_path)
    status = _status(CheckerRunner(config).status_dict())
    data = vrrp_data_text(config, status["vrrp"])
    assert " Router ID = unit" in data
    assert " VRRP Instance = VI_1\n   VRRP Version = 2\n   State = MASTER\n" in data
    assert "   Last transition = 1700000000.250000 (" in data
    assert " VRRP Sync Group = G, BACKUP" in data
    stats = vrrp_stats_text(status["vrrp"])
    assert stats.startswith("VRRP Instance: VI_1\n  Advertisements:\n    Received: 0\n"
                            "    Sent: 12\n  Became master: 0\n")  # fmt: skip
    assert stats.count("VRRP Instance:") == 2
    check = checker_data_text(config, status["check"])
    assert " VS = [198.18.1.1]:tcp:80" in check and "   RS = [198.18.2.2]:tcp:80" in check
    assert check_data_file("/tmp/keepalived.data") == "/tmp/keepalived_check.data"


class FakeSmtp:
    def __init__(self) -> None:
        self.settings = object()
        self.mails: list[tuple[str, ...]] = []
        self.sent = self.failed = 0

    def vrrp(self, name: str, state: str) -> None:
        self.mails.append(("vrrp", name, state))

    def vrrp_group(self, name: str, state: str) -> None:
        self.mails.append(("group", name, state))

    def real_server(self, rs: str, vs: str, up: bool, body: str | None = None) -> None:
        self.mails.append(("rs", rs, vs, "UP" if up else "DOWN"))

    def virtual_server(self, vs: str, subject: str, body: str) -> None:
        self.mails.append(("vs", vs, subject))


def test_alert_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path)
    fake = FakeSmtp()
    monkeypatch.setattr(alerts_mod.SmtpAlerts, "from_config", staticmethod(lambda g: fake))
    v = alerts_mod.VrrpAlerts(config)
    assert v.instances == {"VI_1": True, "VI_2": False} and v.groups == {"G": True}
    state = SimpleNamespace
    group = SimpleNamespace(name="G", state=state(name="BACKUP"))
    v.transition(SimpleNamespace(name="VI_1", group=None), state(name="MASTER"))
    v.transition(SimpleNamespace(name="VI_2", group=group), state(name="BACKUP"))
    v.transition(SimpleNamespace(name="VI_2", group=group), state(name="BACKUP"))
    v.transition(SimpleNamespace(name="VI_1", group=None), state(name="INIT"))
    assert fake.mails == [("vrrp", "VI_1", "MASTER"), ("group", "G", "BACKUP")]

    fake.mails.clear()
    runner = CheckerRunner(config)
    c = runner.alerts
    assert c.enabled and c.rs_flags == [[True, False]]
    vs = runner.health.vss[0]
    # The first evaluation (Health.start): keepalived's "Starting with quorum up" mail.
    c.observe(runner.health, {0})
    assert fake.mails == [("vs", "[198.18.1.1]:tcp:80", "UP")]
    fake.mails.clear()
    vs.servers[0].alive = False
    vs.servers[1].alive = False
    vs.quorum_up = False
    c.observe(runner.health, {0})
    assert fake.mails == [
        ("rs", "[198.18.2.1]:tcp:80", "[198.18.1.1]:tcp:80", "DOWN"),
        ("vs", "[198.18.1.1]:tcp:80", "DOWN"),
    ]
    fake.mails.clear()
    c.observe(runner.health, set())  # nothing new: nothing sent
    assert fake.mails == []


def test_facilities() -> None:
    assert parse_facility("0") == 16 and parse_facility("local7") == 23
    assert parse_facility(None) == 3 and parse_facility("daemon") == 3
    with pytest.raises(ValueError):
        parse_facility("8")


def _daemon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastha.cli.main", "daemon", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip


@pytest.mark.parametrize(
    ("flag", "word"),
    [("-x", "--snmp"), ("-m", "--core-dump"), ("-g", "--log-file"), ("-a", "--address")],
)
def test_unsupported_keepalived_flags_are_refused_by_name(flag: str, word: str) -> None:
    r = _daemon(flag, "-f", "/nonexistent")
    assert r.returncode == 1
    assert f"keepalived's {flag}/{word}" in r.stderr and "not supported by fastha" in r.stderr


def test_bad_values_are_refused(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n    router_id x\n}\n")
    assert "-S:" in _daemon("-S", "9", "-f", str(conf)).stderr
    # keepalived reads -u with strtoll(base 0): 08 is a bad octal number, 0x1000 too big.
    assert "--umask" in _daemon("-u", "08", "-f", str(conf)).stderr
    assert "--umask" in _daemon("-u", "0x1000", "-f", str(conf)).stderr
    assert "--metrics" in _daemon("--metrics", "nope", "-f", str(conf)).stderr
    r = _daemon("--no-supervise", "-f", str(conf))
    assert r.returncode == 1 and "give -P or -C" in r.stderr
    v = _daemon("-v")
    assert v.returncode == 0 and v.stderr.startswith("fastha v")
