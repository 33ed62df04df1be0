"""notify_fifo_script on reload, under keepalived 2.2.7 and fastha (the same test body):
keepalived's VRRP child closes its notify FIFO on SIGHUP ("we don't know if it will be
the same after a reload", vrrp_daemon.c reload_vrrp_thread) and opens it again from the
new configuration, running its notify_fifo_script anew (lib/notify.c fifo_open): a
second copy of the script starts (keepalived leaves the first one to itself).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.support.netns import Topology
from tests.support.prereq import need_tool
from tests.support.vrrp_peer import Peer

pytestmark = pytest.mark.system

CONF = """\
global_defs {{
    router_id FIFO
    enable_script_security
    script_user root
    vrrp_notify_fifo {fifo}
    vrrp_notify_fifo_script {script}
}}
vrrp_instance VI_1 {{
    state BACKUP
    interface {ifname}
    virtual_router_id 73
    priority 100
    advert_int 1
    virtual_ipaddress {{
        198.18.73.10/24
    }}
}}
"""


@pytest.mark.parametrize("impl", ["keepalived", "fastha"])
def test_the_fifo_script_restarts_on_reload(topo: Topology, tmp_path: Path, impl: str) -> None:
    need_tool(impl if impl == "keepalived" else "ip")
    node = topo.node("a", ipv4="198.18.73.2/24")
    fifo, record = tmp_path / "notify.fifo", tmp_path / "runs.log"
    script = tmp_path / "fifo.sh"
    script.write_text(f'#!/bin/sh\necho start >> {record}\ncat {fifo} > /dev/null\n'
                      f'echo end >> {record}\n')  # fmt: skip
    script.chmod(0o755)
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF.format(fifo=fifo, script=script, ifname=node.ifname))
    peer = Peer(topo, node, impl, conf, tmp_path / "run").start()  # type: ignore[arg-type]

    def runs() -> list[str]:
        return record.read_text().split() if record.exists() else []

    try:
        peer.wait("running its fifo script", lambda: runs() == ["start"], seen=runs)
        peer.wait("master", lambda: peer.state() == "MASTER")
        assert peer.proc is not None
        os.kill(peer.proc.pid, signal.SIGHUP)
        peer.wait("restarting its fifo script", lambda: runs().count("start") == 2, seen=runs)
    finally:
        peer.stop()
