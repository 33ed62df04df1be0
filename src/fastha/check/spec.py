"""What to check: the config's virtual servers resolved into probe specs (pure).

keepalived runs one checker per (virtual server, real server, checker) even when the same
real server sits behind many virtual servers (keepalived issue #2358). Here every checker
is resolved into a frozen, hashable `Check` (what to probe, how, and with which timing
after inheritance); equal `Check`s are one probe whose result fans out to every virtual
server that uses it (`fastha.check.health`).

    plan = build_plan(config)             # Plan(virtual_servers, checks)
    plan.checks[cid]                      # a Check: probe spec + timing
    plan.virtual_servers[i].real_servers  # RsPlan(key, weight, check ids, ...)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastha.config import bfd
from fastha.config.inherit import inherit
from fastha.config.model import GlobalDefs
from fastha.config.model_lvs import (
    AnyChecker,
    BfdCheck,
    CheckerBase,
    ConnectionChecker,
    DnsCheck,
    FileCheck,
    HttpGet,
    HttpProtocol,
    Method,
    MiscCheck,
    NotifyScript,
    PingCheck,
    RealServer,
    SmtpCheck,
    SmtpHost,
    SslConfig,
    SslGet,
    StatusRange,
    TcpCheck,
    UdpCheck,
    Url,
    VirtualServer,
    checker_timing,
    real_server_method,
    real_server_weight,
    sorry_server_method,
)
from fastha.config.scripts import enabled
from fastha.config.values import IPAddress

# ---------------------------------------------------------------- probe specs


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where a connection-based probe goes, and from where."""

    host: IPAddress
    port: int
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float = 5.0

    def describe(self) -> str:
        """keepalived's FMT_CHK address part: `[10.0.0.1]:80`."""
        return f"[{self.host}]:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpSpec:
    kind: str = "TCP_CHECK"
    endpoint: Endpoint


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlSpec:
    path: str
    status: tuple[StatusRange, ...]
    digest: str | None = None  # lower-case md5 hex
    virtualhost: str | None = None  # resolved: url > checker > real server > virtual server
    regex: str | None = None
    regex_no_match: bool = False
    regex_options: tuple[str, ...] = ()
    regex_min_offset: int | None = None
    regex_max_offset: int | None = None

    def status_ok(self, code: int) -> bool:
        return any(r.lo <= code <= r.hi for r in self.status)

    @property
    def needs_body(self) -> bool:
        return self.digest is not None or self.regex is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsSpec:
    """The global `SSL { }` block (keepalived has one for every SSL_GET)."""

    ca: str | None = None
    certificate: str | None = None
    key: str | None = None
    password: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSpec:
    kind: str = "HTTP_GET"  # or SSL_GET
    endpoint: Endpoint
    urls: tuple[UrlSpec, ...]
    http_protocol: HttpProtocol = HttpProtocol.V1_0
    tls: TlsSpec | None = None  # set for SSL_GET
    enable_sni: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpSpec:
    kind: str = "SMTP_CHECK"
    endpoint: Endpoint
    helo_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsSpec:
    kind: str = "DNS_CHECK"
    endpoint: Endpoint
    qtype: str = "SOA"
    name: str = "."


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpSpec:
    kind: str = "UDP_CHECK"
    endpoint: Endpoint
    payload: bytes | None = None
    require_reply: str | None = None
    min_reply_length: int = 0
    max_reply_length: int = 255


@dataclass(frozen=True, slots=True, kw_only=True)
class PingSpec:
    kind: str = "PING_CHECK"
    endpoint: Endpoint


@dataclass(frozen=True, slots=True, kw_only=True)
class MiscSpec:
    kind: str = "MISC_CHECK"
    argv: tuple[str, ...]
    timeout: float
    dynamic: bool = False
    user: str | None = None
    group: str | None = None
    uid: int | None = None  # resolved (fastha.config.scripts): take the place of user/group
    gid: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class FileSpec:
    """FILE_CHECK on a `track_file`: the file holds an integer."""

    kind: str = "FILE_CHECK"
    name: str
    path: str
    weight: int = 1
    reverse: bool = False
    dynamic: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class BfdSpec:
    """BFD_CHECK: a bfd_instance's Up/Down, pushed by the BFD owner; never probed
    (check/check_bfd.c bfd_check_handle_event)."""

    kind: str = "BFD_CHECK"
    name: str


ProbeSpec = (
    TcpSpec | HttpSpec | SmtpSpec | DnsSpec | UdpSpec | PingSpec | MiscSpec | FileSpec | BfdSpec
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One probe and the state machine settings it runs with; equal Checks are shared."""

    probe: ProbeSpec
    retry: int = 1
    delay_before_retry: float = 1.0
    delay_loop: float = 60.0
    warmup: float = 0.0
    alpha: bool = False
    fast_recovery: bool = False
    log_all_failures: bool = False

    def describe(self) -> str:
        p = self.probe
        if isinstance(p, MiscSpec):
            return f"MISC_CHECK {' '.join(p.argv)}"
        if isinstance(p, FileSpec | BfdSpec):
            return f"{p.kind} {p.name}"
        return f"{p.kind} {p.endpoint.describe()}"


# ---------------------------------------------------------------- servers


@dataclass(frozen=True, slots=True)
class RsKey:
    """A destination of a virtual server: address and port (0 for fwmark services)."""

    address: IPAddress
    port: int

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RsPlan:
    key: RsKey
    weight: int
    inhibit_on_failure: bool = False
    notify_up: NotifyScript | None = None
    notify_down: NotifyScript | None = None
    checks: tuple[int, ...] = ()  # indices into Plan.checks


@dataclass(frozen=True, slots=True, kw_only=True)
class VsPlan:
    name: str  # keepalived's FMT_VS
    protocol: str = "tcp"  # for FMT_RS in logs
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: NotifyScript | None = None
    quorum_down: NotifyScript | None = None
    sorry_server: RsKey | None = None
    sorry_server_inhibit: bool = False
    omega: bool = False
    ha_suspend: bool = False
    vip: IPAddress | None = None  # the virtual address (IP:port services): ha_suspend
    real_servers: tuple[RsPlan, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    virtual_servers: tuple[VsPlan, ...] = ()
    checks: tuple[Check, ...] = ()
    # Checkers not run (an unknown track_file or bfd_instance): text for logs.
    skipped: tuple[str, ...] = ()


# ---------------------------------------------------------------- building


def rs_key(vs: VirtualServer, rs: RealServer) -> RsKey:
    """A real server's address and the port keepalived gives it: its own, else the
    virtual server's; unless NAT, a fwmark service's real servers have none and an
    IP:port service's have its port (keepalived resets them; validate_lvs warns)."""
    port = rs.port if rs.port is not None else (vs.port or 0)
    non_nat = real_server_method(vs, rs).method is not Method.NAT
    if rs.port is not None and vs.group is None and non_nat:
        port = 0 if vs.fwmark is not None else (vs.port or 0)
    return RsKey(rs.address, port)


def sorry_key(vs: VirtualServer) -> RsKey | None:
    """The sorry server's IPVS destination: as a real server's (rs_key), its port is the
    service's (0 for fwmark) unless NAT (keepalived ipvswrapper.c ipvs_set_drule)."""
    ss = vs.sorry_server
    if ss is None:
        return None
    port = ss.port if ss.port is not None else (vs.port or 0)
    if vs.group is None and sorry_server_method(vs).method is not Method.NAT:
        port = 0 if vs.fwmark is not None else (vs.port or 0)
    return RsKey(ss.address, port)


def _endpoint(c: ConnectionChecker | SmtpHost, rs_key: RsKey, timeout: float) -> Endpoint:
    return Endpoint(
        host=c.connect_ip if c.connect_ip is not None else rs_key.address,
        port=c.connect_port if c.connect_port is not None else rs_key.port,
        bindto=c.bindto,
        bind_port=c.bind_port,
        bind_if=c.bind_if,
        fwmark=c.fwmark,
        connect_timeout=timeout,
    )


def _url(u: Url, vhost: str | None) -> UrlSpec:
    return UrlSpec(
        path=u.path or "/",
        status=u.effective_status,
        digest=u.digest.lower() if u.digest else None,
        virtualhost=u.virtualhost if u.virtualhost is not None else vhost,
        regex=u.regex,
        regex_no_match=u.regex_no_match,
        regex_options=u.regex_options,
        regex_min_offset=u.regex_min_offset,
        regex_max_offset=u.regex_max_offset,
    )


@dataclass(slots=True)
class _Builder:
    ssl: SslConfig | None
    helo_name: str
    gdefs: GlobalDefs
    track_files: dict[str, Any]
    bfds: frozenset[str] = frozenset()  # the bfd_instances routed to the checker
    checks: dict[Check, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def intern(self, check: Check) -> int:
        cid = self.checks.get(check)
        if cid is None:
            cid = self.checks[check] = len(self.checks)
        return cid

    def probes(
        self, vs: VirtualServer, rs: RealServer, key: RsKey, c: AnyChecker
    ) -> list[tuple[ProbeSpec, CheckerBase | BfdCheck | None]]:
        """The probe(s) one configured checker makes (SMTP host{} blocks add more)."""
        if isinstance(c, BfdCheck):
            # keepalived drops a BFD_CHECK without a name or naming a bfd_instance the
            # checker side does not know (check-config says which).
            if c.name is None or c.name not in self.bfds:
                self.skipped.append(f"BFD_CHECK {c.name} for {key} in {vs.describe()}")
                return []
            return [(BfdSpec(name=c.name), c)]
        if isinstance(c, FileCheck):
            tf = self.track_files.get(c.track_file or "")
            if tf is None or not getattr(tf, "file", None):
                self.skipped.append(f"FILE_CHECK {c.track_file} (no such track_file) for {key}")
                return []
            w = c.weight
            spec = FileSpec(
                name=tf.name,
                path=tf.file,
                weight=w.value if w is not None else tf.weight,
                reverse=w.reverse if w is not None else tf.weight_reverse,
                dynamic=c.dynamic,
            )
            return [(spec, None)]
        t = checker_timing(vs, rs, c)
        if isinstance(c, MiscCheck):
            # keepalived removes a MISC_CHECK whose script it disables.
            command = c.misc_path or ""
            r = enabled(command, c.user, c.group, self.gdefs, f"misc script {command}")
            if r is None:
                return []
            spec_m = MiscSpec(
                argv=r.argv,
                timeout=float(c.misc_timeout) if c.misc_timeout is not None else t.delay_loop,
                dynamic=c.misc_dynamic,
                uid=r.uid,
                gid=r.gid,
            )
            return [(spec_m, c)]
        assert isinstance(c, ConnectionChecker)
        # keepalived probes the real server's own port (rs->addr); only the IPVS
        # destination takes the service's port when forwarding is not NAT.
        probe_key = RsKey(rs.address, rs.port if rs.port is not None else (vs.port or 0))
        ep = _endpoint(c, probe_key, t.connect_timeout)
        if isinstance(c, HttpGet):
            vhost = next(
                (v for v in (c.virtualhost, rs.virtualhost, vs.virtualhost) if v is not None),
                None,
            )
            tls = None
            if isinstance(c, SslGet):
                s = self.ssl
                tls = TlsSpec(
                    ca=s.ca if s else None,
                    certificate=s.certificate if s else None,
                    key=s.key if s else None,
                    password=s.password if s else None,
                )
            urls = tuple(_url(u, vhost) for u in c.urls) or (
                UrlSpec(path="/", status=(StatusRange(lo=200, hi=299),), virtualhost=vhost),
            )
            return [
                (
                    HttpSpec(
                        kind=c.kind,
                        endpoint=ep,
                        urls=urls,
                        http_protocol=c.http_protocol,
                        tls=tls,
                        enable_sni=c.enable_sni,
                    ),
                    c,
                )
            ]
        if isinstance(c, SmtpCheck):
            helo = c.helo_name or self.helo_name
            # keepalived 2.x turns each deprecated host{} into a checker of its own.
            eps = [ep] if not c.hosts or c.connect_ip is not None else []
            eps += [_endpoint(h, key, t.connect_timeout) for h in c.hosts]
            return [(SmtpSpec(endpoint=e, helo_name=helo), c) for e in eps]
        if isinstance(c, DnsCheck):
            return [(DnsSpec(endpoint=ep, qtype=c.type.value, name=c.name), c)]
        if isinstance(c, UdpCheck):
            spec_u = UdpSpec(
                endpoint=ep,
                payload=c.payload,
                require_reply=c.require_reply,
                min_reply_length=c.min_reply_length,
                max_reply_length=c.max_reply_length,
            )
            return [(spec_u, c)]
        if isinstance(c, PingCheck):
            return [(PingSpec(endpoint=ep), c)]
        if isinstance(c, TcpCheck):
            return [(TcpSpec(endpoint=ep), c)]
        self.skipped.append(f"{getattr(c, 'kind', type(c).__name__)} for {key}")
        return []

    def check(self, vs: VirtualServer, rs: RealServer, probe: ProbeSpec, c: Any) -> Check:
        if isinstance(c, BfdCheck):  # pushed, never retried (update_svr_checker_state)
            alpha = inherit(c.alpha, rs.alpha, default=vs.alpha)
            return Check(probe=probe, retry=0, alpha=bool(alpha))
        if c is None:  # FILE_CHECK: polled on the real server's delay_loop
            dl = float(rs.delay_loop if rs.delay_loop is not None else vs.delay_loop)
            return Check(probe=probe, retry=0, delay_before_retry=dl, delay_loop=dl, warmup=0.0)
        t = checker_timing(vs, rs, c)
        return Check(
            probe=probe,
            retry=max(0, t.retry),
            delay_before_retry=t.delay_before_retry,
            delay_loop=t.delay_loop,
            warmup=t.warmup,
            alpha=t.alpha,
            fast_recovery=bool(getattr(c, "fast_recovery", False)),
            log_all_failures=bool(getattr(c, "log_all_failures", False)),
        )


def build_plan(config: Any, *, default_helo: str = "localhost") -> Plan:
    """Resolve `config` (a fastha.config.model.Config, or anything with its LVS fields)."""
    gd = getattr(config, "global_defs", None)
    b = _Builder(
        ssl=getattr(config, "ssl", None),
        helo_name=(getattr(gd, "smtp_helo_name", None) or default_helo),
        gdefs=gd if isinstance(gd, GlobalDefs) else GlobalDefs(),
        track_files={tf.name: tf for tf in getattr(config, "track_files", ())},
        bfds=frozenset(bfd.tracked(tuple(getattr(config, "bfd_instances", ())), vrrp=False)[0]),
    )
    vss: list[VsPlan] = []
    for vs in config.virtual_servers:
        rss: list[RsPlan] = []
        for rs in vs.real_servers:
            key = rs_key(vs, rs)
            cids: list[int] = []
            for c in rs.checkers:
                for probe, base in b.probes(vs, rs, key, c):
                    cids.append(b.intern(b.check(vs, rs, probe, base)))
            rss.append(
                RsPlan(
                    key=key,
                    weight=real_server_weight(vs, rs),
                    inhibit_on_failure=bool(
                        rs.inhibit_on_failure
                        if rs.inhibit_on_failure is not None
                        else vs.inhibit_on_failure
                    ),
                    notify_up=rs.notify_up,
                    notify_down=rs.notify_down,
                    checks=tuple(dict.fromkeys(cids)),
                )
            )
        vss.append(
            VsPlan(
                name=vs.describe(),
                protocol=vs.effective_protocol.value.lower(),
                quorum=vs.quorum,
                hysteresis=vs.hysteresis,
                quorum_up=vs.quorum_up,
                quorum_down=vs.quorum_down,
                sorry_server=sorry_key(vs),
                sorry_server_inhibit=vs.sorry_server_inhibit,
                omega=vs.omega,
                ha_suspend=vs.ha_suspend,
                vip=vs.address if vs.fwmark is None and vs.group is None else None,
                real_servers=tuple(rss),
            )
        )
    return Plan(virtual_servers=tuple(vss), checks=tuple(b.checks), skipped=tuple(b.skipped))
