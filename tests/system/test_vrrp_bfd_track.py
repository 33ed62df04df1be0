"""track_bfd and fastha_bfd_master_down in a real VRRP child, fed BfdStateChange
records through a real pipe (`drivers/bfd_channel`, as the parent hands it down): the
priority in its adverts and its FAULT are read on the wire, decoded by tshark.

No BFD child is needed: the test writes the records the BFD owner would write. The
other side of each check is keepalived 2.2.7's vrrp_handle_bfd_event: a tracked bfd
is Down until its first Up; a weight moves the priority by |weight| (sign chosen by
`reverse`); weight 0 is FAULT while Down.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen
from typing import Any

import pytest

from fastha.bfd.events import BfdStateChange
from fastha.drivers import bfd_channel
from tests.support.netns import PYTHON, Capture, Topology
from tests.support.prereq import need_tool

pytestmark = pytest.mark.system

CONF = """
global_defs {{
    vrrp_version 3
}}
bfd_instance b1 {{
    neighbor_ip 198.18.0.12
}}
vrrp_instance VI_1 {{
    interface {ifname}
    state {state}
    virtual_router_id 51
    priority {priority}
    advert_int 0.05
    virtual_ipaddress {{
        198.18.0.100/24
    }}
{inside}
}}
"""


@contextmanager
def vrrp_child(topo: Topology, node: Any, conf: str, tmp: Path) -> Iterator[int]:
    """The VRRP child alone (`python -I -m fastha.runtime.child vrrp`) in `node`'s
    namespace, reading the pipe's read end; yields the write end."""
    path = tmp / f"{node.name}.conf"
    path.write_text(conf)
    r, w = os.pipe()
    env = dict(os.environ, **{bfd_channel.ENV_READ: str(r)})
    log = open(tmp / f"{node.name}.log", "w")  # noqa: SIM115
    proc: Popen[Any] = topo.popen(
        node,
        PYTHON,
        "-I",
        "-m",
        "fastha.runtime.child",
        "vrrp",
        "-f",
        str(path),
        "-l",
        "-D",
        env=env,
        pass_fds=(r,),
        stdout=log,
        stderr=log,
    )
    os.close(r)
    try:
        yield w
    finally:
        os.close(w)
        proc.terminate()
        try:
            proc.wait(10)
        except Exception:
            proc.kill()
            proc.wait()
        log.close()


def send(w: int, up: bool) -> None:
    assert bfd_channel.send(w, BfdStateChange("b1", up, time.monotonic_ns()))


def last_frame(cap: Capture) -> int:
    rows = cap.packets("vrrp", fields=("frame.number",))
    return int(rows[-1]["frame.number"]) if rows else 0


def wait_advert(cap: Capture, src: str, prio: int, after: int, timeout: float = 10) -> int:
    """The frame number of the first advert from `src` with `prio` after frame `after`."""
    end = time.monotonic() + timeout
    filt = f"vrrp && ip.src == {src} && vrrp.prio == {prio} && frame.number > {after}"
    while time.monotonic() < end:
        rows = cap.packets(filt, fields=("frame.number",))
        if rows:
            return int(rows[0]["frame.number"])
        time.sleep(0.2)
    seen = cap.packets(f"vrrp && frame.number > {after}", fields=("ip.src", "vrrp.prio"))
    raise AssertionError(f"no advert from {src} with priority {prio}; saw {seen[-5:]}")


def quiet(cap: Capture, src: str, after: int, seconds: float = 0.5) -> bool:
    """No advert from `src` in `seconds` after frame `after` (a FAULT instance is mute)."""
    time.sleep(seconds)
    return not cap.packets(f"vrrp && ip.src == {src} && frame.number > {after}")


@pytest.mark.parametrize(
    ("line", "down", "up"),
    [
        ("b1 weight -30", 70, 100),  # keepalived: a negative weight counts while Down
        ("b1 weight 20", 100, 120),  # ... a positive one while Up
        ("b1 weight 20 reverse", 100, 80),
    ],
)
def test_weighted_track_bfd_moves_the_advertised_priority(
    topo: Topology, tmp_path: Path, line: str, down: int, up: int
) -> None:
    need_tool("tshark")
    a = topo.node("a", ipv4="198.18.0.11/24")
    topo.node("obs", ipv4="198.18.0.2/24")
    conf = CONF.format(
        ifname=a.ifname,
        state="MASTER",
        priority=100,
        inside=f"    track_bfd {{\n        {line}\n    }}",
    )
    with topo.capture("obs", "vrrp") as cap, vrrp_child(topo, a, conf, tmp_path) as w:
        n = wait_advert(cap, a.ipv4, down, 0, timeout=20)  # Down until the first Up
        send(w, True)
        n = wait_advert(cap, a.ipv4, up, n)
        send(w, True)  # the same state again changes nothing
        send(w, False)
        n = wait_advert(cap, a.ipv4, down, n)
    log = (tmp_path / "a.log").read_text()
    assert "VRRP_Instance(VI_1) Tracked BFD instance b1 is UP" in log
    assert "VRRP_Instance(VI_1) Tracked BFD instance b1 is DOWN" in log


def test_unweighted_track_bfd_is_fault_while_down(topo: Topology, tmp_path: Path) -> None:
    need_tool("tshark")
    a = topo.node("a", ipv4="198.18.0.11/24")
    topo.node("obs", ipv4="198.18.0.2/24")
    conf = CONF.format(
        ifname=a.ifname, state="MASTER", priority=100, inside="    track_bfd {\n        b1\n    }"
    )
    with topo.capture("obs", "vrrp") as cap, vrrp_child(topo, a, conf, tmp_path) as w:
        time.sleep(1.0)  # started in FAULT: never an advert
        assert quiet(cap, a.ipv4, 0)
        send(w, True)
        n = wait_advert(cap, a.ipv4, 100, 0)
        send(w, False)
        n = wait_advert(cap, a.ipv4, 0, n)  # a master leaving for FAULT says priority 0
        assert quiet(cap, a.ipv4, n, 1.0)
        send(w, True)
        wait_advert(cap, a.ipv4, 100, last_frame(cap))


def test_bfd_master_down_takes_over_before_master_down_timer(
    topo: Topology, tmp_path: Path
) -> None:
    """fastha_bfd_master_down: the master (a second VRRP child) keeps advertising every
    10 s, so nothing but the BFD Down record can make the backup b send an advert."""
    need_tool("tshark")
    m = topo.node("m", ipv4="198.18.0.12/24")
    b = topo.node("b", ipv4="198.18.0.11/24")
    topo.node("obs", ipv4="198.18.0.2/24")
    # The address owner (255): master at once, and it stays master.
    slow = CONF.format(ifname=m.ifname, state="MASTER", priority=255, inside="").replace(
        "advert_int 0.05", "advert_int 10"
    )
    backup = CONF.format(
        ifname=b.ifname,
        state="BACKUP",
        priority=100,
        inside="    fastha_bfd_master_down b1",
    ).replace("advert_int 0.05", "advert_int 10")
    with (
        topo.capture("obs", "vrrp") as cap,
        vrrp_child(topo, m, slow, tmp_path),
        vrrp_child(topo, b, backup, tmp_path) as w,
    ):
        n = wait_advert(cap, m.ipv4, 255, 0, timeout=20)
        time.sleep(0.5)
        assert not cap.packets(f"vrrp && ip.src == {b.ipv4}")  # b is BACKUP
        send(w, True)  # an Up means nothing to the extension
        assert quiet(cap, b.ipv4, n, 0.5)
        send(w, False)
        # Without the extension b would wait for 3 x 10 s + skew of the master's
        # silence, and the master is not even silent: only the BFD Down can do this.
        wait_advert(cap, b.ipv4, 100, n, timeout=5)
