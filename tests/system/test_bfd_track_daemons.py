"""track_bfd and BFD for real, the same keepalived.conf under keepalived 2.2.7 and under
fastha: node `a` runs the daemon under test (VRRP master, `track_bfd { p weight -50 }`,
its BFD process or child talking to `p`), node `p` runs keepalived's BFD alone (a file
with only a bfd_instance towards `a`). The priority in a's adverts is read on the wire
(tshark): 50 while the session is Down (keepalived: a tracked bfd starts Down), 100
once it is Up, 50 again after `p` is killed -9. Both daemons must show the same, which
proves the test tells a working track_bfd from a broken one.

Intervals are loose (20 ms x 5) so a busy CI host does not flap the session; nothing
here measures time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.netns import Capture, Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_peer import IMPLS, Impl, Peer, fastha_binary

pytestmark = [pytest.mark.system, pytest.mark.keepalived]

A, P = "198.18.0.11", "198.18.0.12"

TRACKER = """
global_defs {{
    vrrp_version 3
}}
bfd_instance p {{
    neighbor_ip {P}
    min_rx 20
    min_tx 20
    multiplier 5
}}
vrrp_instance VI_1 {{
    interface {ifname}
    state MASTER
    virtual_router_id 51
    priority 100
    advert_int 0.1
    virtual_ipaddress {{
        198.18.0.100/24
    }}
    track_bfd {{
        p weight -50
    }}
}}
"""
BFD_ONLY = f"""
bfd_instance a {{
    neighbor_ip {A}
    min_rx 20
    min_tx 20
    multiplier 5
}}
"""


def cmd(impl: Impl, conf: Path, run: Path) -> list[str]:
    """Foreground, VRRP (and BFD) only, every pid file in `run` (never the system's)."""
    if impl == "keepalived":
        exe = need_tool("keepalived")
        pids = ["-p", "keepalived.pid", "-r", "vrrp.pid", "-c", "checkers.pid", "-b", "bfd.pid"]
    else:
        exe = fastha_binary() or need_tool("fastha")
        pids = ["-p", "fastha.pid", "-r", "vrrp.pid", "-b", "bfd.pid"]
        exe = f"{exe} daemon"
    args = [p if p.startswith("-") else str(run / p) for p in pids]
    return [*exe.split(), "-n", "-l", "-D", "-P", "-f", str(conf), *args]


class Daemon(Peer):
    def start(self) -> Daemon:
        self.launch(cmd(self.impl, self.conf, self.workdir))
        return self


def wait_advert(cap: Capture, prio: int, after: int, timeout: float = 20) -> int:
    """The frame number of a's first advert with `prio` after frame `after`."""
    end = time.monotonic() + timeout
    filt = f"vrrp && ip.src == {A} && vrrp.prio == {prio} && frame.number > {after}"
    while time.monotonic() < end:
        rows = cap.packets(filt, fields=("frame.number",))
        if rows:
            return int(rows[0]["frame.number"])
        time.sleep(0.3)
    seen = cap.packets(f"vrrp && frame.number > {after}", fields=("ip.src", "vrrp.prio"))
    raise AssertionError(f"no advert from {A} with priority {prio}; saw {seen[-5:]}")


@pytest.mark.parametrize("impl", IMPLS)
def test_track_bfd_weight_follows_a_real_session(
    topo: Topology, tmp_path: Path, impl: Impl
) -> None:
    need_tool("tshark")
    a = topo.node("a", ipv4=f"{A}/24")
    p = topo.node("p", ipv4=f"{P}/24")
    topo.node("obs", ipv4="198.18.0.2/24")
    conf_a = tmp_path / "a.conf"
    conf_a.write_text(TRACKER.format(P=P, ifname=a.ifname))
    conf_p = tmp_path / "p.conf"
    conf_p.write_text(BFD_ONLY)
    tracker = Daemon(topo, a, impl, conf_a, tmp_path / "a")
    peer = Daemon(topo, p, "keepalived", conf_p, tmp_path / "p")
    with topo.capture("obs", "vrrp") as cap:
        try:
            tracker.start()
            n = wait_advert(cap, 50, 0)  # the session is Down until p answers
            peer.start()
            n = wait_advert(cap, 100, n)
            peer.kill()
            wait_advert(cap, 50, n)
        finally:
            for d in (tracker, peer):
                if d.running:
                    d.kill()
    log = tracker.log()
    assert "VRRP_Instance(VI_1) Tracked BFD instance p is UP" in log, log[-3000:]
    assert "VRRP_Instance(VI_1) Tracked BFD instance p is DOWN" in log, log[-3000:]
