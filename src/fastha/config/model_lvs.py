"""LVS side of the keepalived.conf model: virtual servers, real servers, checkers, SSL, BFD.

Defaults are keepalived's documented ones (keepalived.conf(5), LVS CONFIGURATION).
Where keepalived inherits a setting (virtual server -> real server -> checker), the
lower level's field is None meaning "inherit"; `checker_timing` resolves the chain with
each checker type's own defaults, so runtime code never re-implements the rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from fastha.config.inherit import inherit
from fastha.config.model_bfd import BfdInstance as BfdInstance  # here too, as it was
from fastha.config.model_bfd import Weight as Weight
from fastha.config.source import Positions, Where, no_positions
from fastha.config.values import IPAddress

# IPVS's default persistence (IPVS_SVC_PERSISTENT_TIMEOUT): a bare `persistence_timeout`.
PERSISTENCE_TIMEOUT_DEFAULT = 360


class Scheduler(StrEnum):
    RR = "rr"
    WRR = "wrr"
    LC = "lc"
    WLC = "wlc"
    LBLC = "lblc"
    LBLCR = "lblcr"
    DH = "dh"
    SH = "sh"
    SED = "sed"
    NQ = "nq"
    FO = "fo"
    OVF = "ovf"
    MH = "mh"
    TWOS = "twos"


class SchedFlag(StrEnum):
    """Service flags (`-b` / `-o` in ipvsadm), each a keyword of its own."""

    HASHED = "hashed"
    OPS = "ops"
    FLAG_1 = "flag-1"
    FLAG_2 = "flag-2"
    FLAG_3 = "flag-3"
    SH_PORT = "sh-port"
    SH_FALLBACK = "sh-fallback"
    MH_PORT = "mh-port"
    MH_FALLBACK = "mh-fallback"


class Method(StrEnum):
    NAT = "NAT"
    DR = "DR"
    TUN = "TUN"


class TunnelType(StrEnum):
    IPIP = "ipip"
    GUE = "gue"
    GRE = "gre"


class TunnelCsum(StrEnum):
    NOCSUM = "nocsum"
    CSUM = "csum"
    REMCSUM = "remcsum"


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class Family(StrEnum):
    INET = "inet"
    INET6 = "inet6"


class HttpProtocol(StrEnum):
    V1_0 = "1.0"
    V1_0C = "1.0C"  # 1.0 plus "Connection: close"
    V1_1 = "1.1"


class DnsType(StrEnum):
    A = "A"
    NS = "NS"
    CNAME = "CNAME"
    SOA = "SOA"
    MX = "MX"
    TXT = "TXT"
    AAAA = "AAAA"


def family_of(address: IPAddress) -> Family:
    return Family.INET if address.version == 4 else Family.INET6


@dataclass(frozen=True, slots=True, kw_only=True)
class LvsMethod:
    """`lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`."""

    method: Method = Method.NAT
    tun_type: TunnelType | None = None  # None: kernel default (ipip)
    tun_port: int | None = None  # GUE only
    tun_csum: TunnelCsum | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyScript:
    """`notify_up "/path/script args" [username [groupname]]`."""

    command: str
    user: str | None = None
    group: str | None = None


# ---------------------------------------------------------------- virtual_server_group


@dataclass(frozen=True, slots=True, kw_only=True)
class VsgRange:
    """`IP [port]`, `IP-last [port]`, `IP-IP [port]` or `IP/len [port]`: first..last."""

    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    first: IPAddress
    last: IPAddress
    port: int | None = None  # 0/absent only for persistent services

    @property
    def family(self) -> Family:
        return family_of(self.first)


@dataclass(frozen=True, slots=True, kw_only=True)
class VsgFwmark:
    """`fwmark N [inet|inet6]`."""

    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    fwmark: int
    family: Family | None = None


VsgEntry = VsgRange | VsgFwmark


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualServerGroup:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    name: str
    items: tuple[VsgEntry, ...] = ()

    @property
    def has_ipv4(self) -> bool:
        return any(
            (isinstance(e, VsgRange) and e.family is Family.INET)
            or (isinstance(e, VsgFwmark) and e.family is Family.INET)
            for e in self.items
        )

    @property
    def has_ipv6(self) -> bool:
        return any(
            (isinstance(e, VsgRange) and e.family is Family.INET6)
            or (isinstance(e, VsgFwmark) and e.family is Family.INET6)
            for e in self.items
        )


# ---------------------------------------------------------------- checkers


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckerBase:
    """Options every checker has (MISC_CHECK only from `alpha` on; see its class)."""

    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    alpha: bool | None = None
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    log_all_failures: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionChecker(CheckerBase):
    connect_ip: IPAddress | None = None  # default: the real server's address
    connect_port: int | None = None  # default: the real server's port
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None  # needed when bindto is IPv6 link-local
    fwmark: int | None = None  # SO_MARK on the checker's packets


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRange:
    lo: int
    hi: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Url:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    path: str | None = None
    digest: str | None = None  # md5 hex (genhash)
    # keepalived's default when none is given is 200-299 (applied by `effective_status`).
    status_code: tuple[StatusRange, ...] = ()
    virtualhost: str | None = None
    regex: str | None = None
    regex_no_match: bool = False
    regex_options: tuple[str, ...] = ()
    regex_stack: tuple[int, int] | None = None
    regex_min_offset: int | None = None
    regex_max_offset: int | None = None

    @property
    def effective_status(self) -> tuple[StatusRange, ...]:
        return self.status_code or (StatusRange(lo=200, hi=299),)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpGet(ConnectionChecker):
    kind: str = "HTTP_GET"
    urls: tuple[Url, ...] = ()
    http_protocol: HttpProtocol = HttpProtocol.V1_0
    virtualhost: str | None = None
    fast_recovery: bool = False
    enable_sni: bool = False  # SSL_GET only in practice
    tls_compliant: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SslGet(HttpGet):
    kind: str = "SSL_GET"


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpCheck(ConnectionChecker):
    kind: str = "TCP_CHECK"


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpHost:
    """Deprecated `SMTP_CHECK { host { ... } }`: one more address to check."""

    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    connect_ip: IPAddress | None = None
    connect_port: int | None = None
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpCheck(ConnectionChecker):
    kind: str = "SMTP_CHECK"
    helo_name: str | None = None  # default: global smtp_helo_name / local host name
    hosts: tuple[SmtpHost, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsCheck(ConnectionChecker):
    kind: str = "DNS_CHECK"
    type: DnsType = DnsType.SOA
    name: str = "."


@dataclass(frozen=True, slots=True, kw_only=True)
class MiscCheck(CheckerBase):
    kind: str = "MISC_CHECK"
    misc_path: str | None = None
    misc_timeout: int | None = None  # default: delay_loop
    misc_dynamic: bool = False
    user: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpCheck(ConnectionChecker):
    kind: str = "UDP_CHECK"
    payload: bytes | None = None  # None: a random payload
    # None: no reply needed; "": any reply; else hex nibbles, 'x' for "don't care".
    require_reply: str | None = None
    min_reply_length: int = 0
    max_reply_length: int = 255


@dataclass(frozen=True, slots=True, kw_only=True)
class PingCheck(ConnectionChecker):
    kind: str = "PING_CHECK"


@dataclass(frozen=True, slots=True, kw_only=True)
class FileCheck:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    kind: str = "FILE_CHECK"
    track_file: str | None = None
    dynamic: bool = False
    weight: Weight | None = None  # default: the track_file's weight


@dataclass(frozen=True, slots=True, kw_only=True)
class BfdCheck:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    kind: str = "BFD_CHECK"
    name: str | None = None
    alpha: bool | None = None


Checker = HttpGet | SslGet | TcpCheck | SmtpCheck | DnsCheck | MiscCheck | UdpCheck | PingCheck
AnyChecker = Checker | FileCheck | BfdCheck


# ---------------------------------------------------------------- servers


@dataclass(frozen=True, slots=True, kw_only=True)
class RealServer:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    address: IPAddress
    port: int | None = None  # default: the virtual server's port
    weight: int | None = None  # None: the virtual server's weight (default 1)
    lvs_method: LvsMethod | None = None  # None: the virtual server's
    inhibit_on_failure: bool | None = None
    notify_up: NotifyScript | None = None
    notify_down: NotifyScript | None = None
    uthreshold: int | None = None
    lthreshold: int | None = None
    smtp_alert: bool | None = None
    virtualhost: str | None = None
    snmp_name: str | None = None
    alpha: bool | None = None
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    checkers: tuple[AnyChecker, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SorryServer:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    address: IPAddress
    port: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualServer:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    # Exactly one of address / fwmark / group is set, from the header.
    address: IPAddress | None = None
    port: int | None = None
    fwmark: int | None = None
    group: str | None = None
    delay_loop: float = 60.0
    # Unset scheduler / method / protocol: keepalived warns and uses wlc / NAT / UDP
    # (validate_lvs reports it; `effective_*` below give the value used).
    lvs_sched: Scheduler | None = None
    flags: tuple[SchedFlag, ...] = ()
    lvs_method: LvsMethod | None = None
    persistence_engine: str | None = None
    persistence_timeout: int | None = None
    # As written: an IPv4 netmask (solid) or an IPv6 prefix length.
    persistence_granularity: str | None = None
    protocol: Protocol | None = None
    weight: int = 1  # the default weight of its real servers
    ha_suspend: bool = False
    smtp_alert: bool | None = None  # None: global smtp_alert_checker / smtp_alert
    virtualhost: str | None = None
    snmp_name: str | None = None
    alpha: bool = False
    omega: bool = False
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: NotifyScript | None = None
    quorum_down: NotifyScript | None = None
    ip_family: Family | None = None
    sorry_server: SorryServer | None = None
    sorry_server_inhibit: bool = False
    sorry_server_lvs_method: LvsMethod | None = None
    connect_timeout: float = 5.0
    retry: int | None = None  # None: the checker type's default (1; DNS 3; MISC 0)
    delay_before_retry: float | None = None  # None: the checker type's default
    warmup: float | None = None  # None: delay_loop
    inhibit_on_failure: bool = False
    real_servers: tuple[RealServer, ...] = ()

    def describe(self) -> str:
        """keepalived's FMT_VS: `[10.0.0.1]:tcp:80`, `FWM 1`, or the group name."""
        if self.group is not None:
            return self.group
        if self.fwmark is not None:
            return f"FWM {self.fwmark}"
        addr = f"[{self.address}]" if self.address is not None else "[?]"
        proto = self.protocol.value.lower() if self.protocol is not None else "none"
        return f"{addr}:{proto}:{self.port or 0}"

    @property
    def effective_sched(self) -> Scheduler:
        return self.lvs_sched if self.lvs_sched is not None else Scheduler.WLC

    @property
    def effective_method(self) -> LvsMethod:
        return self.lvs_method if self.lvs_method is not None else LvsMethod()

    @property
    def effective_protocol(self) -> Protocol:
        # The kernel's default for protocol 0 is UDP; keepalived sets it explicitly.
        return self.protocol if self.protocol is not None else Protocol.UDP


@dataclass(frozen=True, slots=True, kw_only=True)
class SslConfig:
    where: Where | None = None
    positions: Positions = field(default_factory=no_positions, compare=False, repr=False)
    password: str | None = None
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None


# ---------------------------------------------------------------- inheritance


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    alpha: bool
    connect_timeout: float
    retry: int
    delay_before_retry: float
    warmup: float
    delay_loop: float


def checker_timing(vs: VirtualServer, rs: RealServer, checker: CheckerBase) -> Timing:
    """The settings a checker runs with: checker, else real server, else virtual server,
    else the checker type's default (keepalived.conf(5): DNS retry 3, MISC retry 0,
    delay_before_retry = delay_loop for DNS, 3 s for HTTP/SSL, 1 s otherwise)."""
    delay_loop = float(inherit(checker.delay_loop, rs.delay_loop, default=vs.delay_loop))
    if isinstance(checker, DnsCheck):
        retry_default, dbr_default = 3, delay_loop
    elif isinstance(checker, MiscCheck):
        retry_default, dbr_default = 0, 1.0
    elif isinstance(checker, HttpGet):
        retry_default, dbr_default = 1, 3.0
    else:
        retry_default, dbr_default = 1, 1.0
    return Timing(
        alpha=bool(inherit(checker.alpha, rs.alpha, default=vs.alpha)),
        connect_timeout=float(
            inherit(checker.connect_timeout, rs.connect_timeout, default=vs.connect_timeout)
        ),
        retry=int(inherit(checker.retry, rs.retry, vs.retry, default=retry_default)),
        delay_before_retry=float(
            inherit(
                checker.delay_before_retry,
                rs.delay_before_retry,
                vs.delay_before_retry,
                default=dbr_default,
            )
        ),
        warmup=float(inherit(checker.warmup, rs.warmup, vs.warmup, default=delay_loop)),
        delay_loop=delay_loop,
    )


def real_server_method(vs: VirtualServer, rs: RealServer) -> LvsMethod:
    return rs.lvs_method if rs.lvs_method is not None else vs.effective_method


def real_server_weight(vs: VirtualServer, rs: RealServer) -> int:
    return rs.weight if rs.weight is not None else vs.weight


def sorry_server_method(vs: VirtualServer) -> LvsMethod:
    if vs.sorry_server_lvs_method is not None:
        return vs.sorry_server_lvs_method
    return vs.effective_method
