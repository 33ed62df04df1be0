"""Type contract of the compiled fastha._wire module."""

# ---- codec ----
# Conventions: addresses, src and dst are *packed* bytes (4 for AF_INET, 16 for
# AF_INET6; socket.inet_pton output), so nothing is parsed on the hot path. family is
# socket.AF_INET or socket.AF_INET6. Encoders return the VRRP message only; encode_ipv4
# wraps one in the IPv4 (+ AH) header keepalived builds, for an IP_HDRINCL socket.
# Decoders raise DecodeError (a ValueError) for every drop and never read past the
# buffer; buffers are any bytes-like object.

import enum as _enum
from asyncio import AbstractEventLoop as _PTLoop
from collections.abc import Callable as _PTCallable
from collections.abc import Iterable as _Iterable
from typing import Any as _PTAny
from typing import final as _final
from typing import final as _pt_final

_Buffer = bytes | bytearray | memoryview  # any bytes-like object is accepted

AF_INET: int
AF_INET6: int
IPPROTO_VRRP: int  # 112
VRRP_TTL: int  # 255
VRRP_TYPE_ADVERTISEMENT: int  # 1
AUTH_NONE: int  # 0
AUTH_PASS: int  # 1
AUTH_AH: int  # 2: keepalived's IPsec-AH (see AhKey, encode_ipv4)
ACCEPTED: int  # 0, what Expect.check returns for an advert it accepts
IPPROTO_AH: int  # 51
AH_LEN: int  # 24: keepalived's AH header (HMAC-MD5-96 ICV)
IPTOS_PREC_INTERNETCONTROL: int  # 0xc0, the TOS of keepalived's IPv4 adverts

class DropReason(_enum.IntEnum):
    TOO_SHORT = 1
    LENGTH = 2
    IP_HEADER = 3
    PROTOCOL = 4
    TTL = 5
    VERSION = 6
    TYPE = 7
    CHECKSUM = 8
    AUTH_TYPE = 9
    AUTH_FAILURE = 10
    ADDRESS_COUNT = 11
    ADDRESS_LIST = 12
    ADVER_INT = 13

class DecodeError(ValueError):
    reason: DropReason
    detail: str
    def __init__(self, reason: int, detail: str = "") -> None: ...

def checksum(data: _Buffer, initial: int = 0) -> int:
    """RFC 1071 checksum; `initial` is an unfolded partial sum added in."""

def encode_v2(
    vrid: int,
    priority: int,
    adver_int_s: int,
    addresses: _Iterable[bytes],
    auth_type: int = 0,
    auth_data: bytes = b"",
) -> bytes:
    """VRRPv2 (RFC 3768) message; auth_data NUL-padded to 8 bytes."""

def encode_v3(
    vrid: int,
    priority: int,
    adver_int_cs: int,
    addresses: _Iterable[bytes],
    family: int,
    src: bytes | None,
    dst: bytes | None,
    checksum_as_v2: bool = False,
) -> bytes:
    """VRRPv3 (RFC 5798) message; src/dst may be None only with checksum_as_v2 on IPv4."""

@_final
class AdvertTemplate:
    """Pre-encoded advert; packet(priority) patches priority and checksum in O(1)."""

    message: bytes  # the last packet returned
    priority: int
    def __init__(
        self,
        version: int,
        vrid: int,
        priority: int,
        adver_int: int,  # v2 seconds, v3 centiseconds
        addresses: _Iterable[bytes],
        family: int = ...,
        src: bytes | None = None,
        dst: bytes | None = None,
        auth_type: int = 0,
        auth_data: bytes = b"",
        checksum_as_v2: bool = False,
    ) -> None: ...
    def packet(self, priority: int) -> bytes:
        """Same priority as last time -> the same bytes object, no allocation."""

@_final
class Advert:
    version: int
    type: int
    vrid: int
    priority: int
    count: int
    auth_type: int  # v2 only; 0 for v3
    adver_int: int  # v2: seconds; v3: centiseconds (12 bits)
    checksum: int
    family: int
    ttl: int  # -1 when not checked
    checksum_as_v2: bool  # v3 over IPv4 verified without the pseudo-header
    address_block: bytes  # count packed addresses, concatenated
    auth_data: bytes  # v2: 8 bytes; v3: b""
    src: bytes | None
    dst: bytes | None
    ah: bool  # the IPv4 packet carried keepalived's AH header (decode_ipv4 only)
    ah_spi: int
    ah_seq: int
    @property
    def addresses(self) -> tuple[bytes, ...]: ...
    @property
    def adver_int_cs(self) -> int: ...
    def to_dict(self) -> dict[str, object]: ...

def decode(
    buf: _Buffer,
    family: int,
    src: bytes | None,
    dst: bytes | None,
    ttl: int,
    checksum_as_v2: bool = False,
) -> Advert:
    """VRRP message (IPv6 raw-socket payload or IPv4 payload); ttl=-1 skips the TTL check.

    Checks, in keepalived's order: TTL, too short, version, type, length, checksum.
    Trailing bytes after the message (Ethernet padding) are ignored.
    """

def decode_ipv4(packet: _Buffer, checksum_as_v2: bool = False, check_ttl: bool = True) -> Advert:
    """Whole IPv4 packet (raw socket delivery): IHL honoured, total length bounds it;
    keepalived's AH header (protocol 51) is read into ah, ah_spi, ah_seq."""

@_final
class Expect:
    """Instance expectations (keepalived vrrp_check_packet); check() never raises."""

    version: int
    auth_type: int
    auth_data: bytes  # NUL-padded to 8
    adver_int: int
    address_block: bytes
    count: int
    check_addresses: bool
    checksum_as_v2: bool
    def __init__(
        self,
        version: int,
        auth_type: int = 0,
        auth_data: bytes = b"",
        adver_int: int = 100,
        addresses: _Iterable[bytes] = (),
        check_addresses: bool = True,
        checksum_as_v2: bool = False,
        family: int = ...,
    ) -> None: ...
    def decode(
        self, buf: _Buffer, family: int, src: bytes | None, dst: bytes | None, ttl: int
    ) -> Advert: ...
    def decode_ipv4(self, packet: _Buffer, check_ttl: bool = True) -> Advert: ...
    def check(self, advert: Advert) -> int:
        """0 (ACCEPTED) or a DropReason value: VERSION, AUTH_TYPE, AUTH_FAILURE,
        ADDRESS_COUNT, ADDRESS_LIST, ADVER_INT (v2 only)."""

@_final
class AhKey:
    """keepalived's `auth_type AH` key (auth_pass NUL-padded to 8 bytes)."""

    key: bytes
    def __init__(self, key: bytes) -> None: ...
    def icv(self, data: _Buffer) -> bytes:
        """HMAC-MD5 of data truncated to 12 bytes."""
    def verify(self, packet: _Buffer, unicast: bool = False) -> bool:
        """Whole IPv4 packet with an AH header: does its ICV match (mutable fields
        zeroed as keepalived's vrrp_in_chk_ipsecah does)?"""

def encode_ipv4(
    message: _Buffer,
    ident: int,
    ttl: int,
    src: bytes,
    dst: bytes,
    ah: AhKey | None = None,
    seq: int = 0,
    unicast: bool = False,
    tos: int = ...,
) -> bytes:
    """IPv4 header (TOS 0xc0, no DF, checksum 0 for the kernel) [+ AH] + message, as
    keepalived sends adverts on its IP_HDRINCL socket."""

def garp_frame(mac: bytes, vip: bytes) -> bytes:
    """42-byte Ethernet frame: broadcast ARP request, spa = tpa = vip, tha broadcast
    (keepalived 2.2.7's GARP)."""

def na_frame(mac: bytes, target: bytes, src: bytes | None = None, router: bool = False) -> bytes:
    """86-byte Ethernet frame: unsolicited NA to ff02::1, Override (+Router), TLLA option."""

# ---- end codec ----

# ---- precise timer ----
# One timerfd (CLOCK_MONOTONIC, absolute deadlines, non-blocking, close-on-exec) read with
# loop.add_reader, serving a binary heap of deadlines. All times are CLOCK_MONOTONIC ns.
# Callbacks run as callback(deadline_ns, now_ns, *args) from the loop's reader callback;
# an exception goes to loop.call_exception_handler and the timer carries on.

_PTCallback = _PTCallable[..., object]

# Lateness histogram size: [0] at or before the deadline, [b] in [2**(b-1), 2**b) ns,
# the last bucket also takes everything beyond.
LATENESS_BUCKETS: int

def monotonic_ns() -> int:
    """clock_gettime(CLOCK_MONOTONIC) in ns (the same clock as time.monotonic_ns)."""

class _TimerEntry:
    @property
    def deadline_ns(self) -> int:
        """The deadline the entry is (or was last) scheduled for."""
    @property
    def cancelled(self) -> bool: ...
    @property
    def active(self) -> bool:
        """True while waiting in the heap (False once a one-shot fired, or cancelled)."""
    def cancel(self) -> None:
        """O(log n) removal; a no-op when already fired or cancelled."""

@_pt_final
class TimerHandle(_TimerEntry):
    """One-shot deadline from PreciseTimer.call_at."""

    def reschedule(self, deadline_ns: int) -> None:
        """Move to a new absolute deadline; re-arms a fired or cancelled handle."""

@_pt_final
class Periodic(_TimerEntry):
    """Periodic schedule on the fixed grid first + k * interval (PreciseTimer.every).

    When a callback runs at least one interval late, the whole missed slots are skipped
    (counted in `skipped`) and the next deadline stays on the grid.
    """

    # Setting it keeps the pending deadline; the one after is pending + new interval.
    interval_ns: int
    @property
    def skipped(self) -> int: ...
    def reset(self, first_deadline_ns: int | None = None) -> None:
        """Re-anchor the grid at first_deadline_ns (default now + interval); re-arms."""

@_pt_final
class TxQueue:
    """Datagrams queued for one raw socket, sent with one sendmmsg(2) by flush().

    dests: each destination's packed struct sockaddr; control: a packed cmsg buffer
    sent with every message (or empty); on_error(errno, dest, tag) for every message
    the kernel refused (tag: the one add() was given), once the batch has left.
    Counters: eagain, enobufs, errors (any other errno).
    """

    sent: int
    eagain: int
    enobufs: int
    errors: int
    def __init__(
        self,
        fd: int,
        dests: _PTAny,
        control: bytes = b"",
        on_error: _PTAny = None,
        capacity: int = 16,
    ) -> None: ...
    @property
    def pending(self) -> int: ...
    @property
    def destinations(self) -> int: ...
    @property
    def in_pass(self) -> bool: ...
    def add(self, packet: bytes, dest: int, tag: object = None) -> int:
        """Queue packet for dests[dest] (tag: reported with its error); returns how
        many messages are queued."""
    def flush(self) -> int:
        """Send what is queued (sendmmsg, MSG_DONTWAIT); how many the kernel accepted."""
    def send(self, packet: bytes, dest: int = 0, tag: object = None) -> int:
        """Queue and flush at once."""
    def close(self) -> None:
        """Drop what is queued; later adds are refused and counted as errors."""

@_pt_final
class AdvertTx:
    """One instance's adverts on its socket's TxQueue, the send path in C: template,
    IPv4 header (src given: ID, TTL, TOS 0xc0, no AH), one copy per destination,
    each queued with tag."""

    queue: TxQueue
    tag: object
    ip_id: int
    def __init__(
        self,
        template: AdvertTemplate,
        queue: TxQueue,
        src: bytes | None,
        dsts: _PTAny,
        ttl: int = 255,
        ip_id: int = 0,
        tag: object = None,
    ) -> None: ...
    def send(self, priority: int) -> int:
        """Queue the advert for priority; copies sent now (0 while a pass holds them)."""

@_pt_final
class PreciseTimer:
    def __init__(self, loop: _PTLoop) -> None:
        """Create the timerfd (OSError on failure); start() registers it with loop."""
    def start(self) -> None:
        """loop.add_reader on the timerfd (idempotent)."""
    def close(self) -> None:
        """remove_reader, close the fd, drop every pending entry (idempotent)."""
    def call_at(self, deadline_ns: int, callback: _PTCallback, *args: _PTAny) -> TimerHandle:
        """Run callback(deadline_ns, now_ns, *args) once at the absolute deadline."""
    def every(
        self,
        interval_ns: int,
        callback: _PTCallback,
        *args: _PTAny,
        first_deadline_ns: int | None = None,
    ) -> Periodic:
        """Run callback(deadline_ns, now_ns, *args) at first + k * interval_ns.

        first_deadline_ns defaults to now + interval_ns.
        """
    after_pass: _PTAny
    """None, or a callable run with no argument after each pass that ran a callback
    (its adverts flushed, the timerfd re-armed)."""
    def add_tx(self, q: TxQueue) -> None:
        """Flush q at the end of every dispatch pass (idempotent)."""
    def remove_tx(self, q: TxQueue) -> None: ...
    @property
    def dispatching(self) -> bool:
        """True inside a dispatch pass (while callbacks run)."""
    def fileno(self) -> int: ...
    @property
    def closed(self) -> bool: ...
    @property
    def pending(self) -> int: ...
    @property
    def next_deadline_ns(self) -> int | None: ...
    @property
    def fired(self) -> int: ...
    @property
    def wakeups(self) -> int: ...
    @property
    def spurious_wakeups(self) -> int:
        """Wakeups that found nothing due (earliest entry cancelled or moved later)."""
    def lateness_histogram(self) -> list[int]:
        """LATENESS_BUCKETS counts of callback lateness (see LATENESS_BUCKETS)."""

def set_timer_slack_ns(slack_ns: int) -> None:
    """Thread timer slack via PR_SET_TIMERSLACK (0 = default 50 µs); timerfd expiry may be
    deferred by up to the slack, so the VRRP child sets 1."""

def get_timer_slack_ns() -> int:
    """Thread timer slack in ns (PR_GET_TIMERSLACK)."""

# ---- BFD codec (_wire_bfd.pxi) ----
# BFD Control packets (RFC 5880 §4.1), no authentication (keepalived 2.2.7 has none).
# Intervals are microseconds; discriminators are unsigned 32-bit.

BFD_VERSION: int  # 1
BFD_CONTROL_LEN: int  # 24
BFD_PORT: int  # 3784, RFC 5881 single hop
BFD_MULTIHOP_PORT: int  # 4784, RFC 5883
BFD_STATE_ADMIN_DOWN: int  # 0
BFD_STATE_DOWN: int  # 1
BFD_STATE_INIT: int  # 2
BFD_STATE_UP: int  # 3
BFD_DIAG_MAX: int  # 8, the highest diag keepalived accepts

class BfdDropReason(_enum.IntEnum):
    TOO_SHORT = 1
    LENGTH = 2
    VERSION = 3
    DETECT_MULT = 4
    MULTIPOINT = 5
    MY_DISCR = 6
    YOUR_DISCR = 7
    POLL_FINAL = 8
    DIAG = 9
    AUTH = 10
    TTL = 11  # decided with the session (fastha.bfd.session), not by decode_bfd
    NO_SESSION = 12  # the receiver's demux found no session
    ADMIN_DOWN = 13  # decided with the session

class BfdDecodeError(ValueError):
    reason: BfdDropReason
    detail: str
    def __init__(self, reason: int, detail: str = "") -> None: ...

@_final
class BfdControl:
    """A decoded BFD Control packet (read-only)."""

    @property
    def version(self) -> int: ...
    @property
    def diag(self) -> int: ...
    @property
    def state(self) -> int: ...
    @property
    def poll(self) -> bool: ...
    @property
    def final(self) -> bool: ...
    @property
    def cpi(self) -> bool: ...
    @property
    def auth(self) -> bool: ...
    @property
    def demand(self) -> bool: ...
    @property
    def multipoint(self) -> bool: ...
    @property
    def detect_mult(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def my_discr(self) -> int: ...
    @property
    def your_discr(self) -> int: ...
    @property
    def desired_min_tx_us(self) -> int: ...
    @property
    def required_min_rx_us(self) -> int: ...
    @property
    def required_min_echo_rx_us(self) -> int: ...
    def to_dict(self) -> dict[str, object]: ...

def decode_bfd(buf: _Buffer) -> BfdControl:
    """Decode a UDP payload; BfdDecodeError (reason TOO_SHORT..AUTH) for a drop."""

def check_bfd(buf: _Buffer) -> int:
    """0 or the BfdDropReason value decode_bfd would raise; never raises."""

def encode_bfd(
    state: int,
    diag: int,
    detect_mult: int,
    my_discr: int,
    your_discr: int,
    desired_min_tx_us: int,
    required_min_rx_us: int,
    poll: bool = False,
    final: bool = False,
    demand: bool = False,
    cpi: bool = False,
    required_min_echo_rx_us: int = 0,
) -> bytes:
    """The 24-byte Control packet; ValueError for out-of-range fields or P with F."""
