"""The checker side of the conformance harness: keepalived 2.2.7 and fastha, each run
as the checker alone (``-C``) from the same keepalived.conf, inside the UML kernel
(this host's kernel has no IPVS; tests/ipvs/uml.py boots it once for every scenario).

Inside the guest, every (scenario, implementation) pair gets a network namespace of its
own (IPVS tables are per namespace), so all of them run at once: the same real servers
on the namespace's loopback (TCP listeners and HTTP servers the timeline takes down and
up, MISC_CHECK scripts whose exit code it sets), the daemon started from the expanded
template, and after each step, once the table has settled, a checkpoint:

- ``ipvs``: ``ipvsadm -Sn``, sorted (the oracle the issue names); ``timeouts``:
  ``ipvsadm -Ln --timeout``;
- ``notify``: the notify_up/down, quorum_up/down calls since the last checkpoint
  (sorted: keepalived's random warmup orders a step's checks at random);
- ``fifo``: the lines of ``lvs_notify_fifo`` / ``notify_fifo`` since the last one
  (sorted likewise);
- ``running``.

A ``bfd`` scenario's lab also runs the BFD peer: keepalived 2.2.7 from a config of its
``bfd_instance`` alone (its parent and BFD child), in a second namespace joined to the
lab's by a veth pair (fhb0, 198.18.62.1 in the lab; fhb1, 198.18.62.2 in the peer's):
both BFD daemons bind UDP 3784, so they cannot share one. ``peer("kill")`` kills it
(SIGKILL to its process group: no goodbye, the session times out), ``peer("start")``
starts it again.

Settling: keepalived delays each checker's first run by a random warmup of up to
``delay_loop``; a step counts as settled once the table, the notify calls and the FIFO
lines have not changed for ``quiet`` seconds (Scenario.quiet: longer than a check's
period plus its timeout, so a verdict is never cut short).

    python -m tests.conformance.ipvs run --out FILE [NAME...]   # in the guest: all labs
    python -m tests.conformance.ipvs lab NAME IMPL DIR           # one lab (its netns)

The host side (test_conformance_ipvs.py) boots the guest, reads the traces and diffs
them with harness.diff against allowlist.toml.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conformance.harness import expand, global_defs, registrar
from tests.support.vrrp_peer import fastha_binary, keepalived_binary

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD = 60.0  # the longest a step may take to settle
READY_GUARD = 120.0  # a start or reload under load (a dozen daemons in one UML CPU)
# The line each implementation's checker logs once it has started / reloaded: a step
# settles from there (a SIGHUP before the handlers are installed would kill the daemon).
READY = {
    "keepalived": {"start": "Startup complete", "reload": "Reload complete"},
    "fastha": {"start": "Checker started", "reload": "Reload finished"},
}


# -- scenario description ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # start stop down up status misc reload sh wait peer
    args: tuple[Any, ...] = ()

    def label(self) -> str:
        a = " ".join(str(x) for x in self.args if not isinstance(x, str) or "\n" not in x)
        return f"{self.kind} {a}".strip()


def start() -> Step:
    return Step("start")


def stop() -> Step:
    """SIGTERM: keepalived removes the services it made (omega: notifies first)."""
    return Step("stop")


def down(server: str) -> Step:
    """The real server ``server`` stops listening (TCP) / its HTTP server closes."""
    return Step("down", (server,))


def up(server: str) -> Step:
    return Step("up", (server,))


def status(server: str, code: int) -> Step:
    """The HTTP real server ``server`` answers ``code`` from now on."""
    return Step("status", (server, code))


def misc(name: str, rc: int) -> Step:
    """The MISC_CHECK script ``<<chk:name>>`` exits ``rc`` from now on."""
    return Step("misc", (name, rc))


def reload(conf: str) -> Step:
    """Write ``conf`` (a template) as the keepalived.conf, then SIGHUP."""
    return Step("reload", (conf,))


def sh(*cmd: str) -> Step:
    """Any command in the lab's namespace: ``ipvsadm -A ...`` (a service the daemon did
    not make), ``ip link set fhs0 down`` (the VRRP interface of a ``vrrp`` scenario)."""
    return Step("sh", cmd)


def peer(action: str) -> Step:
    """The BFD peer (Scenario.bfd_peer): ``kill`` (SIGKILL, by its pid) or ``start``."""
    return Step("peer", (action,))


@dataclass(frozen=True, slots=True)
class Scenario:
    """A keepalived.conf template, the real servers and a timeline.

    ``servers``: name -> (kind, address, port), kind ``tcp`` (a listener) or ``http``
    (answers GET with a status, 200 at first); all listen from the start unless named in
    ``down_at_start``. Template tokens as in harness.expand (``<<notify>>``,
    ``<<fifo>>``, ``<<chk:NAME>>``, ``<<dir>>``)."""

    name: str
    conf: str
    servers: dict[str, tuple[str, str, int]]
    steps: tuple[Step, ...]
    doc: str = ""
    delay_loop: float = 1.0
    timeout: float = 1.0  # the longest checker timeout in the config
    down_at_start: tuple[str, ...] = ()
    # Both children (no -C): the lab gets the VRRP interface fhs0 (a veth, 198.18.61.1/24)
    # and its checkpoints the kernel's sync daemons (``ipvsadm -L --daemon``).
    vrrp: bool = False
    # An SMTP server on 127.0.0.1:2525 in the lab: its checkpoints get the mails received.
    smtp: bool = False
    # A keepalived.conf of ``bfd_instance`` blocks only: keepalived 2.2.7 runs it as the
    # BFD peer in a namespace of its own, joined to the lab's by the veth fhb0/fhb1.
    bfd_peer: str = ""

    @property
    def nodes(self) -> dict[str, str]:  # harness.expand's view: one node, "a"
        return {"a": self.conf}

    @property
    def quiet(self) -> float:
        # a dozen daemons share the guest's one CPU: probes and scripts run late (a
        # notify script forked by a large Python process took 13 s there once)
        return 5 * self.delay_loop + self.timeout + 4.0


SCENARIOS: dict[str, Scenario] = {}

scenario = registrar(SCENARIOS)


GLOBAL = global_defs("lvs_notify_fifo <<fifo>>")
# Real servers on the namespace's loopback.
RS = "198.18.1.{}"
SMTP_PORT = 2525  # the lab's SMTP server (Scenario.smtp), on 127.0.0.1


def tcp_rs(n: int, port: int, *, weight: int | None = 1, extra: str = "",
           check: str = "") -> str:  # fmt: skip
    check = check or "TCP_CHECK {\n    connect_timeout 1\n    retry 0\n}"
    lines = [f"real_server {RS.format(n)} {port} {{"]
    if weight is not None:
        lines.append(f"    weight {weight}")
    lines += [f"    {x}" for x in extra.strip().splitlines() if x.strip()]
    lines += [f"    {x}" for x in check.strip().splitlines()]
    lines.append("}")
    return "\n".join(lines)


def vs(head: str, body: str, *rs: str) -> str:
    """``virtual_server HEAD { delay_loop 1 ... BODY ... real servers }``."""
    inner = ["delay_loop 1", *[x for x in body.strip().splitlines() if x.strip()]]
    out = [f"virtual_server {head} {{", *[f"    {x.strip()}" for x in inner]]
    for r in rs:
        out += [f"    {x}" for x in r.splitlines()]
    out.append("}")
    return "\n".join(out) + "\n"


def notify_updown(tag: str) -> str:
    return f'notify_up "<<notify>> up {tag}"\nnotify_down "<<notify>> down {tag}"'


# -- scenarios -----------------------------------------------------------------------------


@scenario
def tcp_check_down_up() -> Scenario:
    """TCP_CHECK, wrr/NAT with weights, persistence: a real server goes down and comes
    back; notify_up/notify_down and the lvs FIFO's RS lines."""
    conf = GLOBAL + vs(
        "10.20.0.1 80",
        "lb_algo wrr\nlb_kind NAT\nprotocol TCP\npersistence_timeout 120\n"
        "persistence_granularity 255.255.255.0",
        tcp_rs(1, 8001, weight=2, extra=notify_updown("rs1")),
        tcp_rs(2, 8002, weight=3, extra=notify_updown("rs2")),
        tcp_rs(3, 8003, weight=1),
    )
    return Scenario(
        "tcp_check_down_up",
        conf,
        {
            "rs1": ("tcp", RS.format(1), 8001),
            "rs2": ("tcp", RS.format(2), 8002),
            "rs3": ("tcp", RS.format(3), 8003),
        },
        (start(), down("rs2"), down("rs3"), up("rs2"), up("rs3"), stop()),
    )


@scenario
def quorum_sorry_server() -> Scenario:
    """quorum + hysteresis: losing it puts the sorry server in (and quorum_down runs),
    regaining it takes it out (quorum_up); inhibit_on_failure keeps a dead real server
    at weight 0."""
    conf = GLOBAL + vs(
        "10.20.0.2 80",
        "lvs_sched rr\nlvs_method DR\nprotocol TCP\nquorum 3\nhysteresis 1\n"
        'quorum_up "<<notify>> quorum_up"\nquorum_down "<<notify>> quorum_down"\n'
        "sorry_server 198.18.1.9 8009",
        tcp_rs(1, 8001, weight=2, extra=notify_updown("rs1")),
        tcp_rs(2, 8002, weight=2, extra="inhibit_on_failure\n" + notify_updown("rs2")),
    )
    return Scenario(
        "quorum_sorry_server",
        conf,
        {"rs1": ("tcp", RS.format(1), 8001), "rs2": ("tcp", RS.format(2), 8002)},
        (start(), down("rs2"), down("rs1"), up("rs1"), up("rs2"), stop()),
    )


@scenario
def alpha_omega() -> Scenario:
    """alpha: real servers start down until their first check succeeds (one never
    does); omega: the down notifiers and quorum_down run at shutdown."""
    conf = GLOBAL + vs(
        "10.20.0.3 80",
        "lvs_sched wlc\nlvs_method NAT\nprotocol TCP\nalpha\nomega\nquorum 1\n"
        'quorum_up "<<notify>> quorum_up"\nquorum_down "<<notify>> quorum_down"',
        tcp_rs(1, 8001, extra=notify_updown("rs1")),
        tcp_rs(2, 8002, extra=notify_updown("rs2")),
    )
    return Scenario(
        "alpha_omega",
        conf,
        {"rs1": ("tcp", RS.format(1), 8001), "rs2": ("tcp", RS.format(2), 8002)},
        (start(), up("rs2"), down("rs1"), stop()),
        down_at_start=("rs2",),
    )


@scenario
def http_and_misc_checks() -> Scenario:
    """HTTP_GET (url path + status_code), MISC_CHECK and MISC_CHECK misc_dynamic (the
    exit code minus 2 is the weight), each flipped by the timeline; retry 1 with
    delay_before_retry, so one probe lost to the loaded guest flips nothing."""
    http_check = """HTTP_GET {
    url {
        path /health
        status_code 200
    }
    connect_timeout 3
    retry 1
    delay_before_retry 1
}"""
    misc_check = 'MISC_CHECK {\n    misc_path "<<chk:m1>>"\n    misc_timeout 15\n    retry 1\n    delay_before_retry 1\n}'
    dyn_check = 'MISC_CHECK {\n    misc_path "<<chk:m2>>"\n    misc_timeout 15\n    retry 1\n    delay_before_retry 1\n    misc_dynamic\n}'
    conf = GLOBAL + vs(
        "10.20.0.4 80",
        "lvs_sched wrr\nlvs_method NAT\nprotocol TCP",
        tcp_rs(1, 8080, weight=5, extra=notify_updown("http"), check=http_check),
        tcp_rs(2, 8002, weight=4, extra=notify_updown("misc"), check=misc_check),
        tcp_rs(3, 8003, weight=1, extra=notify_updown("dyn"), check=dyn_check),
    )
    return Scenario(
        "http_and_misc_checks",
        conf,
        {"http": ("http", RS.format(1), 8080)},
        (
            start(),
            status("http", 500),
            misc("m1", 1),
            misc("m2", 9),  # weight 7
            status("http", 200),
            misc("m1", 0),
            misc("m2", 1),  # failed
            misc("m2", 0),
            stop(),
        ),
        timeout=5.0,
    )


def _groups_conf(changed: bool, regroup: bool = False) -> str:
    group = ("virtual_server_group G1 {\n    10.20.1.1-3 80\n    fwmark 7\n}\n" if not regroup
             else "virtual_server_group G1 {\n    10.20.1.1-2 80\n    10.20.1.9 80\n}\n")  # fmt: skip
    tcp = vs(
        "group G1",
        f"lvs_sched {'sh' if changed else 'wrr'}\nlvs_method DR\nprotocol TCP",
        tcp_rs(1, 80, weight=3 if changed else 2),
        tcp_rs(2, 80, weight=1),
        *([tcp_rs(3, 80, weight=1)] if changed else []),
    )
    fwm = vs(
        "fwmark 9",
        "lvs_sched rr\nlvs_method TUN\npersistence_timeout 60",
        tcp_rs(1, 0, weight=1),
    )
    udp = vs(
        "10.20.1.20 53",
        "lvs_sched rr\nlvs_method NAT\nprotocol UDP\nops",
        tcp_rs(
            1,
            53,
            weight=1,
            check="TCP_CHECK {\n    connect_port 8053\n    connect_timeout 1\n    retry 0\n}",
        ),
    )
    return GLOBAL + group + tcp + (udp if not changed else fwm)


@scenario
def groups_fwmark_reload() -> Scenario:
    """virtual_server_group (address range + fwmark; DR destinations take the entry's
    port), a fwmark virtual server with TUN and persistence, UDP with ops; a reload that
    changes the scheduler and a weight, adds a real server, drops one virtual server
    (its live real server's down lines) and adds another."""
    return Scenario(
        "groups_fwmark_reload",
        _groups_conf(False),
        {
            "rs1": ("tcp", RS.format(1), 80),
            "rs2": ("tcp", RS.format(2), 80),
            "rs3": ("tcp", RS.format(3), 80),
            "dns": ("tcp", RS.format(1), 8053),
        },
        (start(), down("rs2"), reload(_groups_conf(True)), up("rs2"), stop()),
    )


@scenario
def reload_weights_and_removal() -> Scenario:
    """A reload changing a real server's weight and removing another (keepalived takes
    it out of the table), an unchanged reload (no change), a real server that is down
    during the reload."""
    rs1 = tcp_rs(1, 8001, weight=2, extra=notify_updown("rs1"))
    rs2 = tcp_rs(2, 8002, weight=2, extra=notify_updown("rs2"))
    first = GLOBAL + vs("10.20.0.6 80", "lvs_sched wrr\nlvs_method NAT", rs1, rs2)
    second = GLOBAL + vs(
        "10.20.0.6 80", "lvs_sched wrr\nlvs_method NAT",
        tcp_rs(1, 8001, weight=5, extra=notify_updown("rs1")),
    )  # fmt: skip
    return Scenario(
        "reload_weights_and_removal",
        first,
        {"rs1": ("tcp", RS.format(1), 8001), "rs2": ("tcp", RS.format(2), 8002)},
        (start(), reload(first), down("rs1"), reload(second), up("rs1"), stop()),
    )


@scenario
def group_entries_dropped_by_reload() -> Scenario:
    """A reload that drops an address and the fwmark from a virtual_server_group and adds
    an address. keepalived 2.2.7 logs the dropped entries but leaves their services in
    the table, even after it stops (allow-listed: fastha removes what it no longer
    configures)."""
    return Scenario(
        "group_entries_dropped_by_reload",
        _groups_conf(False),
        {
            "rs1": ("tcp", RS.format(1), 80),
            "rs2": ("tcp", RS.format(2), 80),
            "dns": ("tcp", RS.format(1), 8053),
        },
        (start(), reload(_groups_conf(False, regroup=True)), stop()),
    )


@scenario
def service_attributes() -> Scenario:
    """What a service and its destinations carry: lvs_timeouts, sh scheduler flags,
    uthreshold/lthreshold, TUN with GUE port and checksum, sorry_server_inhibit (the
    sorry server at weight 0 while quorum holds), retry with delay_before_retry, an IPv6
    service with an IPv6 real server, a fwmark with ip_family inet6; lvs_flush at start."""
    g = global_defs(
        "lvs_notify_fifo <<fifo>>", "lvs_timeouts tcp 900 tcpfin 120 udp 300", "lvs_flush"
    )
    retry = "TCP_CHECK {\n    connect_timeout 1\n    retry 1\n    delay_before_retry 1\n}"
    conf = (
        g
        + vs(
            "10.20.2.1 80",
            "lvs_sched sh\nsh-port\nsh-fallback\nlvs_method NAT\nprotocol TCP\nquorum 2\n"
            "sorry_server 198.18.1.9 8009\nsorry_server_inhibit",
            tcp_rs(
                1,
                8001,
                weight=2,
                extra="uthreshold 100\nlthreshold 10\n" + notify_updown("rs1"),
                check=retry,
            ),
            tcp_rs(2, 8002, weight=1, extra="lvs_method TUN type gue port 6080 csum"),
        )
        + vs(
            "fd00:20::1 443",
            "lvs_sched wrr\nlvs_method NAT\nprotocol TCP",
            "real_server fd00:1::1 8443 {\n    weight 3\n    TCP_CHECK {\n        connect_timeout 1\n"
            "        retry 0\n    }\n}",
        )
        + vs(
            "fwmark 11",
            "lvs_sched rr\nlvs_method DR\nip_family inet6",
            "real_server fd00:1::1 8443 {\n    TCP_CHECK {\n        connect_timeout 1\n"
            "        retry 0\n    }\n}",
        )
    )
    return Scenario(
        "service_attributes",
        conf,
        {
            "rs1": ("tcp", RS.format(1), 8001),
            "rs2": ("tcp", RS.format(2), 8002),
            "v6": ("tcp", "fd00:1::1", 8443),
        },
        (start(), down("rs1"), down("v6"), up("rs1"), up("v6"), stop()),
    )


SYNC_VI = """vrrp_instance VI_SYNC {{
    state BACKUP
    interface fhs0
    virtual_router_id 61
    priority 100
    advert_int 1
    garp_master_delay 1
{extra}    virtual_ipaddress {{
        198.18.61.100/24
    }}
}}
"""
# A service neither daemon made: lvs_flush_on_stop takes it out at stop, else it stays.
FOREIGN = sh("ipvsadm", "-A", "-t", "10.20.9.9:80", "-s", "rr")


@scenario
def vrrp_syncd_flush_on_stop() -> Scenario:
    """Both children: lvs_sync_daemon drives the kernel's sync daemon with VI_SYNC's
    state (backup daemon at start, master once MASTER, backup again in FAULT when fhs0
    goes down, stopped at SIGTERM); lvs_flush_on_stop flushes the whole table at stop,
    the service no daemon made included."""
    conf = global_defs("lvs_sync_daemon fhs0 VI_SYNC id 7 maxlen 1400",
                       "lvs_flush_on_stop") + SYNC_VI.format(extra="") + vs(
        "10.20.3.1 80", "lvs_sched rr\nlvs_method NAT\nprotocol TCP", tcp_rs(1, 8001),
    )  # fmt: skip
    return Scenario(
        "vrrp_syncd_flush_on_stop",
        conf,
        {"rs1": ("tcp", RS.format(1), 8001)},
        (
            FOREIGN,
            start(),
            sh("ip", "link", "set", "fhs0", "down"),
            sh("ip", "link", "set", "fhs0", "up"),
            stop(),
        ),
        vrrp=True,
    )


@scenario
def vrrp_syncd_instance_flush_vs() -> Scenario:
    """The deprecated instance form, ``lvs_sync_daemon_interface`` in the vrrp_instance
    (its VRID is the sync id); ``lvs_flush_onstop VS`` (the older spelling) removes the
    daemon's services at stop and leaves the one it did not make. smtp_alert_checker:
    the checker's mails (a real server down and up) to the SMTP server on loopback."""
    mail = ("notification_email {\n        ops@example.com\n    }",
            "notification_email_from lb@example.com", f"smtp_server 127.0.0.1 {SMTP_PORT}",
            "smtp_connect_timeout 5", "smtp_helo_name lab.example", "router_id LAB_LB")  # fmt: skip
    conf = global_defs("lvs_flush_onstop VS", "smtp_alert_checker", *mail) + SYNC_VI.format(
        extra="    lvs_sync_daemon_interface fhs0\n"
    ) + vs("10.20.3.2 80", "lvs_sched rr\nlvs_method NAT\nprotocol TCP", tcp_rs(1, 8001),
           tcp_rs(2, 8002))  # fmt: skip
    return Scenario(
        "vrrp_syncd_instance_flush_vs",
        conf,
        {"rs1": ("tcp", RS.format(1), 8001), "rs2": ("tcp", RS.format(2), 8002)},
        (FOREIGN, start(), down("rs2"), up("rs2"), stop()),
        vrrp=True,
        smtp=True,
    )


BFD_LAB, BFD_PEER = "198.18.62.1", "198.18.62.2"


def bfd_instance(
    name: str, me: str, peer_ip: str, extra: str = "", nbr: str = "neighbor_ip"
) -> str:
    """1000 ms x 3, keepalived's idle_tx pace: no Poll sequence when the session comes Up.
    At 100 ms x 3 a keepalived 2.2.7 <-> keepalived 2.2.7 session once went Down 8 s
    after the peer's restart, both ends' 300 ms detection expiring at once (the guest's
    one CPU, shared by every lab, stalled), and Up again: a notify pair more than the
    other implementation's lab. A step settles over a quiet period (10 s) far longer
    than the 3 s detection time."""
    body = [f"{nbr} {peer_ip}", f"source_ip {me}", "min_rx 1000", "min_tx 1000",
            "multiplier 3", *[x for x in extra.strip().splitlines() if x.strip()]]  # fmt: skip
    return f"bfd_instance {name} {{\n" + "".join(f"    {x}\n" for x in body) + "}\n"


@scenario
def bfd_check_peer_kill_link_cut() -> Scenario:
    """BFD_CHECK: a real server whose only checker is a BFD session (its bfd_instance
    routed to the checker alone; passive: the peer speaks first) to keepalived 2.2.7's
    BFD in another namespace; a second one with ``alpha`` (down until the first Up).
    The session Up puts them in the table; the peer killed (by pid) takes them out
    (notify_down), the peer started again puts them back (notify_up); the link cut and
    restored does the same. The daemon under test runs -C, as the other labs: the BFD
    child runs with the checker (keepalived's -C leaves BFD on)."""
    opts = "checker\npassive\nidle_tx 1000\nttl 255"
    conf = GLOBAL + bfd_instance("peer", BFD_LAB, BFD_PEER, opts, nbr="neighbour_ip") + vs(
        "10.20.4.1 80", "lvs_sched rr\nlvs_method NAT\nprotocol TCP",
        tcp_rs(1, 8001, weight=2, extra=notify_updown("rs1"),
               check="BFD_CHECK {\n    name peer\n}"),
        tcp_rs(2, 8002, weight=1),
        tcp_rs(3, 8003, weight=3, extra=notify_updown("rs3"),
               check="BFD_CHECK {\n    name peer\n    alpha\n}"),
    )  # fmt: skip
    cut = sh("ip", "link", "set", "fhb0", "down")
    restore = sh("ip", "link", "set", "fhb0", "up")
    return Scenario(
        "bfd_check_peer_kill_link_cut",
        conf,
        {"rs2": ("tcp", RS.format(2), 8002)},
        (start(), peer("kill"), peer("start"), cut, restore, stop()),
        bfd_peer=global_defs("router_id BFD_PEER") + bfd_instance("lab", BFD_PEER, BFD_LAB),
    )


# -- real servers --------------------------------------------------------------------------


class Tcp:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None

    def up(self) -> None:
        if self.sock is not None:
            return
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(64)
        self.sock = s
        threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    @staticmethod
    def _serve(s: socket.socket) -> None:
        while True:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            conn.close()

    def down(self) -> None:
        if self.sock is None:
            return
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.sock = None


class Http:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port, self.status = host, port, 200
        self.httpd: ThreadingHTTPServer | None = None

    def up(self) -> None:
        if self.httpd is not None:
            return
        owner = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b"ok\n"
                self.send_response(owner.status if self.path == "/health" else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer((self.host, self.port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


# -- one lab (runs in its own network namespace, inside the guest) ----------------------------


def command(impl: str, conf: Path, d: Path, *, vrrp: bool = False) -> list[str]:
    only = [] if vrrp else ["-C"]
    pids = ["-p", str(d / "k.pid"), "-r", str(d / "v.pid"), "-c", str(d / "c.pid"),
            "-b", str(d / "b.pid")]  # fmt: skip
    if impl == "keepalived":
        return [str(keepalived_binary()), "-n", "-l", "-D", *only, "-f", str(conf), *pids]
    return [str(fastha_binary()), "daemon", "-n", "-l", "-D", *only, "-f", str(conf), *pids,
            "--control-socket", str(d / "control.sock")]  # fmt: skip


def peer_command(conf: Path, d: Path) -> list[str]:
    """keepalived 2.2.7 as the BFD peer (a config of bfd_instance blocks only: its parent
    and BFD child run), every pid file in ``d``."""
    return command("keepalived", conf, d, vrrp=True)


# Mail headers whose value is the moment or the host, not behaviour.
MAIL_VOLATILE = ("date:", "message-id:")


class Mailbox:
    """aiosmtpd handler: every message received, as the fields both daemons write."""

    def __init__(self) -> None:
        self.mails: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        text = envelope.content.decode(errors="replace").replace("\r\n", "\n")
        head, _, body = text.partition("\n\n")
        headers = [h for h in head.splitlines()
                   if not h.lower().startswith(MAIL_VOLATILE)]  # fmt: skip
        self.mails.append(json.dumps({
            "helo": session.host_name, "from": envelope.mail_from,
            "to": sorted(envelope.rcpt_tos), "headers": sorted(headers),
            "body": [ln.rstrip() for ln in body.strip().splitlines()],
        }, sort_keys=True))  # fmt: skip
        return "250 OK"


@dataclass(slots=True)
class Lab:
    scen: Scenario
    impl: str
    d: Path
    servers: dict[str, Tcp | Http] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    fifo: int | None = None
    fifo_buf: bytes = b""
    notify_seen: int = 0
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    mailbox: Mailbox | None = None
    smtpd: Any = None
    mails_seen: int = 0
    peer_ns: str = ""  # the BFD peer's namespace (Scenario.bfd_peer)
    peer_proc: subprocess.Popen[bytes] | None = None

    def build(self) -> None:
        d = self.d
        d.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        if self.scen.vrrp:
            for cmd in (["link", "add", "fhs0", "address", "02:fa:00:00:61:01", "type", "veth",
                         "peer", "name", "fhs1", "address", "02:fa:00:00:61:02"],
                        ["addr", "add", "198.18.61.1/24", "dev", "fhs0"],
                        ["link", "set", "fhs1", "up"], ["link", "set", "fhs0", "up"]):  # fmt: skip
                subprocess.run(["ip", *cmd], check=True)
        if self.scen.bfd_peer:
            self.build_bfd_peer()
        if self.scen.smtp:
            from aiosmtpd.controller import Controller

            self.mailbox = Mailbox()
            self.smtpd = Controller(self.mailbox, hostname="127.0.0.1", port=SMTP_PORT)
            self.smtpd.start()
        for _kind, host, _port in self.scen.servers.values():
            six = ":" in host
            subprocess.run(["ip", "addr", "replace", f"{host}/{128 if six else 32}", "dev",
                            "lo", *(["nodad"] if six else [])], check=True)  # fmt: skip
        for name, (kind, host, port) in self.scen.servers.items():
            self.servers[name] = Tcp(host, port) if kind == "tcp" else Http(host, port)
            if name not in self.scen.down_at_start:
                self.servers[name].up()
        notify = d / "notify.sh"
        notify.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {d}/notify.log\n')
        notify.chmod(0o755)
        text = self.scen.conf + "".join(s.args[0] for s in self.scen.steps if s.kind == "reload")
        for chk in set(re.findall(r"<<chk:([A-Za-z0-9_.-]+)>>", text)):
            s = d / f"chk_{chk}.sh"
            s.write_text(f'#!/bin/sh\nexit "$(cat {d}/chk_{chk}.rc)"\n')
            s.chmod(0o755)
            (d / f"chk_{chk}.rc").write_text("0\n")
        if "<<fifo>>" in text:
            os.mkfifo(d / "notify.fifo")
            self.fifo = os.open(d / "notify.fifo", os.O_RDWR | os.O_NONBLOCK)
        self.write_conf(self.scen.conf)

    def build_bfd_peer(self) -> None:
        """The peer's namespace (named by this lab's pid: unique in the guest), the veth
        pair into it, and keepalived's BFD started there."""
        self.peer_ns = ns = f"cfbfd{os.getpid()}"
        pd = self.d / "peer"
        pd.mkdir(exist_ok=True)
        (pd / "keepalived.conf").write_text(self.scen.bfd_peer)
        subprocess.run(["ip", "netns", "add", ns], check=True)
        inside = ["ip", "netns", "exec", ns]
        for cmd in (["ip", "link", "add", "fhb0", "type", "veth", "peer", "name", "fhb1",
                     "netns", ns],
                    ["ip", "addr", "add", f"{BFD_LAB}/24", "dev", "fhb0"],
                    [*inside, "ip", "addr", "add", f"{BFD_PEER}/24", "dev", "fhb1"],
                    [*inside, "ip", "link", "set", "lo", "up"],
                    [*inside, "ip", "link", "set", "fhb1", "up"],
                    ["ip", "link", "set", "fhb0", "up"]):  # fmt: skip
            subprocess.run(cmd, check=True)
        self.peer_start()

    def peer_start(self) -> None:
        pd = self.d / "peer"
        log = open(pd / "daemon.log", "ab")  # noqa: SIM115
        env = {**os.environ, "TMPDIR": str(pd)}
        self.peer_proc = subprocess.Popen(
            ["ip", "netns", "exec", self.peer_ns, *peer_command(pd / "keepalived.conf", pd)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=pd, start_new_session=True)  # fmt: skip
        log.close()

    def peer_kill(self) -> None:
        """SIGKILL to the peer's process group (its parent and BFD child at once, by
        the parent's pid): no handler runs, so no AdminDown; the session times out."""
        p = self.peer_proc
        if p is None:
            return
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        self.peer_proc = None

    def write_conf(self, template: str) -> None:
        (self.d / "keepalived.conf").write_text(expand(template, self.scen, "a", self.d))

    def log(self) -> str:
        try:
            return (self.d / "daemon.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def apply(self, step: Step) -> None:
        k = step.kind
        marker = READY[self.impl].get(k)
        seen = self.log().count(marker) if marker else 0
        self._apply(step)
        if marker:
            t0 = time.monotonic()
            while self.log().count(marker) <= seen:
                if self.proc is None or self.proc.poll() is not None:
                    raise RuntimeError(f"{self.impl} exited during {step.label()}")
                if time.monotonic() - t0 > READY_GUARD:
                    raise RuntimeError(f"no {marker!r} after {step.label()}")
                time.sleep(0.1)

    def _apply(self, step: Step) -> None:
        k = step.kind
        if k == "start":
            log = open(self.d / "daemon.log", "ab")  # noqa: SIM115
            env = {**os.environ, "TMPDIR": str(self.d), "PYTHONUNBUFFERED": "1"}
            conf = self.d / "keepalived.conf"
            self.proc = subprocess.Popen(command(self.impl, conf, self.d, vrrp=self.scen.vrrp),
                                         stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env, cwd=self.d,
                                         start_new_session=True)  # fmt: skip
        elif k == "stop":
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(HANG_GUARD)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        elif k == "down":
            self.servers[step.args[0]].down()
        elif k == "up":
            self.servers[step.args[0]].up()
        elif k == "status":
            srv = self.servers[step.args[0]]
            assert isinstance(srv, Http)
            srv.status = step.args[1]
        elif k == "misc":
            (self.d / f"chk_{step.args[0]}.rc").write_text(f"{step.args[1]}\n")
        elif k == "reload":
            self.write_conf(step.args[0])
            assert self.proc is not None
            self.proc.send_signal(signal.SIGHUP)
        elif k == "sh":
            subprocess.run(list(step.args), check=True, capture_output=True)
        elif k == "wait":
            time.sleep(step.args[0])
        elif k == "peer":
            if step.args[0] == "kill":
                self.peer_kill()
            else:
                self.peer_start()
        else:
            raise ValueError(f"unknown step {k!r}")

    # -- observing ---------------------------------------------------------------------

    def table(self) -> list[str]:
        out = subprocess.run(["ipvsadm", "-Sn"], capture_output=True, text=True, check=False)
        return sorted(ln for ln in out.stdout.splitlines() if ln.strip())

    def notify_lines(self) -> list[str]:
        try:
            return (self.d / "notify.log").read_text().splitlines()
        except FileNotFoundError:
            return []

    def read_fifo(self) -> None:
        if self.fifo is None:
            return
        while True:
            try:
                chunk = os.read(self.fifo, 65536)
            except BlockingIOError:
                return
            if not chunk:
                return
            self.fifo_buf += chunk

    def syncd(self) -> list[str]:
        """The kernel's sync daemons (one "master|backup sync daemon (...)" line each)."""
        out = subprocess.run(["ipvsadm", "-L", "--daemon"], capture_output=True, text=True,
                             check=False).stdout  # fmt: skip
        return sorted(ln.strip() for ln in out.splitlines() if "sync daemon" in ln)

    def observed(self) -> tuple[Any, ...]:
        """What settling watches: /proc/net/ip_vs (read, not an ipvsadm fork: forks are
        what a loaded UML guest is slowest at), the notify calls, the FIFO bytes."""
        self.read_fifo()
        try:
            table = Path("/proc/net/ip_vs").read_text()
        except OSError:
            table = ""
        mails = len(self.mailbox.mails) if self.mailbox else 0
        syncd = self.syncd() if self.scen.vrrp else []
        return (table, len(self.notify_lines()), len(self.fifo_buf), mails, syncd)

    def settle(self) -> None:
        """Until the table, the notify calls and the FIFO lines have not changed for
        ``quiet`` seconds (HANG_GUARD bounds a table that never settles). A start settles
        as any step: its first scripts no longer stall fastha's checker (14 s in the
        loaded guest, when mounting the cgroup hierarchies ran gcc: drivers/scripts.py)."""
        quiet, t0 = self.scen.quiet, time.monotonic()
        last, since = self.observed(), time.monotonic()
        while time.monotonic() - since < quiet and time.monotonic() - t0 < HANG_GUARD:
            time.sleep(0.5)  # ipvsadm forks cost the guest's one CPU
            now = self.observed()
            if now != last:
                last, since = now, time.monotonic()

    def checkpoint(self) -> dict[str, Any]:
        self.read_fifo()
        lines = self.notify_lines()
        calls = sorted(lines[self.notify_seen :])
        self.notify_seen = len(lines)
        text, _, rest = self.fifo_buf.rpartition(b"\n")
        self.fifo_buf = rest
        fifo = sorted(text.decode(errors="replace").splitlines()) if text else []
        tmo = subprocess.run(["ipvsadm", "-Ln", "--timeout"], capture_output=True, text=True,
                             check=False).stdout.strip()  # fmt: skip
        cp = {
            "ipvs": self.table(),
            "timeouts": tmo,
            "notify": calls,
            "fifo": fifo,
            "running": self.proc is not None and self.proc.poll() is None,
        }
        if self.scen.vrrp:
            cp["syncd"] = self.syncd()
        if self.mailbox is not None:
            cp["mail"] = [json.loads(m) for m in sorted(self.mailbox.mails[self.mails_seen :])]
            self.mails_seen = len(self.mailbox.mails)
        return cp

    def run(self) -> dict[str, Any]:
        error = None
        try:
            self.build()
            for step in self.scen.steps:
                self.apply(step)
                self.settle()
                self.checkpoints.append(self.checkpoint())
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
        finally:
            if self.proc is not None and self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            for s in self.servers.values():
                s.down()
            self.peer_kill()
            if self.peer_ns:
                subprocess.run(["ip", "netns", "del", self.peer_ns], check=False)
            if self.smtpd is not None:
                self.smtpd.stop()
        log = self.log()
        trace = {"scenario": self.scen.name, "impl": self.impl, "error": error,
                 "checkpoints": self.checkpoints, "log": log[-20000:]}  # fmt: skip
        if self.peer_ns:
            with contextlib.suppress(OSError):
                trace["peer_log"] = (self.d / "peer" / "daemon.log").read_text(errors="replace")[
                    -6000:
                ]
        return trace


# -- every lab at once (in the guest) --------------------------------------------------------


def run_all(names: list[str], base: Path) -> dict[str, dict[str, Any]]:
    """scenario name -> impl -> trace; one namespace and one process per lab."""
    todo = [(n, impl) for n in names for impl in ("keepalived", "fastha")]
    if any(SCENARIOS[n].vrrp or SCENARIOS[n].bfd_peer for n in names):
        from tests.ipvs import kmod

        kmod.load(["veth"])
    procs = []
    for i, (n, impl) in enumerate(todo):
        ns = f"cfi{i}"
        subprocess.run(["ip", "netns", "add", ns], check=True)
        d = base / n / impl
        d.mkdir(parents=True, exist_ok=True)
        out = open(d / "lab.out", "wb")  # noqa: SIM115
        procs.append((n, impl, ns, d, out, subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.conformance.ipvs", "lab",
             n, impl, str(d)], stdout=out, stderr=subprocess.STDOUT, cwd=REPO)))  # fmt: skip
    result: dict[str, dict[str, Any]] = {}
    for n, impl, ns, d, out, p in procs:
        p.wait()
        out.close()
        try:
            trace = json.loads((d / "trace.json").read_text())
        except (OSError, ValueError):
            trace = {"error": "no trace: " + (d / "lab.out").read_text(errors="replace")[-3000:],
                     "checkpoints": [], "log": ""}  # fmt: skip
        result.setdefault(n, {})[impl] = trace
        subprocess.run(["ip", "netns", "del", ns], check=False)
    return result


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.conformance.ipvs")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--base", default="/tmp/fastha-conformance-ipvs")
    r.add_argument("names", nargs="*")
    lab = sub.add_parser("lab")
    lab.add_argument("name")
    lab.add_argument("impl", choices=("keepalived", "fastha"))
    lab.add_argument("dir")
    a = p.parse_args(argv)
    if a.cmd == "lab":
        d = Path(a.dir)
        trace = Lab(SCENARIOS[a.name], a.impl, d).run()
        (d / "trace.json").write_text(json.dumps(trace))
        return 0
    names = a.names or list(SCENARIOS)
    res = run_all(names, Path(a.base))
    Path(a.out).write_text(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
