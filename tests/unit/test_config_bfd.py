"""bfd_instance, track_bfd and BFD_CHECK configurations, each checked by the real
keepalived 2.2.7 (`keepalived -t`) and by fastha: the same exit code, and complaints
at the same lines (keepalived reads `bfd_instance` in three processes, each with its
own rules: bfd/bfd_parser.c, vrrp/vrrp_track.c, check/check_bfd.c)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import keepalived
from tests.support.prereq import need_tool

from fastha.config.loader import load

pytestmark = [pytest.mark.unit, pytest.mark.keepalived]

VI = """
vrrp_instance VI_1 {{
    interface eth0
    virtual_router_id 51
    virtual_ipaddress {{
        198.18.0.100/24
    }}
    track_bfd {{
{track}
    }}
}}
"""
VS = """
virtual_server 198.18.0.100 80 {{
    real_server 198.18.0.20 80 {{
        BFD_CHECK {{
{check}
        }}
    }}
}}
"""


def bfd(name: str, *lines: str) -> str:
    return f"bfd_instance {name} {{\n" + "".join(f"    {x}\n" for x in lines) + "}\n"


GOOD = bfd(
    "b1",
    "neighbor_ip 198.18.0.2",
    "source_ip 198.18.0.1",
    "min_rx 2.5",
    "min_tx 1",
    "idle_tx 2000",
    "multiplier 3",
    "passive",
    "hoplimit 200",
    "max_hops -1",
    "weight -10 reverse",
)

CASES: dict[str, str] = {
    "good": GOOD + VI.format(track="b1\nb1 weight 5 noreverse") + VS.format(check="name b1"),
    "v6_neighbour": bfd("b6", "neighbour_ip 2001:db8::2", "source_ip 2001:db8::1")
    + VI.format(track="b6 weight -20 reverse"),
    "ranges": bfd(
        "b1",
        "neighbor_ip 198.18.0.2",
        "min_rx 0.5",
        "min_tx 4294968",
        "idle_tx 999",
        "multiplier 256",
        "ttl 0",
        "max_hops 256",
        "weight 254",
    )
    + VI.format(track="b1"),
    "decimals_and_junk": bfd(
        "b1", "neighbor_ip 198.18.0.2", "min_rx 1.2345", "min_tx -3", "idle_tx 1x"
    ),
    "unknown_keywords": bfd("b1", "neighbor_ip 198.18.0.2", "multihop", "bogus 1"),
    "weight_option": bfd("b1", "neighbor_ip 198.18.0.2", "weight 10 sideways")
    + VI.format(track="b1"),
    "max_hops_over_ttl": bfd("b1", "neighbor_ip 198.18.0.2", "ttl 5", "max_hops 9"),
    "disabled": bfd("b1", "min_rx 10")
    + bfd("b2", "neighbor_ip 198.18.0.2", "source_ip 2001:db8::1")
    + bfd("b3", "neighbor_ip 198.18.0.x"),
    "duplicates": bfd("b1", "neighbor_ip 198.18.0.2", "source_ip 198.18.0.1")
    + bfd("b1", "neighbor_ip 198.18.0.3")
    + bfd("b4", "neighbor_ip 198.18.0.2")
    + bfd("x" * 32, "neighbor_ip 198.18.0.4")
    + VI.format(track="b1"),
    "track_lines": bfd("b1", "neighbor_ip 198.18.0.2")
    + bfd("b2", "neighbor_ip 198.18.0.3")
    + bfd("b3", "neighbor_ip 198.18.0.4")
    + VI.format(
        track="b1\nb1 weight 3\nb2 weight\nb3 foo\nnosuch\nb2 weight 4 bar\nb3 weight -5 reverse"
    ),
    "routing": bfd("bv", "neighbor_ip 198.18.0.2", "vrrp")
    + bfd("bc", "neighbor_ip 198.18.0.3", "checker")
    + VI.format(track="bc")
    + VS.format(check="name bv"),
    "sync_group_weights": bfd("b1", "neighbor_ip 198.18.0.2", "weight 7")
    + bfd("b2", "neighbor_ip 198.18.0.3")
    + "vrrp_sync_group G {\n group {\n  VI_1\n  VI_2\n }\n track_bfd {\n  b2 weight 4\n }\n}\n"
    + VI.format(track="b1\nb2 weight 0")
    + VI.format(track="b2").replace("VI_1", "VI_2").replace("51", "52"),
    "bfd_check_names": bfd("b1", "neighbor_ip 198.18.0.2")
    + VS.format(check="name nosuch")
    + VS.format(check="").replace("198.18.0.20", "198.18.0.21")
    + VS.format(check="name b1\nalpha").replace("198.18.0.20", "198.18.0.22"),
}


# Where fastha complains at keepalived's lines too. (Not yet the others: keepalived
# reports a block's end-handler problems at its closing brace, fastha at its opening.)
SAME_LINES = {"ranges", "decimals_and_junk", "unknown_keywords", "weight_option", "track_lines"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_verdict_and_lines_as_keepalived(tmp_path: Path, case: str) -> None:
    path = tmp_path / "keepalived.conf"
    path.write_text(CASES[case])
    ka = keepalived.check(path, binary=need_tool("keepalived"))
    ours = load(path)
    report = "\n".join(str(d) for d in ours.diagnostics)
    theirs = "\n".join(ka.messages)
    assert int(ours.exit_code) == ka.returncode, f"keepalived:\n{theirs}\n--- fastha:\n{report}"
    if case in SAME_LINES:
        ka_lines = {line for _, line, _ in ka.located()}
        our_lines = {d.where.line for d in ours.diagnostics if d.where is not None}
        assert our_lines == ka_lines, f"keepalived:\n{theirs}\n--- fastha:\n{report}"


def test_fastha_extension_keyword(tmp_path: Path) -> None:
    """`fastha_bfd_master_down` is fastha's (docs/MIGRATING.md): keepalived calls it an
    unknown keyword (exit 5) and runs on without it; fastha reads it, and says when the
    bfd it names is not one the VRRP side knows."""
    text = bfd("b1", "neighbor_ip 198.18.0.2") + VI.format(track="b1").replace(
        "    track_bfd", "    fastha_bfd_master_down b1\n    track_bfd"
    )
    path = tmp_path / "keepalived.conf"
    path.write_text(text)
    ka = keepalived.check(path, binary=need_tool("keepalived"))
    assert ka.returncode == 5
    assert [m for _, _, m in ka.located()] == ["Unknown keyword 'fastha_bfd_master_down'"]
    ours = load(path)
    assert ours.diagnostics == () and int(ours.exit_code) == 0
    assert ours.config is not None
    assert ours.config.vrrp_instances[0].fastha_bfd_master_down == "b1"
    path.write_text(text.replace("fastha_bfd_master_down b1", "fastha_bfd_master_down b9"))
    ours = load(path)
    assert [d.message for d in ours.diagnostics] == [
        "(VI_1) fastha_bfd_master_down b9 not found, ignoring..."
    ]
