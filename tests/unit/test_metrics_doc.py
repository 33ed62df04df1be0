"""docs/MONITORING.md's table of every metric and what the exposition writes agree both
ways: every series rendered from a full status is in the table, every series in the
table is rendered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fastha.daemon.metrics import render
from fastha.runtime.check.scheduler import ProbeDurations

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "MONITORING.md"
STATS = ("advert_rcvd", "advert_sent", "become_master", "release_master", "packet_len_err",
         "advert_interval_err", "ip_ttl_err", "invalid_type_rcvd", "addr_list_err",
         "invalid_authtype", "authtype_mismatch", "auth_failure", "pri_zero_rcvd",
         "pri_zero_sent")  # fmt: skip


def full_status() -> dict[str, object]:
    durations = ProbeDurations()
    durations.observe("TCP_CHECK", True, 200_000)
    ipvs_stats = {"conns": 3, "inpkts": 30, "outpkts": 20, "inbytes": 3000, "outbytes": 9000}
    return {
        "parent": {"pid": 1, "started_at": 1.0, "uptime_s": 2.0, "reloads": 0,
                   "refused_reloads": 0,
                   "children": {"vrrp": {"pid": 2, "running": True, "restarts": 0},
                                "check": {"pid": 3, "running": True, "restarts": 0},
                                "bfd": {"pid": 4, "running": True, "restarts": 0}}},
        "metrics_server": {"renders": 1, "refused": 0, "evicted": 0, "timed_out": 0},
        "vrrp": {
            "instances": [{
                "data": {"iname": "VI_1", "ifp_ifname": "eth0", "vrid": 51, "state": 2,
                         "effective_priority": 100, "base_priority": 100},
                "stats": dict.fromkeys(STATS, 1),
                "counters": {"vip_claimed": 0, "drops": {"TTL": 1}},
            }],
            "script_runs": {"chk": {"succeeded": 3}},
            "timer": {"lateness_histogram": [1, 2, 0], "bounds_ns": [1000, 2000]},
        },
        "check": {
            "virtual_servers": [{
                "vs": "[10.0.0.1]:tcp:80", "quorum_up": True,
                "real_servers": [{"rs": "[10.0.1.1]:80", "alive": True, "weight": 1,
                                  "checks": [{"check": "TCP_CHECK [10.0.1.1]:80",
                                              "state": "UP"}]}],
            }],
            "counters": {"probes_completed": 3, "probes_failed": 1},
            "probe_durations": durations.as_dict(),
            "ipvs": [{"vs": "[10.0.0.1]:tcp:80", "stats": ipvs_stats,
                      "real_servers": [{"rs": "[10.0.1.1]:80",
                                        "stats": {**ipvs_stats, "active_conns": 1,
                                                  "inact_conns": 0, "persist_conns": 0}}]}],
            "timer": {"lateness_histogram": [1], "bounds_ns": []},
        },
        "bfd": {
            "sessions": [{"name": "P", "neighbor": "10.0.0.2", "state": "Up",
                          "tx_interval_us": 10_000, "detect_time_us": 30_000, "sent": 5,
                          "send_errors": 0, "received": 4, "dropped": {"TTL": 1}}],
            "dropped": {"NO_SESSION": 2},
            "timer": {"lateness_histogram": [1], "bounds_ns": []},
        },
    }  # fmt: skip


def rendered() -> set[str]:
    names = set()
    for fam in text_string_to_metric_families(render(full_status())):
        for s in fam.samples:
            names.add(re.sub(r"_(bucket|count|sum)$", "", s.name) if fam.type == "histogram"
                      else s.name)  # fmt: skip
    return names


def documented() -> set[str]:
    text = DOC.read_text()
    table = text[text.index("### Every metric") :]
    names: set[str] = set()
    for row in table.splitlines():
        if not row.startswith("| `"):
            continue
        cell = row.split("|")[1]
        for name in re.findall(r"`([a-z_<>*]+)`", cell):
            if name == "fastha_vrrp_<stat>_total":
                names |= {f"fastha_vrrp_{s}_total" for s in STATS}
            elif "*" not in name:
                names.add(name)
    return names


def test_table_and_exposition_agree() -> None:
    got, doc = rendered(), documented()
    assert len(doc) > 40
    assert got - doc == set(), "rendered but not in docs/MONITORING.md"
    assert doc - got == set(), "in docs/MONITORING.md but never rendered"
