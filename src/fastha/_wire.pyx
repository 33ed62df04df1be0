# cython: language_level=3
"""fastha._wire: the compiled hot path (VRRP codec, checksums, frames, precise timer).

The codec part comes first (up to `# ---- end codec ----`); see fastha.wire for the
public face and fastha/_wire.pyi for the contract.
"""

# ---- codec ----
# VRRP v2/v3 codec, RFC 1071 checksums, receive-side validation, GARP / unsolicited NA
# frames. Every read of untrusted input goes through a Cursor (cur_take), which returns
# NULL instead of reading past the end: no input can make the decoder overrun a buffer.

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.sequence cimport PySequence_Fast, PySequence_Fast_GET_ITEM, PySequence_Fast_GET_SIZE
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

import enum as _enum
import socket as _socket

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
IPPROTO_VRRP = 112
VRRP_TTL = 255  # RFC 3768 5.2.3 / RFC 5798 5.1.1.3: TTL / hop limit MUST be 255
VRRP_TYPE_ADVERTISEMENT = 1
AUTH_NONE = 0
AUTH_PASS = 1
AUTH_AH = 2
ACCEPTED = 0
IPPROTO_AH = 51
AH_LEN = 24  # keepalived's ipsec_ah_t: RFC 2402 2 with a 96-bit ICV
IPTOS_PREC_INTERNETCONTROL = 0xC0  # keepalived's adverts: TOS 0xc0 (DSCP CS6)

cdef int C_AF_INET = _socket.AF_INET
cdef int C_AF_INET6 = _socket.AF_INET6


cdef enum:
    # Mirrors DropReason; C constants so the hot path compares ints, not enum objects.
    R_TOO_SHORT = 1
    R_LENGTH = 2
    R_IP_HEADER = 3
    R_PROTOCOL = 4
    R_TTL = 5
    R_VERSION = 6
    R_TYPE = 7
    R_CHECKSUM = 8
    R_AUTH_TYPE = 9
    R_AUTH_FAILURE = 10
    R_ADDRESS_COUNT = 11
    R_ADDRESS_LIST = 12
    R_ADVER_INT = 13


class DropReason(_enum.IntEnum):
    """Why a received packet was dropped (0, ACCEPTED, is not a drop)."""

    TOO_SHORT = R_TOO_SHORT  # shorter than the fixed VRRP (or IPv4) header
    LENGTH = R_LENGTH  # count implies more than present, or IP total length inconsistent
    IP_HEADER = R_IP_HEADER  # IPv4 header malformed (version != 4, IHL < 5)
    PROTOCOL = R_PROTOCOL  # IP protocol is not 112 (VRRP)
    TTL = R_TTL  # TTL / hop limit != 255
    VERSION = R_VERSION  # not 2 or 3, v2 over IPv6, or not the instance's version
    TYPE = R_TYPE  # not ADVERTISEMENT (1)
    CHECKSUM = R_CHECKSUM
    AUTH_TYPE = R_AUTH_TYPE  # v2 auth type differs from the instance's
    AUTH_FAILURE = R_AUTH_FAILURE  # v2 PASS password differs
    ADDRESS_COUNT = R_ADDRESS_COUNT  # count differs from the instance's VIP count
    ADDRESS_LIST = R_ADDRESS_LIST  # same count, different addresses
    ADVER_INT = R_ADVER_INT  # v2 advert interval differs (v3 adopts the master's)


class DecodeError(ValueError):
    """A received packet that must be dropped; `reason` is a DropReason."""

    def __init__(self, reason, detail=""):
        self.reason = DropReason(reason)
        self.detail = detail
        ValueError.__init__(self, f"{self.reason.name.lower()}{': ' if detail else ''}{detail}")


cdef object _drop(int reason, str detail=""):
    return DecodeError(reason, detail)


# ---- cursor: the only way the decoder reads input ----

cdef struct Cursor:
    const uint8_t* buf
    Py_ssize_t end
    Py_ssize_t pos


cdef inline const uint8_t* cur_take(Cursor* c, Py_ssize_t n) noexcept nogil:
    """Pointer to the next n bytes and advance, or NULL if fewer than n remain."""
    cdef const uint8_t* p
    if n < 0 or n > c.end - c.pos:
        return NULL
    p = c.buf + c.pos
    c.pos += n
    return p


# ---- RFC 1071 Internet checksum ----

cdef inline uint64_t csum_add(uint64_t acc, const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """One's-complement partial sum of big-endian 16-bit words; an odd tail is zero-padded."""
    cdef Py_ssize_t i = 0
    while i + 1 < n:
        acc += (<uint64_t>p[i] << 8) | p[i + 1]
        i += 2
    if n & 1:
        acc += <uint64_t>p[n - 1] << 8
    return acc


cdef inline uint16_t csum_fold(uint64_t acc) noexcept nogil:
    """Fold carries back in (RFC 1071 4.1) and complement."""
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return <uint16_t>(~acc & 0xFFFF)


cdef inline uint64_t pseudo_sum(int family, const uint8_t* src, const uint8_t* dst,
                                Py_ssize_t length, int proto) noexcept nogil:
    """Pseudo-header partial sum: RFC 768/791 for IPv4, RFC 8200 8.1 for IPv6."""
    cdef Py_ssize_t alen = 4 if family == C_AF_INET else 16
    cdef uint64_t acc = csum_add(0, src, alen)
    acc = csum_add(acc, dst, alen)
    # IPv4: zero, protocol, 16-bit length; IPv6: 32-bit length, 3 zero bytes, next header.
    acc += <uint64_t>(length & 0xFFFF) + <uint64_t>((length >> 16) & 0xFFFF) + <uint64_t>proto
    return acc


def checksum(data, int initial=0):
    """RFC 1071 checksum of a bytes-like object; `initial` is a partial sum to add in."""
    cdef Py_buffer view
    cdef uint64_t acc
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        acc = csum_add(<uint64_t>initial, <const uint8_t*>view.buf, view.len)
    finally:
        PyBuffer_Release(&view)
    return csum_fold(acc)


cdef inline Py_ssize_t _alen(int family) except -1:
    if family == C_AF_INET:
        return 4
    if family == C_AF_INET6:
        return 16
    raise ValueError(f"family must be AF_INET or AF_INET6, not {family}")


cdef inline bytes _addr_arg(object a, Py_ssize_t alen, str what):
    """A packed address argument as bytes of the family's length (API misuse raises)."""
    if type(a) is not bytes:
        if a is None:
            raise ValueError(f"{what} is required")
        a = bytes(a)
    if PyBytes_GET_SIZE(a) != alen:
        raise ValueError(f"{what} must be {alen} packed bytes, got {PyBytes_GET_SIZE(a)}")
    return <bytes>a


# ---- VRRP messages ----
#
# VRRPv2, RFC 3768 5.1 (IPv4 only):
#     0                   1                   2                   3
#     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#    |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#    |   Auth Type   |   Adver Int   |          Checksum             |
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#    |                         IP Address (1)                        |
#    |                            ...                                |
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#    |                     Authentication Data (1)                   |
#    |                     Authentication Data (2)                   |
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#
# VRRPv3, RFC 5798 5.1 (IPv4 or IPv6):
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#    |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#    |(rsvd) |     Max Adver Int     |          Checksum             |
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#    |                 IPvX Address(es) (4 or 16 bytes each)         |
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

cdef bytes _ZERO8 = b"\x00" * 8
cdef bytes _EMPTY = b""


cdef bytes _encode(int version, int vrid, int priority, int adver_int, object addresses,
                   int family, object src, object dst, int auth_type, object auth_data,
                   bint as_v2, uint64_t* base_out):
    """Build one message. If base_out, store the checksum partial sum with priority 0."""
    cdef Py_ssize_t alen = _alen(family)
    cdef Py_ssize_t count, i, n
    cdef bytes a, out, s, d, auth = _EMPTY
    cdef uint8_t* p
    cdef uint64_t acc = 0
    if not 0 <= vrid <= 255:
        raise ValueError(f"vrid must be 0..255, not {vrid}")
    if not 0 <= priority <= 255:
        raise ValueError(f"priority must be 0..255, not {priority}")
    # PySequence_Fast: a list or tuple is used as is (no copy on the per-send path).
    addrs = PySequence_Fast(addresses, "addresses must be a sequence of packed addresses")
    count = PySequence_Fast_GET_SIZE(addrs)
    if count > 255:
        raise ValueError(f"at most 255 addresses fit in one advert, not {count}")
    if version == 2:
        if family != C_AF_INET:
            raise ValueError("VRRPv2 is IPv4 only (RFC 3768)")
        if not 0 <= adver_int <= 255:
            raise ValueError(f"v2 adver_int is 0..255 seconds, not {adver_int}")
        if not 0 <= auth_type <= 255:
            raise ValueError(f"auth_type must be 0..255, not {auth_type}")
        auth = auth_data if type(auth_data) is bytes else bytes(auth_data)
        if PyBytes_GET_SIZE(auth) > 8:
            raise ValueError("v2 auth data is at most 8 bytes (RFC 3768 5.3.10)")
        n = 8 + count * 4 + 8
    else:
        if not 0 <= adver_int <= 4095:
            raise ValueError(f"v3 adver_int is 0..4095 centiseconds, not {adver_int}")
        n = 8 + count * alen
    out = PyBytes_FromStringAndSize(NULL, n)
    p = <uint8_t*>PyBytes_AS_STRING(out)
    memset(p, 0, n)
    p[0] = <uint8_t>((version << 4) | VRRP_TYPE_ADVERTISEMENT)
    p[1] = <uint8_t>vrid
    p[2] = <uint8_t>priority
    p[3] = <uint8_t>count
    if version == 2:
        p[4] = <uint8_t>auth_type
        p[5] = <uint8_t>adver_int
    else:
        p[4] = <uint8_t>(adver_int >> 8)  # top 4 bits (reserved) stay zero
        p[5] = <uint8_t>(adver_int & 0xFF)
    for i in range(count):
        a = _addr_arg(<object>PySequence_Fast_GET_ITEM(addrs, i), alen, "address")
        memcpy(p + 8 + i * alen, PyBytes_AS_STRING(a), alen)
    if version == 2:
        # PASS: password NUL-padded to 8 bytes (RFC 2338 5.3.10); none: 8 zero bytes.
        memcpy(p + 8 + count * 4, PyBytes_AS_STRING(auth), PyBytes_GET_SIZE(auth))
    elif not (family == C_AF_INET and as_v2):
        # RFC 5798 5.2.8: v3 checksum covers the IPv4/IPv6 pseudo-header.
        s = _addr_arg(src, alen, "src")
        d = _addr_arg(dst, alen, "dst")
        acc = pseudo_sum(family, <const uint8_t*>PyBytes_AS_STRING(s),
                         <const uint8_t*>PyBytes_AS_STRING(d), n, IPPROTO_VRRP)
    p[2] = 0
    acc = csum_add(acc, p, n)
    if base_out != NULL:
        base_out[0] = acc
    acc += <uint64_t>priority << 8
    cdef uint16_t ck = csum_fold(acc)
    p[2] = <uint8_t>priority
    p[6] = <uint8_t>(ck >> 8)
    p[7] = <uint8_t>(ck & 0xFF)
    return out


def encode_v2(int vrid, int priority, int adver_int_s, addresses, int auth_type=0,
              auth_data=b""):
    """VRRPv2 advert (RFC 3768) for an IPv4 raw socket: the VRRP message only."""
    return _encode(2, vrid, priority, adver_int_s, addresses, C_AF_INET, None, None,
                   auth_type, auth_data, False, NULL)


def encode_v3(int vrid, int priority, int adver_int_cs, addresses, int family, src, dst,
              bint checksum_as_v2=False):
    """VRRPv3 advert (RFC 5798): the VRRP message only, checksum over the pseudo-header."""
    return _encode(3, vrid, priority, adver_int_cs, addresses, family, src, dst, 0, b"",
                   checksum_as_v2, NULL)


@cython.final
cdef class AdvertTemplate:
    """A pre-encoded advert whose priority alone changes between sends.

    The checksum partial sum without the priority is kept, so a new priority costs one
    add and fold (RFC 1624 style) and one copy; the same priority returns the same object.
    """

    cdef readonly bytes message
    cdef bytes _zero
    cdef uint64_t _base
    cdef int _priority

    def __init__(self, int version, int vrid, int priority, int adver_int, addresses,
                 int family=C_AF_INET, src=None, dst=None, int auth_type=0, auth_data=b"",
                 bint checksum_as_v2=False):
        if version not in (2, 3):
            raise ValueError(f"version must be 2 or 3, not {version}")
        self._zero = _encode(version, vrid, 0, adver_int, addresses, family, src, dst,
                             auth_type, auth_data, checksum_as_v2, &self._base)
        self._priority = -1
        self.packet(priority)

    @property
    def priority(self):
        return self._priority

    cpdef bytes packet(self, int priority):
        """The message for `priority` (0..255), checksum updated."""
        cdef bytes out
        cdef uint8_t* p
        cdef uint16_t ck
        cdef Py_ssize_t n
        if priority == self._priority:
            return self.message
        if not 0 <= priority <= 255:
            raise ValueError(f"priority must be 0..255, not {priority}")
        n = PyBytes_GET_SIZE(self._zero)
        out = PyBytes_FromStringAndSize(PyBytes_AS_STRING(self._zero), n)
        p = <uint8_t*>PyBytes_AS_STRING(out)
        ck = csum_fold(self._base + (<uint64_t>priority << 8))
        p[2] = <uint8_t>priority
        p[6] = <uint8_t>(ck >> 8)
        p[7] = <uint8_t>(ck & 0xFF)
        self.message = out
        self._priority = priority
        return out


@cython.final
@cython.freelist(16)
cdef class Advert:
    """A decoded advert that passed the instance-independent checks. Read-only."""

    cdef readonly int version
    cdef readonly int type
    cdef readonly int vrid
    cdef readonly int priority
    cdef readonly int count
    cdef readonly int auth_type
    cdef readonly int adver_int
    cdef readonly int checksum
    cdef readonly int family
    cdef readonly int ttl
    cdef readonly bint checksum_as_v2
    cdef readonly bytes address_block
    cdef readonly bytes auth_data
    cdef readonly bytes src
    cdef readonly bytes dst
    # keepalived's IPsec-AH (IPv4 protocol 51 before the VRRPv2 message): SPI and
    # sequence number as received; the ICV is checked by AhKey.verify on the packet.
    cdef readonly bint ah
    cdef readonly uint32_t ah_spi
    cdef readonly uint32_t ah_seq

    @property
    def addresses(self):
        """Tuple of packed addresses (4 or 16 bytes each), in wire order."""
        cdef Py_ssize_t alen = 4 if self.family == C_AF_INET else 16
        b = self.address_block
        return tuple([b[i:i + alen] for i in range(0, len(b), alen)])

    @property
    def adver_int_cs(self):
        """Advert interval in centiseconds whatever the version."""
        return self.adver_int * 100 if self.version == 2 else self.adver_int

    def to_dict(self):
        """JSON-ready view; addresses as text."""
        ntop = _socket.inet_ntop
        d = {
            "version": self.version,
            "type": self.type,
            "vrid": self.vrid,
            "priority": self.priority,
            "count": self.count,
        }
        if self.version == 2:
            d["auth_type"] = self.auth_type
            d["adver_int"] = self.adver_int
        else:
            d["max_adver_int"] = self.adver_int
        d["checksum"] = self.checksum
        if self.version == 3 and self.family == C_AF_INET:
            d["checksum_as_v2"] = bool(self.checksum_as_v2)
        d["addresses"] = [ntop(self.family, a) for a in self.addresses]
        if self.version == 2:
            d["auth_data"] = self.auth_data.hex()
        d["family"] = "ipv4" if self.family == C_AF_INET else "ipv6"
        if self.src is not None:
            d["src"] = ntop(self.family, self.src)
        if self.dst is not None:
            d["dst"] = ntop(self.family, self.dst)
        if self.ttl >= 0:
            d["ttl"] = self.ttl
        if self.ah:
            d["ah_spi"] = self.ah_spi
            d["ah_seq"] = self.ah_seq
        return d

    def __repr__(self):
        return f"Advert({self.to_dict()!r})"

    def __eq__(self, other):
        if not isinstance(other, Advert):
            return NotImplemented
        return self.to_dict() == (<Advert>other).to_dict()

    __hash__ = None  # compared by value, mutable-free but not meant as a dict key


cdef Advert _decode(const uint8_t* data, Py_ssize_t n, int family, object src, object dst,
                    int ttl, bint as_v2):
    """Instance-independent checks, in keepalived's order (vrrp.c vrrp_check_packet)."""
    cdef Cursor c
    cdef const uint8_t* hdr
    cdef const uint8_t* addrs
    cdef const uint8_t* auth = NULL
    cdef Py_ssize_t alen = _alen(family)
    cdef int version, count
    cdef uint64_t acc = 0
    cdef bytes s = None, d = None
    c.buf = data
    c.end = n
    c.pos = 0
    # RFC 3768 7.1 / RFC 5798 7.1: TTL / hop limit MUST be 255 (not on the same link else).
    if ttl >= 0 and ttl != VRRP_TTL:
        raise _drop(R_TTL, f"{ttl}")
    hdr = cur_take(&c, 8)
    if hdr == NULL:
        raise _drop(R_TOO_SHORT, f"{n} bytes")
    version = hdr[0] >> 4
    if version == 2:
        if family != C_AF_INET:
            raise _drop(R_VERSION, "v2 over IPv6")
    elif version != 3:
        raise _drop(R_VERSION, f"{version}")
    if hdr[0] & 0x0F != VRRP_TYPE_ADVERTISEMENT:
        raise _drop(R_TYPE, f"{hdr[0] & 0x0F}")
    count = hdr[3]
    addrs = cur_take(&c, count * alen)
    if addrs == NULL:
        raise _drop(R_LENGTH, f"count {count} needs {8 + count * alen} bytes, got {n}")
    if version == 2:
        auth = cur_take(&c, 8)
        if auth == NULL:
            raise _drop(R_LENGTH, f"no room for auth data ({n} bytes)")
    elif not (family == C_AF_INET and as_v2):
        s = _addr_arg(src, alen, "src")
        d = _addr_arg(dst, alen, "dst")
        acc = pseudo_sum(family, <const uint8_t*>PyBytes_AS_STRING(s),
                         <const uint8_t*>PyBytes_AS_STRING(d), c.pos, IPPROTO_VRRP)
    # The checksum covers the VRRP message only: trailing Ethernet padding is not ours.
    if csum_fold(csum_add(acc, data, c.pos)) != 0:
        raise _drop(R_CHECKSUM, f"0x{(hdr[6] << 8) | hdr[7]:04x}")
    cdef Advert a = Advert.__new__(Advert)
    a.version = version
    a.type = hdr[0] & 0x0F
    a.vrid = hdr[1]
    a.priority = hdr[2]
    a.count = count
    if version == 2:
        a.auth_type = hdr[4]
        a.adver_int = hdr[5]
        if memcmp(auth, PyBytes_AS_STRING(_ZERO8), 8) == 0:
            a.auth_data = _ZERO8
        else:
            a.auth_data = PyBytes_FromStringAndSize(<const char*>auth, 8)
    else:
        a.auth_type = 0
        a.adver_int = ((hdr[4] & 0x0F) << 8) | hdr[5]
        a.auth_data = _EMPTY
    a.checksum = (hdr[6] << 8) | hdr[7]
    a.family = family
    a.ttl = ttl
    a.checksum_as_v2 = version == 3 and family == C_AF_INET and as_v2
    a.address_block = PyBytes_FromStringAndSize(<const char*>addrs, count * alen)
    if s is None and src is not None:
        s = _addr_arg(src, alen, "src")
    if d is None and dst is not None:
        d = _addr_arg(dst, alen, "dst")
    a.src = s
    a.dst = d
    return a


def decode(buf, int family, src, dst, int ttl, bint checksum_as_v2=False):
    """Decode a VRRP message (IPv6 raw-socket payload, or IPv4 payload) -> Advert.

    src/dst are packed (4 or 16 bytes); ttl is the TTL / hop limit, -1 to skip the check.
    Raises DecodeError(reason) for every drop.
    """
    cdef Py_buffer view
    if type(buf) is bytes:
        return _decode(<const uint8_t*>PyBytes_AS_STRING(buf), PyBytes_GET_SIZE(buf),
                       family, src, dst, ttl, checksum_as_v2)
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        return _decode(<const uint8_t*>view.buf, view.len, family, src, dst, ttl,
                       checksum_as_v2)
    finally:
        PyBuffer_Release(&view)


# IPv4 header, RFC 791 3.1 (as an IPv4 raw socket delivers it):
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#    |Version|  IHL  |Type of Service|          Total Length         |
#    |         Identification        |Flags|      Fragment Offset    |
#    |  Time to Live |    Protocol   |         Header Checksum       |
#    |                       Source Address                          |
#    |                    Destination Address                        |
#    |                    Options (IHL > 5)                          |
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+

cdef Advert _decode_ipv4(const uint8_t* data, Py_ssize_t n, bint as_v2, bint check_ttl=True):
    cdef Cursor c
    cdef const uint8_t* ip
    cdef Py_ssize_t ihl, total
    c.buf = data
    c.end = n
    c.pos = 0
    ip = cur_take(&c, 20)
    if ip == NULL:
        raise _drop(R_TOO_SHORT, f"{n} bytes, no IPv4 header")
    if ip[0] >> 4 != 4:
        raise _drop(R_IP_HEADER, f"IP version {ip[0] >> 4}")
    ihl = (ip[0] & 0x0F) * 4
    if ihl < 20:
        raise _drop(R_IP_HEADER, f"IHL {ihl // 4}")
    total = (ip[2] << 8) | ip[3]
    if cur_take(&c, ihl - 20) == NULL or total < ihl or total > n:
        raise _drop(R_LENGTH, f"IP total length {total}, IHL {ihl // 4}, got {n} bytes")
    cdef const uint8_t* ah = NULL
    cdef Advert a
    if ip[9] == IPPROTO_AH:
        # keepalived's AH header (vrrp_ipsecah.h), then the VRRP message.
        ah = cur_take(&c, AH_LEN)
        if ah == NULL or total < ihl + AH_LEN:
            raise _drop(R_LENGTH, f"no room for the AH header ({n} bytes)")
        if ah[0] != IPPROTO_VRRP:
            raise _drop(R_PROTOCOL, f"AH next header {ah[0]}")
        ihl += AH_LEN
    elif ip[9] != IPPROTO_VRRP:
        raise _drop(R_PROTOCOL, f"{ip[9]}")
    # Total length bounds the message: Ethernet padding beyond it is ignored.
    a = _decode(data + ihl, total - ihl, C_AF_INET,
                PyBytes_FromStringAndSize(<const char*>ip + 12, 4),
                PyBytes_FromStringAndSize(<const char*>ip + 16, 4), ip[8] if check_ttl else -1,
                as_v2)
    if ah != NULL:
        a.ah = True
        a.ah_spi = (<uint32_t>ah[4] << 24) | (<uint32_t>ah[5] << 16) | (<uint32_t>ah[6] << 8) | ah[7]
        a.ah_seq = (<uint32_t>ah[8] << 24) | (<uint32_t>ah[9] << 16) | (<uint32_t>ah[10] << 8) | ah[11]
    return a


def decode_ipv4(packet, bint checksum_as_v2=False, bint check_ttl=True):
    """Decode a whole IPv4 packet as an IPv4 raw socket delivers it (header included).

    check_ttl=False skips the TTL 255 check (keepalived makes it for multicast only)."""
    cdef Py_buffer view
    if type(packet) is bytes:
        return _decode_ipv4(<const uint8_t*>PyBytes_AS_STRING(packet),
                            PyBytes_GET_SIZE(packet), checksum_as_v2, check_ttl)
    PyObject_GetBuffer(packet, &view, PyBUF_SIMPLE)
    try:
        return _decode_ipv4(<const uint8_t*>view.buf, view.len, checksum_as_v2, check_ttl)
    finally:
        PyBuffer_Release(&view)


@cython.final
cdef class Expect:
    """One instance's expectations of a received advert (keepalived vrrp_check_packet).

    check(advert) -> 0 (ACCEPTED) or a DropReason value; never raises, never allocates
    on the accept path.
    """

    cdef readonly int version
    cdef readonly int auth_type
    cdef readonly bytes auth_data
    cdef readonly int adver_int
    cdef readonly bytes address_block
    cdef readonly int count
    cdef readonly bint check_addresses
    cdef readonly bint checksum_as_v2
    cdef frozenset _set
    cdef Py_ssize_t _alen

    def __init__(self, int version, int auth_type=0, auth_data=b"", int adver_int=100,
                 addresses=(), bint check_addresses=True, bint checksum_as_v2=False,
                 int family=C_AF_INET):
        cdef bytes pw = bytes(auth_data)
        if version not in (2, 3):
            raise ValueError(f"version must be 2 or 3, not {version}")
        self._alen = _alen(family)
        if len(pw) > 8:
            # keepalived truncates auth_pass to 8 characters, so do we.
            pw = pw[:8]
        self.version = version
        self.auth_type = auth_type
        self.auth_data = pw + b"\x00" * (8 - len(pw))
        self.adver_int = adver_int
        addrs = tuple(_addr_arg(a, self._alen, "address") for a in addresses)
        self.address_block = b"".join(addrs)
        self.count = len(addrs)
        self._set = frozenset(addrs)
        self.check_addresses = check_addresses
        self.checksum_as_v2 = checksum_as_v2

    def decode(self, buf, int family, src, dst, int ttl):
        """decode() with this instance's checksum_as_v2 setting."""
        return decode(buf, family, src, dst, ttl, self.checksum_as_v2)

    def decode_ipv4(self, packet, bint check_ttl=True):
        return decode_ipv4(packet, self.checksum_as_v2, check_ttl)

    cpdef int check(self, Advert advert):
        """0 if the advert is for us as configured, else the DropReason value."""
        if advert.version != self.version:
            return R_VERSION
        if self.version == 2:
            # RFC 3768 7.1: auth type must match; PASS compares all 8 bytes.
            if advert.auth_type != self.auth_type:
                return R_AUTH_TYPE
            if self.auth_type == AUTH_PASS and advert.auth_data != self.auth_data:
                return R_AUTH_FAILURE
        if self.check_addresses:
            # keepalived: count must match and every configured VIP must be present.
            if advert.count != self.count:
                return R_ADDRESS_COUNT
            if advert.address_block != self.address_block:
                if frozenset(advert.addresses) != self._set:
                    return R_ADDRESS_LIST
        # RFC 3768 7.1: v2 drops a differing interval; v3 adopts the master's (5798 6.4.2).
        if self.version == 2 and advert.adver_int != self.adver_int:
            return R_ADVER_INT
        return 0


# ---- IPv4 header and IPsec-AH, as keepalived builds them (IP_HDRINCL) ----
#
# keepalived 2.2.7 writes the IPv4 header of every advert itself (vrrp.c vrrp_build_ip4):
# TOS 0xc0, ID from a per-instance counter that skips 0 (the kernel would pick one),
# no DF, no fragment offset, TTL, protocol 112 or 51. The kernel fills in the header
# checksum. With `auth_type AH` an IPsec-AH header (RFC 2402 2, vrrp_build_ipsecah)
# sits between the IPv4 header and the VRRPv2 message:
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#    | Next Header   |  Payload Len  |          RESERVED             |
#    |                 Security Parameters Index (SPI)               |
#    |                    Sequence Number Field                      |
#    |          Authentication Data: HMAC-MD5-96 (12 bytes)          |
#    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
# next header 112, payload length 4, SPI = the IPv4 source address, sequence number
# from the instance's counter. The ICV is HMAC-MD5 (RFC 2104) keyed by auth_pass
# NUL-padded to 8 bytes, over the IPv4 header with TOS, fragment field and checksum
# zeroed (and TTL too for unicast: vrrp_update_pkt / vrrp_in_chk_ipsecah), then the AH
# header with a zero ICV, then the VRRP message; truncated to 96 bits.

cdef int _AH_PLEN = 4


@cython.final
cdef class AhKey:
    """keepalived's AH authentication key: computes and checks the HMAC-MD5-96 ICV."""

    cdef readonly bytes key
    cdef object _hmac
    cdef object _compare

    def __init__(self, key):
        cdef bytes k = bytes(key)[:8]
        # hmac here, not at the top: it loads OpenSSL's libcrypto (~4 MB of RSS), which
        # a process without AH never needs (issue 19).
        import hmac

        self.key = k + b"\x00" * (8 - len(k))
        self._hmac = hmac.new(self.key, digestmod="md5")
        self._compare = hmac.compare_digest

    cpdef bytes icv(self, data):
        """The 12-byte truncated HMAC-MD5 of `data` (a prepared, zeroed packet)."""
        h = self._hmac.copy()
        h.update(data)
        return h.digest()[:12]

    def verify(self, packet, bint unicast=False):
        """True if `packet` (a whole IPv4 packet with an AH header) carries our ICV.

        The mutable fields are zeroed in a copy as keepalived's vrrp_in_chk_ipsecah
        does; the IPv4 total length bounds the data covered (Ethernet padding is not).
        """
        cdef bytes b = bytes(packet)
        cdef Py_ssize_t n = len(b), ihl, total
        if n < 20 + AH_LEN:
            return False
        ihl = (b[0] & 0x0F) * 4
        total = (b[2] << 8) | b[3]
        if ihl < 20 or b[9] != IPPROTO_AH or total > n or total < ihl + AH_LEN:
            return False
        head = bytearray(b[:ihl + AH_LEN])
        head[1] = 0  # TOS
        head[6] = 0  # flags + fragment offset
        head[7] = 0
        head[10] = 0  # header checksum
        head[11] = 0
        if unicast:
            head[8] = 0  # TTL
        head[ihl + 12:ihl + AH_LEN] = _ZERO12
        h = self._hmac.copy()
        h.update(head)
        h.update(b[ihl + AH_LEN:total])
        return self._compare(h.digest()[:12], b[ihl + 12:ihl + AH_LEN])


cdef bytes _ZERO12 = b"\x00" * 12


cdef inline void _ipv4_head(uint8_t* p, Py_ssize_t n, Py_ssize_t hl, int ident, int proto,
                            const char* src, const char* dst) noexcept nogil:
    """keepalived's IPv4 header (vrrp_build_ip4) at p, TOS and TTL still zero: total
    length n, ID, no DF, protocol, addresses; the checksum is left to the kernel."""
    memset(p, 0, hl)
    p[0] = 0x45
    p[2] = <uint8_t>(n >> 8)
    p[3] = <uint8_t>(n & 0xFF)
    p[4] = <uint8_t>(ident >> 8)
    p[5] = <uint8_t>(ident & 0xFF)
    p[9] = <uint8_t>proto
    memcpy(p + 12, src, 4)
    memcpy(p + 16, dst, 4)


def encode_ipv4(message, int ident, int ttl, src, dst, AhKey ah=None, unsigned long seq=0,
                bint unicast=False, int tos=IPTOS_PREC_INTERNETCONTROL):
    """IPv4 header (+ AH header when `ah`) + `message`, for an IP_HDRINCL raw socket.

    The header checksum is left 0 for the kernel to fill in (it always does with
    IP_HDRINCL); `ident` must be non-zero or the kernel picks its own. `seq` is the AH
    sequence number, `unicast` zeroes the TTL in the ICV as keepalived does.
    """
    cdef bytes m = message if type(message) is bytes else bytes(message)
    cdef bytes s = _addr_arg(src, 4, "src"), d = _addr_arg(dst, 4, "dst"), out
    cdef Py_ssize_t hl = 20 + (AH_LEN if ah is not None else 0)
    cdef Py_ssize_t n = hl + PyBytes_GET_SIZE(m)
    cdef uint8_t* p
    if not 0 <= ident <= 0xFFFF:
        raise ValueError(f"ident must be 0..65535, not {ident}")
    if not 0 <= ttl <= 255:
        raise ValueError(f"ttl must be 0..255, not {ttl}")
    if not 0 <= tos <= 255:
        raise ValueError(f"tos must be 0..255, not {tos}")
    if seq > 0xFFFFFFFF:
        raise ValueError(f"seq must fit 32 bits, not {seq}")
    if n > 0xFFFF:
        raise ValueError(f"packet of {n} bytes does not fit IPv4")
    out = PyBytes_FromStringAndSize(NULL, n)
    p = <uint8_t*>PyBytes_AS_STRING(out)
    _ipv4_head(p, n, hl, ident, IPPROTO_AH if ah is not None else IPPROTO_VRRP,
               PyBytes_AS_STRING(s), PyBytes_AS_STRING(d))
    memcpy(p + hl, PyBytes_AS_STRING(m), PyBytes_GET_SIZE(m))
    if ah is not None:
        p[20] = IPPROTO_VRRP
        p[21] = <uint8_t>_AH_PLEN
        memcpy(p + 24, PyBytes_AS_STRING(s), 4)  # SPI: the source address
        p[28] = <uint8_t>(seq >> 24)
        p[29] = <uint8_t>((seq >> 16) & 0xFF)
        p[30] = <uint8_t>((seq >> 8) & 0xFF)
        p[31] = <uint8_t>(seq & 0xFF)
        # TOS, fragment field, checksum (and TTL for unicast) are zero right now.
        p[8] = 0 if unicast else <uint8_t>ttl
        icv = ah.icv(out)
        memcpy(p + 32, PyBytes_AS_STRING(icv), 12)
    p[1] = <uint8_t>tos
    p[8] = <uint8_t>ttl
    return out


# ---- frames for AF_PACKET ----
#
# Gratuitous ARP (RFC 826 / RFC 5227 3), as keepalived 2.2.7 sends it (vrrp_arp.c
# send_gratuitous_arp_immediate):
#    Ethernet  dst ff:ff:ff:ff:ff:ff  src MAC  type 0x0806
#    ARP       htype 1  ptype 0x0800  hlen 6  plen 4  op 1 (request)
#              sha MAC  spa VIP  tha ff:ff:ff:ff:ff:ff (the broadcast address)  tpa VIP
#    42 bytes, unpadded: the NIC pads to the Ethernet minimum, as for keepalived's

def garp_frame(mac, vip):
    """Gratuitous ARP request announcing `vip` (4 packed bytes) at `mac` (6 bytes)."""
    cdef bytes m = bytes(mac), v = bytes(vip), out
    cdef uint8_t* p
    if len(m) != 6:
        raise ValueError("mac must be 6 bytes")
    if len(v) != 4:
        raise ValueError("vip must be 4 packed bytes")
    out = PyBytes_FromStringAndSize(NULL, 42)
    p = <uint8_t*>PyBytes_AS_STRING(out)
    memset(p, 0, 42)
    memset(p, 0xFF, 6)
    memcpy(p + 6, PyBytes_AS_STRING(m), 6)
    p[12] = 0x08; p[13] = 0x06
    p[14] = 0; p[15] = 1  # htype Ethernet
    p[16] = 0x08; p[17] = 0x00  # ptype IPv4
    p[18] = 6; p[19] = 4
    p[20] = 0; p[21] = 1  # op request
    memcpy(p + 22, PyBytes_AS_STRING(m), 6)
    memcpy(p + 28, PyBytes_AS_STRING(v), 4)
    memset(p + 32, 0xFF, 6)  # target hardware address: broadcast, as keepalived's vrrp_arp.c
    memcpy(p + 38, PyBytes_AS_STRING(v), 4)
    return out


# Unsolicited Neighbor Advertisement (RFC 4861 4.4, 7.2.6):
#    Ethernet  dst 33:33:00:00:00:01  src MAC  type 0x86dd
#    IPv6      next header 58, hop limit 255, src (VIP by default), dst ff02::1
#    ICMPv6    type 136 code 0 checksum | R S O reserved | target address
#    option    type 2 (target link-layer address) length 1 (8 bytes) MAC

cdef bytes _ALL_NODES = _socket.inet_pton(_socket.AF_INET6, "ff02::1")


def na_frame(mac, target, src=None, bint router=False):
    """Unsolicited NA for `target` (16 packed bytes), Override set, Solicited clear."""
    cdef bytes m = bytes(mac), t = bytes(target), s, out
    cdef uint8_t* p
    cdef uint16_t ck
    s = t if src is None else bytes(src)
    if len(m) != 6:
        raise ValueError("mac must be 6 bytes")
    if len(t) != 16 or len(s) != 16:
        raise ValueError("target and src must be 16 packed bytes")
    out = PyBytes_FromStringAndSize(NULL, 86)
    p = <uint8_t*>PyBytes_AS_STRING(out)
    memset(p, 0, 86)
    p[0] = 0x33; p[1] = 0x33; p[5] = 0x01
    memcpy(p + 6, PyBytes_AS_STRING(m), 6)
    p[12] = 0x86; p[13] = 0xDD
    p[14] = 0x60
    p[19] = 32  # payload length: NA 24 + option 8
    p[20] = 58
    p[21] = 255  # RFC 4861 7.1.2: hop limit 255
    memcpy(p + 22, PyBytes_AS_STRING(s), 16)
    memcpy(p + 38, PyBytes_AS_STRING(_ALL_NODES), 16)
    p[54] = 136
    p[58] = 0xA0 if router else 0x20  # R=0x80, S=0x40 (never unsolicited), O=0x20
    memcpy(p + 62, PyBytes_AS_STRING(t), 16)
    p[78] = 2
    p[79] = 1
    memcpy(p + 80, PyBytes_AS_STRING(m), 6)
    ck = csum_fold(csum_add(pseudo_sum(C_AF_INET6, p + 22, p + 38, 32, 58), p + 54, 32))
    p[56] = <uint8_t>(ck >> 8)
    p[57] = <uint8_t>(ck & 0xFF)
    return out

# ---- end codec ----


# ---- precise timer ----
# One timerfd (CLOCK_MONOTONIC, absolute deadlines, TFD_NONBLOCK | TFD_CLOEXEC) read
# with loop.add_reader, serving a binary heap of deadlines. Periodic schedules stay on a
# fixed grid (next = previous deadline + interval, never now + interval) so the mean
# interval never drifts. loop.call_at is not used: uvloop's clock is in whole
# milliseconds and can fire early (uvloop #359, #739).

cimport cython
from cpython.exc cimport PyErr_SetFromErrno
from libc.errno cimport EAGAIN, EINTR, errno
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memset
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, itimerspec, timespec
from posix.unistd cimport close as _pt_close, read as _pt_read

from fastha._linux cimport (
    PR_GET_TIMERSLACK,
    PR_SET_TIMERSLACK,
    TFD_CLOEXEC,
    TFD_NONBLOCK,
    TFD_TIMER_ABSTIME,
    prctl,
    timerfd_create,
    timerfd_settime,
)

cdef extern from *:
    int _pt_clzll "__builtin_clzll" (unsigned long long x) nogil

# Lateness histogram: bucket 0 counts callbacks run at or before their deadline, bucket b
# counts lateness in [2**(b-1), 2**b) ns; the last bucket also takes everything beyond.
LATENESS_BUCKETS = 40
cdef enum:
    _PT_NBUCKETS = 40
    _PT_EXPIRED = -1  # PreciseTimer._armed: the timerfd fired and is still readable


cdef inline int64_t _pt_now() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000000000 + ts.tv_nsec


cdef inline int _pt_bucket(int64_t late) noexcept nogil:
    if late <= 0:
        return 0
    cdef int b = 64 - _pt_clzll(<unsigned long long>late)
    return b if b < _PT_NBUCKETS else _PT_NBUCKETS - 1


def monotonic_ns():
    """CLOCK_MONOTONIC in nanoseconds: the clock every PreciseTimer deadline is on."""
    return _pt_now()


def set_timer_slack_ns(unsigned long slack_ns):
    """Set the calling thread's timer slack (PR_SET_TIMERSLACK); 0 restores the default.

    The kernel may defer a timerfd expiry by up to the slack (50 µs by default) to batch
    wakeups; the VRRP child sets 1 ns so adverts leave on their deadline.
    """
    if prctl(PR_SET_TIMERSLACK, slack_ns, 0UL, 0UL, 0UL) != 0:
        PyErr_SetFromErrno(OSError)


def get_timer_slack_ns():
    """The calling thread's timer slack in ns (PR_GET_TIMERSLACK)."""
    return prctl(PR_GET_TIMERSLACK, 0UL, 0UL, 0UL, 0UL)


# ---- batched send: one sendmmsg per raw socket and timer pass ----
# Adverts due in the same dispatch pass of the precise timer are queued on their socket's
# TxQueue and leave in one sendmmsg(2) when the pass ends (PreciseTimer.add_tx), before
# the loop runs anything else: the order "advert, then VIPs, then GARP" holds, since
# address and GARP jobs only run from the loop. Outside a pass a send leaves at once.
# Each message's fate is counted as sendto's would be: a message the kernel refuses is
# skipped (a lost advert is a lost advert, RFC 5798 6.4.3) and the rest go on.

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from libc.errno cimport EAGAIN as _TX_EAGAIN, EINTR as _TX_EINTR, ENOBUFS as _TX_ENOBUFS
from libc.errno cimport errno as _tx_errno
from posix.uio cimport iovec

cdef extern from "<sys/socket.h>" nogil:
    ctypedef unsigned int _tx_socklen "socklen_t"
    struct _tx_msghdr "msghdr":
        void* msg_name
        _tx_socklen msg_namelen
        iovec* msg_iov
        size_t msg_iovlen
        void* msg_control
        size_t msg_controllen
        int msg_flags
    struct _tx_mmsghdr "mmsghdr":
        _tx_msghdr msg_hdr
        unsigned int msg_len
    int _tx_sendmmsg "sendmmsg" (int fd, _tx_mmsghdr* msgs, unsigned int n, int flags)
    int _TX_MSG_DONTWAIT "MSG_DONTWAIT"


@cython.final
cdef class TxQueue:
    """Datagrams queued for one raw socket, sent with one sendmmsg(2) by flush().

    ``dests``: each destination's packed ``struct sockaddr`` (``sockaddr_in`` /
    ``sockaddr_in6`` bytes); ``control``: ancillary data sent with every message
    (a packed cmsg buffer, e.g. IPV6_PKTINFO), or empty. Each message carries a ``tag``
    (whose it is: the socket is shared by instances, and a batch mixes their adverts);
    ``on_error(errno, dest, tag)`` is called for every message the kernel refused, once
    the batch has left. Counters: ``sent``, ``eagain``, ``enobufs``, ``errors`` (every
    other error).
    """

    cdef int _fd
    cdef tuple _dests
    cdef bytes _control
    cdef object _on_error
    cdef list _held              # the queued packets (their buffers) until flush
    cdef list _where             # each queued packet's destination index
    cdef list _tags              # each queued packet's tag (reported with its error)
    cdef _tx_mmsghdr* _msgs
    cdef iovec* _iov
    cdef Py_ssize_t _cap
    cdef bint _pass              # a timer pass is running: it flushes when it ends
    cdef readonly unsigned long long sent
    cdef readonly unsigned long long eagain
    cdef readonly unsigned long long enobufs
    cdef readonly unsigned long long errors

    def __cinit__(self):
        self._fd = -1
        self._held = []
        self._where = []
        self._tags = []

    def __init__(self, int fd, dests, control=b"", on_error=None, Py_ssize_t capacity=16):
        cdef bytes d
        self._fd = fd
        self._dests = tuple(bytes(x) for x in dests)
        for d in self._dests:
            if PyBytes_GET_SIZE(d) < 2:
                raise ValueError("a destination must be a packed struct sockaddr")
        self._control = bytes(control)
        self._on_error = on_error
        self._grow(capacity if capacity > 0 else 1)

    def __dealloc__(self):
        PyMem_Free(self._msgs)
        PyMem_Free(self._iov)

    cdef int _grow(self, Py_ssize_t cap) except -1:
        cdef void* m = PyMem_Realloc(self._msgs, cap * sizeof(_tx_mmsghdr))
        if m == NULL:
            raise MemoryError()
        self._msgs = <_tx_mmsghdr*>m
        m = PyMem_Realloc(self._iov, cap * sizeof(iovec))
        if m == NULL:
            raise MemoryError()
        self._iov = <iovec*>m
        self._cap = cap
        return 0

    @property
    def pending(self):
        """Messages queued and not yet flushed."""
        return len(self._held)

    @property
    def destinations(self):
        return len(self._dests)

    @property
    def in_pass(self):
        """True while a PreciseTimer pass that flushes this queue runs (add_tx)."""
        return self._pass

    cdef inline int _send_or_hold(self) except -1:
        return 0 if self._pass else self.flush()

    def close(self):
        """Drop what is queued; later adds are refused (the socket is gone)."""
        self._fd = -1
        self._held = []
        self._where = []
        self._tags = []

    cpdef int add(self, bytes packet, Py_ssize_t dest, object tag=None) except -1:
        """Queue ``packet`` for ``dests[dest]``; returns how many messages are queued.
        ``tag`` comes back with the message's error, if the kernel refuses it."""
        if self._fd < 0:
            self.errors += 1
            return 0
        if not 0 <= dest < len(self._dests):
            raise IndexError(f"no destination {dest}")
        self._held.append(packet)
        self._where.append(dest)
        self._tags.append(tag)
        return len(self._held)

    cpdef int flush(self) except -1:
        """Send everything queued (sendmmsg, MSG_DONTWAIT); returns how many the kernel
        accepted. Never raises for a send error: it is counted (and reported)."""
        cdef Py_ssize_t n = len(self._held), i, start = 0
        cdef int r, err
        cdef bytes pkt, d
        cdef void* ctl = NULL
        cdef size_t ctllen = 0
        cdef int ok = 0
        if n == 0:
            return 0
        if self._fd < 0:
            self.errors += n
            self._held = []
            self._where = []
            self._tags = []
            return 0
        if n > self._cap:
            self._grow(n)
        if PyBytes_GET_SIZE(self._control):
            ctl = <void*>PyBytes_AS_STRING(self._control)
            ctllen = <size_t>PyBytes_GET_SIZE(self._control)
        for i in range(n):
            pkt = <bytes>self._held[i]
            d = <bytes>self._dests[<Py_ssize_t>self._where[i]]
            self._iov[i].iov_base = <void*>PyBytes_AS_STRING(pkt)
            self._iov[i].iov_len = <size_t>PyBytes_GET_SIZE(pkt)
            self._msgs[i].msg_hdr.msg_name = <void*>PyBytes_AS_STRING(d)
            self._msgs[i].msg_hdr.msg_namelen = <_tx_socklen>PyBytes_GET_SIZE(d)
            self._msgs[i].msg_hdr.msg_iov = &self._iov[i]
            self._msgs[i].msg_hdr.msg_iovlen = 1
            self._msgs[i].msg_hdr.msg_control = ctl
            self._msgs[i].msg_hdr.msg_controllen = ctllen
            self._msgs[i].msg_hdr.msg_flags = 0
            self._msgs[i].msg_len = 0
        held, where, tags = self._held, self._where, self._tags
        self._held = []
        self._where = []
        self._tags = []
        failed = None
        while start < n:
            r = _tx_sendmmsg(self._fd, &self._msgs[start], <unsigned int>(n - start),
                             _TX_MSG_DONTWAIT)
            if r > 0:
                ok += r
                start += r
                continue
            err = _tx_errno
            if r < 0 and err == _TX_EINTR:
                continue
            # The message at `start` was refused: count it and go on with the next.
            if err == _TX_EAGAIN:
                self.eagain += 1
            elif err == _TX_ENOBUFS:
                self.enobufs += 1
            else:
                self.errors += 1
            if self._on_error is not None:
                if failed is None:
                    failed = []
                failed.append((err, where[start], tags[start]))
            start += 1
        self.sent += <unsigned long long>ok
        if failed is not None:  # reported once everything has left
            for err, i, tag in failed:
                self._on_error(err, i, tag)
        return ok

    def send(self, bytes packet, Py_ssize_t dest=0, tag=None):
        """Queue and flush at once: one message now (a send outside a timer pass)."""
        self.add(packet, dest, tag)
        return self.flush()


@cython.final
cdef class AdvertTx:
    """One instance's adverts on its socket, the whole send path in C: the template's
    message for the priority, for IPv4 our own IP header in front (keepalived's: TOS
    0xc0, ID counting adverts and skipping 0, TTL; no AH: AH adverts take
    `encode_ipv4`), one copy per destination queued on the socket's TxQueue, which
    leaves now or, inside a timer pass, with the pass's sendmmsg.

    ``src``: the packed IPv4 source for an IP_HDRINCL socket, None for none (IPv6);
    ``dsts``: each destination's packed address, in the queue's order; ``tag``: every
    copy's tag on the queue (whose adverts they are, for a refused copy's report).
    """

    cdef AdvertTemplate _template
    cdef readonly TxQueue queue
    cdef readonly object tag
    cdef bytes _src
    cdef tuple _dsts
    cdef int _ttl
    cdef public int ip_id

    def __init__(self, AdvertTemplate template not None, TxQueue queue not None, src, dsts,
                 int ttl=VRRP_TTL, int ip_id=0, tag=None):
        cdef object d
        if not 0 <= ttl <= 255:
            raise ValueError(f"ttl must be 0..255, not {ttl}")
        self._template = template
        self.queue = queue
        self._src = None if src is None else _addr_arg(src, 4, "src")
        self._dsts = tuple(_addr_arg(d, 4, "dst") for d in dsts) if src is not None else ()
        if src is not None and len(self._dsts) != len(queue._dests):
            raise ValueError("one packed destination per queue destination")
        self._ttl = ttl
        self.ip_id = ip_id
        self.tag = tag

    cpdef int send(self, int priority) except -1:
        """The advert for `priority` to every destination; returns how many copies
        left now (0 while they wait for the timer pass's sendmmsg)."""
        cdef bytes msg = self._template.packet(priority)
        cdef bytes out
        cdef uint8_t* p
        cdef Py_ssize_t i, m, n, ndst = len(self.queue._dests)
        if self._src is None:
            for i in range(ndst):
                self.queue.add(msg, i, self.tag)
            return self.queue._send_or_hold()
        self.ip_id = self.ip_id % 0xFFFF + 1
        m = PyBytes_GET_SIZE(msg)
        n = 20 + m
        for i in range(ndst):
            out = PyBytes_FromStringAndSize(NULL, n)
            p = <uint8_t*>PyBytes_AS_STRING(out)
            _ipv4_head(p, n, 20, self.ip_id, 112, PyBytes_AS_STRING(self._src),
                       PyBytes_AS_STRING(<bytes>self._dsts[i]))
            p[1] = 0xC0  # IPTOS_PREC_INTERNETCONTROL
            p[8] = <uint8_t>self._ttl
            memcpy(p + 20, PyBytes_AS_STRING(msg), m)
            self.queue.add(out, i, self.tag)
        return self.queue._send_or_hold()


cdef class PreciseTimer


cdef class _TimerEntry:
    """A scheduled callback; its heap slot is kept so cancel and move are O(log n)."""

    cdef int64_t _deadline
    cdef uint64_t _seq          # tie-break: equal deadlines run in scheduling order
    cdef Py_ssize_t _index      # slot in the timer's heap, -1 while not scheduled
    cdef bint _cancelled
    cdef PreciseTimer _timer
    cdef object _callback
    cdef tuple _args

    def __cinit__(self):
        self._index = -1

    @property
    def deadline_ns(self):
        """The deadline this entry is (or was last) scheduled for."""
        return self._deadline

    @property
    def cancelled(self):
        return self._cancelled

    @property
    def active(self):
        """True while the entry waits in the timer's heap."""
        return self._index >= 0

    def cancel(self):
        """Unschedule; a no-op when already fired or cancelled."""
        self._cancelled = True
        if self._index >= 0:
            self._timer._remove(self)

    cdef int _call(self, int64_t now) except -1:
        try:
            if self._args:
                self._callback(self._deadline, now, *self._args)
            else:
                self._callback(self._deadline, now)
        except Exception as exc:
            self._timer._report(exc, self)
        return 0

    cdef int _fire(self, int64_t now) except -1:
        return self._call(now)


@cython.final
cdef class TimerHandle(_TimerEntry):
    """A one-shot deadline made by PreciseTimer.call_at."""

    def reschedule(self, deadline_ns):
        """Move to a new absolute deadline, re-arming a fired or cancelled handle."""
        self._timer._check_open()
        self._cancelled = False
        self._timer._move(self, deadline_ns)

    def __repr__(self):
        state = "cancelled" if self._cancelled else ("active" if self._index >= 0 else "done")
        return f"<TimerHandle {state} deadline_ns={self._deadline} {self._callback!r}>"


@cython.final
cdef class Periodic(_TimerEntry):
    """A periodic schedule on the grid first + k * interval (PreciseTimer.every)."""

    cdef int64_t _interval
    cdef uint64_t _skipped

    @property
    def interval_ns(self):
        return self._interval

    @interval_ns.setter
    def interval_ns(self, value):
        # The pending deadline stays; the next one is pending + new interval.
        if value <= 0:
            raise ValueError(f"interval_ns must be positive, got {value}")
        self._interval = value

    @property
    def skipped(self):
        """Grid slots skipped because a callback ran at least one interval late."""
        return self._skipped

    def reset(self, first_deadline_ns=None):
        """Re-anchor the grid at first_deadline_ns (default now + interval); re-arms.

        A VRRP backup calls this on its master-down timer each time it hears an advert.
        """
        self._timer._check_open()
        cdef int64_t first = (
            _pt_now() + self._interval if first_deadline_ns is None else first_deadline_ns
        )
        self._cancelled = False
        self._timer._move(self, first)

    cdef int _fire(self, int64_t now) except -1:
        cdef int64_t d = self._deadline
        cdef int64_t late, iv, missed
        try:
            self._call(now)
        finally:
            # Requeue unless the callback cancelled or re-anchored us, or closed the timer.
            if self._index < 0 and not self._cancelled and self._timer._fd >= 0:
                iv = self._interval  # read now: a change made in the callback applies
                late = now - d
                missed = late // iv if late >= iv else 0
                self._skipped += <uint64_t>missed
                self._deadline = d + (missed + 1) * iv
                self._timer._push(self)
        return 0

    def __repr__(self):
        state = "cancelled" if self._cancelled else ("active" if self._index >= 0 else "idle")
        return (
            f"<Periodic {state} deadline_ns={self._deadline} interval_ns={self._interval}"
            f" skipped={self._skipped} {self._callback!r}>"
        )


cdef inline bint _pt_before(_TimerEntry a, _TimerEntry b) noexcept:
    return a._deadline < b._deadline or (a._deadline == b._deadline and a._seq < b._seq)


@cython.final
cdef class PreciseTimer:
    """Many deadlines served by one timerfd read from an asyncio (or uvloop) loop.

    Callbacks run as callback(deadline_ns, now_ns, *args) straight from the loop's reader
    callback, so an advert can be sent without awaiting.
    """

    cdef object _loop
    cdef int _fd
    cdef list _heap
    cdef uint64_t _seq
    cdef int64_t _armed         # absolute deadline the timerfd is pending for; 0 = none
    cdef bint _reading
    cdef bint _dispatching      # defer re-arming to the end of a dispatch pass
    cdef list _txqs             # TxQueues flushed when a dispatch pass ends
    cdef public object after_pass  # called with no argument once a pass has sent
    cdef uint64_t _fired
    cdef uint64_t _wakeups
    cdef uint64_t _spurious
    cdef uint64_t _hist[_PT_NBUCKETS]

    def __cinit__(self):
        self._fd = -1
        self._heap = []
        self._txqs = []

    def __init__(self, loop):
        self._loop = loop
        self._fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if self._fd < 0:
            PyErr_SetFromErrno(OSError)

    def __dealloc__(self):
        if self._fd >= 0:
            _pt_close(self._fd)
            self._fd = -1

    # -- public API ---------------------------------------------------------------------

    def start(self):
        """Register the timerfd with the loop (idempotent)."""
        self._check_open()
        if not self._reading:
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def close(self):
        """Remove the reader, close the fd and drop every pending entry (idempotent)."""
        cdef _TimerEntry e
        if self._fd < 0:
            return
        if self._reading and not self._loop.is_closed():
            self._loop.remove_reader(self._fd)
        self._reading = False
        _pt_close(self._fd)
        self._fd = -1
        self._armed = 0
        for e in self._heap:
            e._index = -1
        self._heap = []

    def call_at(self, deadline_ns, callback, *args):
        """Run callback(deadline_ns, now_ns, *args) once at the absolute deadline."""
        self._check_open()
        cdef TimerHandle h = TimerHandle.__new__(TimerHandle)
        h._timer = self
        h._callback = callback
        h._args = args
        h._deadline = deadline_ns
        self._push(h)
        return h

    def every(self, interval_ns, callback, *args, first_deadline_ns=None):
        """Run callback(deadline_ns, now_ns, *args) at first + k * interval_ns.

        first_deadline_ns defaults to now + interval_ns.
        """
        self._check_open()
        if interval_ns <= 0:
            raise ValueError(f"interval_ns must be positive, got {interval_ns}")
        cdef Periodic p = Periodic.__new__(Periodic)
        p._timer = self
        p._callback = callback
        p._args = args
        p._interval = interval_ns
        p._deadline = _pt_now() + p._interval if first_deadline_ns is None else first_deadline_ns
        self._push(p)
        return p

    def add_tx(self, TxQueue q):
        """Flush `q` at the end of every dispatch pass (idempotent): what callbacks
        queue on it in one pass leaves in one sendmmsg, before the loop runs on."""
        if q not in self._txqs:
            self._txqs.append(q)

    def remove_tx(self, TxQueue q):
        if q in self._txqs:
            self._txqs.remove(q)
            q._pass = False

    @property
    def dispatching(self):
        """True inside a dispatch pass (while callbacks run)."""
        return self._dispatching

    def fileno(self):
        return self._fd

    @property
    def closed(self):
        return self._fd < 0

    @property
    def pending(self):
        """Number of scheduled entries."""
        return len(self._heap)

    @property
    def next_deadline_ns(self):
        """Earliest scheduled deadline, or None."""
        return (<_TimerEntry>self._heap[0])._deadline if self._heap else None

    @property
    def fired(self):
        return self._fired

    @property
    def wakeups(self):
        return self._wakeups

    @property
    def spurious_wakeups(self):
        """Wakeups that found nothing due (the earliest entry was cancelled or moved)."""
        return self._spurious

    def lateness_histogram(self):
        """Counts per log2 bucket: [0] on time, [b] lateness in [2**(b-1), 2**b) ns."""
        return [self._hist[i] for i in range(_PT_NBUCKETS)]

    # -- loop side ----------------------------------------------------------------------

    def _on_readable(self):
        cdef uint64_t expirations
        if self._fd < 0:
            return
        # No read(2) of the expiration count: the pass ends in _rearm, whose
        # timerfd_settime (the next deadline, or 0 to disarm) clears the count, and
        # with it the fd's readiness (fs/timerfd.c timerfd_setup): a syscall fewer per
        # wakeup. _PT_EXPIRED makes _rearm set the timerfd whatever the heap holds.
        self._armed = _PT_EXPIRED
        self._wakeups += 1
        try:
            self._dispatch()
        finally:
            if self._armed == _PT_EXPIRED and self._fd >= 0:
                # Not re-armed (it raised): consume the count, or the loop spins on it.
                if _pt_read(self._fd, &expirations, 8) == 8:
                    self._armed = 0

    cdef int _dispatch(self) except -1:
        # Entries due when the pass starts run now; one that fell due meanwhile runs in
        # the same pass (no wakeup of its own) while the pass has run fewer callbacks than
        # the heap held at its start: a callback slower than its interval must not starve
        # the loop, so anything beyond waits for the next wakeup.
        cdef int64_t limit = _pt_now()
        cdef int64_t now
        cdef _TimerEntry e
        cdef uint64_t ran = 0
        cdef uint64_t budget = <uint64_t>len(self._heap)
        cdef TxQueue q
        self._dispatching = True
        for q in self._txqs:
            q._pass = True
        try:
            while self._fd >= 0 and self._heap:
                e = <_TimerEntry>self._heap[0]
                if e._deadline > limit:
                    if ran >= budget:
                        break
                    limit = _pt_now()
                    if e._deadline > limit:
                        break
                self._pop_top()
                now = _pt_now()
                self._hist[_pt_bucket(now - e._deadline)] += 1
                self._fired += 1
                ran += 1
                e._fire(now)
        finally:
            self._dispatching = False
            if self._txqs:
                self._flush_tx()
            if self._fd >= 0:
                self._rearm()
        if ran == 0:
            self._spurious += 1
        elif self.after_pass is not None and self._fd >= 0:
            # Work that should wait until the adverts are out (the VRRP child's GC).
            try:
                self.after_pass()
            except Exception as exc:
                self._loop.call_exception_handler(
                    {"message": "Exception in PreciseTimer.after_pass", "exception": exc}
                )
        return 0

    cdef int _flush_tx(self) except -1:
        cdef TxQueue q
        for q in list(self._txqs):
            q._pass = False
            if q._held:
                try:
                    q.flush()
                except Exception as exc:
                    self._loop.call_exception_handler(
                        {"message": "Exception flushing a TxQueue", "exception": exc}
                    )
        return 0

    cdef int _report(self, exc, _TimerEntry e) except -1:
        self._loop.call_exception_handler(
            {"message": "Exception in PreciseTimer callback", "exception": exc, "handle": e}
        )
        return 0

    cdef int _check_open(self) except -1:
        if self._fd < 0:
            raise RuntimeError("PreciseTimer is closed")
        return 0

    # -- timerfd ------------------------------------------------------------------------

    cdef int _arm(self, int64_t deadline) except -1:
        # deadline 0 disarms; a past deadline expires at once.
        cdef itimerspec its
        memset(&its, 0, sizeof(its))
        if deadline > 0:
            its.it_value.tv_sec = deadline // 1000000000
            its.it_value.tv_nsec = deadline % 1000000000
        if timerfd_settime(self._fd, TFD_TIMER_ABSTIME, &its, NULL) != 0:
            PyErr_SetFromErrno(OSError)
        self._armed = deadline
        return 0

    cdef int _rearm(self) except -1:
        cdef int64_t top
        if not self._heap:
            if self._armed != 0:
                self._arm(0)
            return 0
        top = (<_TimerEntry>self._heap[0])._deadline
        if top < 1:
            top = 1  # 0 would disarm
        if top != self._armed:
            self._arm(top)
        return 0

    cdef int _arm_if_earlier(self) except -1:
        # A later top (after cancel or move) is left armed: one spurious wakeup is
        # cheaper than a syscall on every master-down reset.
        cdef int64_t top
        if self._dispatching or not self._heap:
            return 0
        top = (<_TimerEntry>self._heap[0])._deadline
        if top < 1:
            top = 1
        if self._armed == 0 or top < self._armed:
            self._arm(top)
        return 0

    # -- heap ---------------------------------------------------------------------------

    cdef int _push(self, _TimerEntry e) except -1:
        e._seq = self._seq
        self._seq += 1
        e._index = len(self._heap)
        self._heap.append(e)
        self._sift_up(e._index)
        if e._index == 0:
            self._arm_if_earlier()
        return 0

    cdef int _move(self, _TimerEntry e, int64_t deadline) except -1:
        if e._index < 0:
            e._deadline = deadline
            return self._push(e)
        e._deadline = deadline
        e._seq = self._seq
        self._seq += 1
        self._sift_up(e._index)
        self._sift_down(e._index)
        if e._index == 0:
            self._arm_if_earlier()
        return 0

    cdef int _remove(self, _TimerEntry e) except -1:
        cdef Py_ssize_t i = e._index
        cdef _TimerEntry last = <_TimerEntry>self._heap.pop()
        e._index = -1
        if last is not e:
            self._heap[i] = last
            last._index = i
            self._sift_up(i)
            self._sift_down(last._index)
        return 0

    cdef int _pop_top(self) except -1:
        cdef _TimerEntry top = <_TimerEntry>self._heap[0]
        cdef _TimerEntry last = <_TimerEntry>self._heap.pop()
        top._index = -1
        if last is not top:
            self._heap[0] = last
            last._index = 0
            self._sift_down(0)
        return 0

    cdef void _sift_up(self, Py_ssize_t i) noexcept:
        cdef list heap = self._heap
        cdef _TimerEntry e = <_TimerEntry>heap[i]
        cdef _TimerEntry parent
        cdef Py_ssize_t p
        while i > 0:
            p = (i - 1) >> 1
            parent = <_TimerEntry>heap[p]
            if not _pt_before(e, parent):
                break
            heap[i] = parent
            parent._index = i
            i = p
        heap[i] = e
        e._index = i

    cdef void _sift_down(self, Py_ssize_t i) noexcept:
        cdef list heap = self._heap
        cdef Py_ssize_t n = len(heap)
        cdef _TimerEntry e = <_TimerEntry>heap[i]
        cdef _TimerEntry child
        cdef _TimerEntry right
        cdef Py_ssize_t c
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            child = <_TimerEntry>heap[c]
            if c + 1 < n:
                right = <_TimerEntry>heap[c + 1]
                if _pt_before(right, child):
                    c += 1
                    child = right
            if not _pt_before(child, e):
                break
            heap[i] = child
            child._index = i
            i = c
        heap[i] = e
        e._index = i


include "_wire_bfd.pxi"
