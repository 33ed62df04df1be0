"""The driver against a real ip_vs; ``ipvsadm`` is the independent check."""

from __future__ import annotations

import re
import socket
import subprocess
from dataclasses import replace

from fastha.ipvs.model import (
    Dest,
    Fwd,
    Service,
    SvcFlags,
    SyncDaemon,
    Timeouts,
    TunFlags,  # fmt: skip
    TunType,
)
from fastha.ipvs.planner import plan
from tests.ipvs.inside.conftest import ipvsadm

UDP, SCTP = socket.IPPROTO_UDP, 132

EVERY_KIND = [
    Service("10.0.0.1", 80, scheduler="wlc", dests=(
        Dest("192.168.1.1", 8080, weight=3, fwd=Fwd.MASQ, u_threshold=100, l_threshold=10),
        Dest("192.168.1.2", 8080, weight=0, fwd=Fwd.MASQ))),
    Service("10.0.0.2", 53, protocol=UDP, scheduler="rr", dests=(
        Dest("192.168.1.3", 53, weight=1, fwd=Fwd.ROUTE),)),
    Service("10.0.0.3", 443, scheduler="sh", flags=SvcFlags.SCHED1 | SvcFlags.SCHED2,
            timeout=300, netmask=24, dests=(
        Dest("192.168.1.4", 443, fwd=Fwd.TUNNEL, tun_type=TunType.GUE, tun_port=6080,
             tun_flags=TunFlags.CSUM),
        Dest("192.168.1.5", 443, fwd=Fwd.TUNNEL, tun_type=TunType.GRE,
             tun_flags=TunFlags.REMCSUM),
        Dest("192.168.1.6", 443, fwd=Fwd.TUNNEL))),
    Service(fwmark=7, scheduler="mh", flags=SvcFlags.SCHED1, dests=(
        Dest("192.168.1.7", 0, weight=2, fwd=Fwd.ROUTE),)),
    Service("2001:db8::1", 80, scheduler="lc", timeout=60, netmask=64, dests=(
        Dest("2001:db8::10", 80, weight=4, fwd=Fwd.MASQ),)),
    Service("10.0.0.4", 9, protocol=SCTP, scheduler="wrr", flags=SvcFlags.ONEPACKET, dests=(
        Dest("192.168.1.8", 9),)),
    Service(fwmark=8, af=socket.AF_INET6, scheduler="sed"),
]  # fmt: skip

EXPECTED_LN = """\
TCP  10.0.0.1:80 wlc
  -> 192.168.1.1:8080             Masq    3      0          0
  -> 192.168.1.2:8080             Masq    0      0          0
TCP  10.0.0.3:443 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0
  -> 192.168.1.4:443              Tunnel  1      0          0
  -> 192.168.1.5:443              Tunnel  1      0          0
  -> 192.168.1.6:443              Tunnel  1      0          0
UDP  10.0.0.2:53 rr
  -> 192.168.1.3:53               Route   1      0          0
SCTP 10.0.0.4:9 wrr ops
  -> 192.168.1.8:9                Masq    1      0          0
TCP  [2001:db8::1]:80 lc persistent 60 mask 64
  -> [2001:db8::10]:80            Masq    4      0          0
FWM  7 mh (mh-fallback)
  -> 192.168.1.7:0                Route   2      0          0
FWM  8 IPv6 sed
"""

EXPECTED_SAVE = """\
-A -t 10.0.0.1:80 -s wlc
-a -t 10.0.0.1:80 -r 192.168.1.1:8080 -m -w 3
-a -t 10.0.0.1:80 -r 192.168.1.2:8080 -m -w 0
-A -t 10.0.0.3:443 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port
-a -t 10.0.0.3:443 -r 192.168.1.4:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-a -t 10.0.0.3:443 -r 192.168.1.5:443 -i -w 1 --tun-type gre --tun-remcsum
-a -t 10.0.0.3:443 -r 192.168.1.6:443 -i -w 1 --tun-type ipip
-A -u 10.0.0.2:53 -s rr
-a -u 10.0.0.2:53 -r 192.168.1.3:53 -g -w 1
-A --sctp-service 10.0.0.4:9 -s wrr -o
-a --sctp-service 10.0.0.4:9 -r 192.168.1.8:9 -m -w 1
-A -t [2001:db8::1]:80 -s lc -p 60 -M 64
-a -t [2001:db8::1]:80 -r [2001:db8::10]:80 -m -w 4
-A -f 7 -s mh -b mh-fallback
-a -f 7 -r 192.168.1.7:0 -g -w 2
-A -f 8 -6 -s sed
"""


def _table(text: str) -> list[str]:
    """``ipvsadm -Ln`` body, whitespace-normalised, order-insensitive between services."""
    lines = [re.sub(r"\s+", " ", ln).strip() for ln in text.splitlines()]
    return sorted(
        ln
        for ln in lines
        if ln and not ln.startswith(("IP Virtual", "Prot", "->Rem", "-> RemoteAddress"))
    )


def _sorted(svcs: list[Service]) -> dict:
    return {s.key: replace(s, dests=tuple(sorted(s.dests, key=lambda d: d.key))) for s in svcs}


def test_every_kind_matches_ipvsadm(run) -> None:
    async def body(ipvs):
        res = await ipvs.apply(plan(EVERY_KIND, []))
        assert not res.failed, res.failed
        return await ipvs.services()

    dumped = None

    async def body2(ipvs):
        nonlocal dumped
        await body(ipvs)
        dumped = await ipvs.services()
        return (
            ipvsadm("-Ln"),
            ipvsadm("-Ln", "--rate"),
            ipvsadm("-S", "-n"),
            ipvsadm("-Ln", "--thresholds"),
        )

    ln, rate, saved, thresholds = run(body2)
    assert _table(ln) == _table(EXPECTED_LN), ln
    assert _sorted(dumped) == _sorted(EVERY_KIND)  # our dump reads back what we wrote
    assert "10.0.0.1:80" in rate and "192.168.1.8:9" in rate
    assert sorted(saved.splitlines()) == sorted(EXPECTED_SAVE.splitlines()), saved
    assert re.search(r"192.168.1.1:8080\s+100\s+10\s", thresholds), thresholds


def test_edit_weight_in_place_and_second_plan_empty(run) -> None:
    svc = EVERY_KIND[0]

    async def body(ipvs):
        await ipvs.apply(plan([svc], []))
        new = replace(svc, scheduler="rr", dests=(replace(svc.dests[0], weight=9),
                                                  svc.dests[1]))  # fmt: skip
        ops = plan([new], await ipvs.services())
        assert [o.kind.value for o in ops] == ["edit_service", "edit_dest"]
        res = await ipvs.apply(ops)
        assert res.done == 2 and not res.failed
        assert plan([new], await ipvs.services()) == []
        return ipvsadm("-Ln")

    out = run(body)
    assert re.search(r"TCP\s+10.0.0.1:80 rr", out)
    assert re.search(r"192.168.1.1:8080\s+Masq\s+9", out)


def test_plan_converges_and_foreign_entries_survive(run) -> None:
    subprocess.run(["true"], check=True)

    async def body(ipvs):
        # foreign: a service and a real server inside one of ours, added by ipvsadm
        ipvsadm("-A", "-t", "10.9.9.9:80", "-s", "rr")
        ipvsadm("-a", "-t", "10.9.9.9:80", "-r", "192.168.9.1:80", "-m")
        ipvsadm("-A", "-t", "10.0.0.1:80", "-s", "rr")
        ipvsadm("-a", "-t", "10.0.0.1:80", "-r", "192.168.9.2:8080", "-m")
        desired = EVERY_KIND
        res = await ipvs.apply(plan(desired, await ipvs.services()))
        assert not res.failed, res.failed
        kernel = await ipvs.services()
        assert plan(desired, kernel) == []
        # dropping a service we applied removes it; the foreign ones stay
        res = await ipvs.apply(plan(desired[1:], kernel, previous=desired))
        assert not res.failed
        return ipvsadm("-Ln")

    out = run(body)
    assert "10.9.9.9:80" in out and "192.168.9.1:80" in out
    assert "10.0.0.1:80" not in out
    assert "10.0.0.2:53" in out


def test_flush_removes_foreign(run) -> None:
    async def body(ipvs):
        ipvsadm("-A", "-t", "10.9.9.9:80", "-s", "rr")
        ops = plan(EVERY_KIND[:1], await ipvs.services(), flush=True)
        await ipvs.apply(ops)
        return ipvsadm("-Ln")

    out = run(body)
    assert "10.9.9.9" not in out and "10.0.0.1:80" in out


def test_idempotent_add_and_delete(run) -> None:
    svc = EVERY_KIND[1]

    async def body(ipvs):
        await ipvs.add_service(svc)
        res = await ipvs.add_service(svc)
        assert res.done == 0 and len(res.already) == 2 and not res.failed
        await ipvs.delete_service(svc)
        res = await ipvs.delete_service(svc)
        assert len(res.already) == 1 and not res.failed

    run(body)


def test_timeouts(run) -> None:
    async def body(ipvs):
        await ipvs.set_timeouts(Timeouts(tcp=901, tcpfin=121, udp=301))
        got = await ipvs.timeouts()
        out = ipvsadm("-L", "--timeout")
        await ipvs.set_timeouts(Timeouts(tcp=900, tcpfin=120, udp=300))
        return got, out

    got, out = run(body)
    assert got == Timeouts(tcp=901, tcpfin=121, udp=301)
    assert "Timeout (tcp tcpfin udp): 901 121 301" in out


def test_sync_daemon(run) -> None:
    async def body(ipvs):
        await ipvs.start_daemon(SyncDaemon("master", "lo", syncid=5, maxlen=1400,
                                           mcast_group="224.0.0.99", mcast_port=8849,
                                           mcast_ttl=2))  # fmt: skip
        await ipvs.start_daemon(SyncDaemon("backup", "lo", syncid=6))
        got = await ipvs.daemons()
        out = ipvsadm("-L", "--daemon")
        stopped = [await ipvs.stop_daemon("master"), await ipvs.stop_daemon("backup")]
        again = await ipvs.stop_daemon("master")
        after = ipvsadm("-L", "--daemon")
        return got, out, stopped, again, after

    got, out, stopped, again, after = run(body)
    assert "master sync daemon (mcast=lo, syncid=5, maxlen=1400, group=224.0.0.99, " \
        "port=8849, ttl=2)" in out, out  # fmt: skip
    assert "backup sync daemon (mcast=lo, syncid=6" in out, out
    by_state = {d.state: d for d in got}
    assert by_state["master"] == SyncDaemon("master", "lo", 5, 1400, "224.0.0.99", 8849, 2)
    assert by_state["backup"].syncid == 6
    assert stopped == [True, True] and again is False and after.strip() == ""
