"""BFD as the VRRP side uses it (issue 18): ``track_bfd`` with a weight (priority) and
without one (FAULT), keepalived 2.2.7's vrrp_track.c / vrrp_bfd.c semantics. Each node
runs a ``bfd_instance`` towards the other (the BFD child runs too: the harness drops
-P for a config with one); node a's instances track it. BFD alone is cut at a (nft
drops UDP 3784 both ways in a's namespace, VRRP still flows) and restored. Both ways:
with a's input cut only, b (hearing a's Down) sat in Init and timed out over and over,
and keepalived 2.2.7 then re-established the session with a flap now and then.

The mixed runs put keepalived's BFD and fastha's BFD on the two ends of one session.

Registered in scenarios.SCENARIOS (imported at the end of scenarios.py).
"""

from __future__ import annotations

from tests.conformance.harness import Scenario, global_defs, sh, start, stop
from tests.conformance.scenarios import instance, scenario

BFD = """
bfd_instance peer {
    neighbor_ip <<peers.ip4>>
    source_ip <<me.ip4>>
    min_rx 1000
    min_tx 1000
    multiplier 3
}
"""
# BFD at idle_tx's pace (1 s, keepalived's minimum): no Poll sequence when a session
# comes Up. At 100 ms x 5, keepalived 2.2.7 <-> keepalived 2.2.7 re-established a
# session with a flap now and then: the peer still in Init timed out on the 100 ms x 5
# the other side announced while it was still sending at idle_tx (1 s) in its Poll.
# The cut and the restore settle over a longer quiet period than a detection time (3 s).
QUIET = 5.0
NOTIFY = 'notify "<<notify>> {}"\ngarp_master_delay 1'
WEIGHT = "track_bfd {\n    peer weight -60\n}"
FAULT = "track_bfd {\n    peer\n}"
CUT = "add table inet bfdcut; add chain inet bfdcut in { type filter hook input priority 0; }; add rule inet bfdcut in udp dport 3784 drop; add chain inet bfdcut out { type filter hook output priority 0; }; add rule inet bfdcut out udp dport 3784 drop"  # fmt: skip


# The BFD child's scheduling and memory settings, on a (as scheduling_knobs sets the
# VRRP child's; every CPU of the 2-core host in the affinity): both daemons accept them
# and their BFD runs as usual.
KNOBS = ("bfd_priority -5", "bfd_no_swap", "bfd_rt_priority 1", "bfd_rlimit_rttime 100000",
         "bfd_rlimit_rtime 100000", "bfd_cpu_affinity 0 1")  # fmt: skip


GROUP = """
vrrp_sync_group G {
    group {
        VI_3
    }
    track_bfd {
        peer
    }
}
"""


def _node(prio: int, prio2: int, track: bool) -> str:
    """VI_1 at ``prio`` and VI_2 at ``prio2``: all four priorities differ, so each
    advert kind (sender, destination, priority) is one instance's. The tracking node
    gets the BFD child's scheduling knobs."""
    conf = global_defs("vrrp_version 3", *(KNOBS if track else ())) + BFD
    for name, vrid, vip, p, extra in (("VI_1", 51, "198.18.0.100/24", prio, WEIGHT),
                                      ("VI_2", 52, "198.18.0.101/24", prio2, FAULT),
                                      ("VI_3", 53, "198.18.0.102/24", prio2 - 10, "")):  # fmt: skip
        tracked = f"{NOTIFY.format(name)}\n{extra if track else ''}"
        conf += instance(name=name, vrid=vrid, vips=vip, priority=p, advert_int=0.5,
                         extra=tracked)  # fmt: skip
    return conf + (GROUP if track else "")


@scenario
def track_bfd_weight_and_fault() -> Scenario:
    """a tracks its BFD session to b: VI_1 (150, b 100) with weight -60, VI_2 (140, b
    95) without a weight, VI_3 (130, b 85) through its sync group G (a group of one:
    keepalived warns, and FAULTs the group). a starts with BFD cut (its session cannot come Up, whichever
    implementation starts faster): VI_1 at 90 (b master), VI_2 FAULT. BFD restored: a
    takes both over; cut again: back to 90 / FAULT, b takes both; a stopped."""
    uncut = "delete table inet bfdcut"
    return Scenario(
        "track_bfd_weight_and_fault",
        {"a": _node(150, 140, track=True), "b": _node(100, 95, track=False)},
        (
            sh("a", "nft", CUT, settle=0.5),
            start("b", "a"),
            sh("a", "nft", uncut, settle=QUIET),
            sh("a", "nft", CUT, settle=QUIET),
            stop("a"),
        ),
        advert_int=0.5,
        vips=("198.18.0.100", "198.18.0.101", "198.18.0.102"),
    )
