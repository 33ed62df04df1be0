# ---- BFD codec (included from _wire.pyx) ----
# BFD Control packets (RFC 5880 §4.1), the mandatory section only: keepalived 2.2.7
# supports no authentication (it sends A=0 and drops every packet with A set), and
# neither does fastha. decode_bfd applies the §6.8.6 checks that need no session, in
# keepalived's order (bfd.c bfd_check_packet, then its auth check); the ones that need
# the session (GTSM TTL, AdminDown) are fastha.bfd.session's, with the same reasons.
#
#    0                   1                   2                   3
#    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
#   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
#   |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
#   |                       My Discriminator                        |
#   |                      Your Discriminator                       |
#   |                    Desired Min TX Interval                    |
#   |                   Required Min RX Interval                    |
#   |                 Required Min Echo RX Interval                 |

cdef enum:
    BV_VERSION = 1
    BV_CONTROL_LEN = 24
    BV_ADMIN_DOWN = 0
    BV_DOWN = 1
    BV_DIAG_MAX = 8

BFD_VERSION = BV_VERSION
BFD_CONTROL_LEN = BV_CONTROL_LEN  # the mandatory section; what keepalived sends and accepts
BFD_PORT = 3784  # RFC 5881 single hop
BFD_MULTIHOP_PORT = 4784  # RFC 5883
BFD_STATE_ADMIN_DOWN = BV_ADMIN_DOWN
BFD_STATE_DOWN = BV_DOWN
BFD_STATE_INIT = 2
BFD_STATE_UP = 3
BFD_DIAG_MAX = BV_DIAG_MAX  # keepalived's BFD_VALID_DIAG: 0..8 (RFC 5880 §4.1's defined codes)

cdef enum:
    # Mirrors BfdDropReason.
    BR_TOO_SHORT = 1
    BR_LENGTH = 2
    BR_VERSION = 3
    BR_DETECT_MULT = 4
    BR_MULTIPOINT = 5
    BR_MY_DISCR = 6
    BR_YOUR_DISCR = 7
    BR_POLL_FINAL = 8
    BR_DIAG = 9
    BR_AUTH = 10
    BR_TTL = 11
    BR_NO_SESSION = 12
    BR_ADMIN_DOWN = 13


class BfdDropReason(_enum.IntEnum):
    """Why a received BFD Control packet was dropped (keepalived's bfd_check_packet
    order first; TTL, NO_SESSION and ADMIN_DOWN are decided with the session)."""

    TOO_SHORT = BR_TOO_SHORT  # fewer than 24 bytes
    LENGTH = BR_LENGTH  # Length field != the UDP payload's size (keepalived's check)
    VERSION = BR_VERSION  # version != 1
    DETECT_MULT = BR_DETECT_MULT  # Detect Mult is zero
    MULTIPOINT = BR_MULTIPOINT  # M bit set
    MY_DISCR = BR_MY_DISCR  # My Discriminator is zero
    YOUR_DISCR = BR_YOUR_DISCR  # Your Discriminator zero and State not Down/AdminDown
    POLL_FINAL = BR_POLL_FINAL  # P and F both set
    DIAG = BR_DIAG  # Diag above 8
    AUTH = BR_AUTH  # A bit set: no authentication is in use (keepalived has none)
    TTL = BR_TTL  # GTSM: TTL / hop limit below ttl - max_hops (RFC 5881 §5)
    NO_SESSION = BR_NO_SESSION  # no session by Your Discriminator or by address
    ADMIN_DOWN = BR_ADMIN_DOWN  # the session is AdminDown (stopped): discarded


class BfdDecodeError(ValueError):
    """A received BFD packet that must be dropped; `reason` is a BfdDropReason."""

    def __init__(self, reason, detail=""):
        self.reason = BfdDropReason(reason)
        self.detail = detail
        ValueError.__init__(self, f"{self.reason.name.lower()}{': ' if detail else ''}{detail}")


cdef inline uint32_t _be32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8) | p[3]


cdef inline void _put32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


@cython.final
cdef class BfdControl:
    """A decoded BFD Control packet that passed decode_bfd's checks. Read-only.
    Intervals are microseconds, as on the wire."""

    cdef readonly int version
    cdef readonly int diag
    cdef readonly int state
    cdef readonly bint poll
    cdef readonly bint final
    cdef readonly bint cpi
    cdef readonly bint auth
    cdef readonly bint demand
    cdef readonly bint multipoint
    cdef readonly int detect_mult
    cdef readonly int length
    cdef readonly uint32_t my_discr
    cdef readonly uint32_t your_discr
    cdef readonly uint32_t desired_min_tx_us
    cdef readonly uint32_t required_min_rx_us
    cdef readonly uint32_t required_min_echo_rx_us

    def to_dict(self):
        return {
            "version": self.version,
            "diag": self.diag,
            "state": self.state,
            "poll": self.poll,
            "final": self.final,
            "cpi": self.cpi,
            "auth": self.auth,
            "demand": self.demand,
            "multipoint": self.multipoint,
            "detect_mult": self.detect_mult,
            "length": self.length,
            "my_discr": self.my_discr,
            "your_discr": self.your_discr,
            "desired_min_tx_us": self.desired_min_tx_us,
            "required_min_rx_us": self.required_min_rx_us,
            "required_min_echo_rx_us": self.required_min_echo_rx_us,
        }

    def __repr__(self):
        return (f"BfdControl(state={self.state}, diag={self.diag}, poll={self.poll}, "
                f"final={self.final}, mult={self.detect_mult}, my={self.my_discr:#x}, "
                f"your={self.your_discr:#x}, tx={self.desired_min_tx_us}, "
                f"rx={self.required_min_rx_us})")


cdef int _bfd_check(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """0 or the BR_* reason, in keepalived's bfd_check_packet order (+ its auth check)."""
    cdef int state
    if n < BV_CONTROL_LEN:
        return BR_TOO_SHORT
    if p[3] != n:
        return BR_LENGTH
    if (p[0] >> 5) != BV_VERSION:
        return BR_VERSION
    if p[2] == 0:
        return BR_DETECT_MULT
    if p[1] & 0x01:
        return BR_MULTIPOINT
    if _be32(p + 4) == 0:
        return BR_MY_DISCR
    state = p[1] >> 6
    if _be32(p + 8) == 0 and state != BV_DOWN and state != BV_ADMIN_DOWN:
        return BR_YOUR_DISCR
    if (p[1] & 0x30) == 0x30:
        return BR_POLL_FINAL
    if (p[0] & 0x1F) > BV_DIAG_MAX:
        return BR_DIAG
    if p[1] & 0x04:
        return BR_AUTH
    return 0


def decode_bfd(buf):
    """Decode one BFD Control packet (a UDP payload): a BfdControl, or BfdDecodeError
    with the BfdDropReason. Never reads past the buffer."""
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef Py_ssize_t n
    cdef int reason
    cdef BfdControl c
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*>view.buf
        n = view.len
        reason = _bfd_check(p, n)
        if reason:
            raise BfdDecodeError(reason, f"{n} bytes" if reason <= BR_LENGTH else "")
        c = BfdControl.__new__(BfdControl)
        c.version = p[0] >> 5
        c.diag = p[0] & 0x1F
        c.state = p[1] >> 6
        c.poll = (p[1] >> 5) & 1
        c.final = (p[1] >> 4) & 1
        c.cpi = (p[1] >> 3) & 1
        c.auth = (p[1] >> 2) & 1
        c.demand = (p[1] >> 1) & 1
        c.multipoint = p[1] & 1
        c.detect_mult = p[2]
        c.length = p[3]
        c.my_discr = _be32(p + 4)
        c.your_discr = _be32(p + 8)
        c.desired_min_tx_us = _be32(p + 12)
        c.required_min_rx_us = _be32(p + 16)
        c.required_min_echo_rx_us = _be32(p + 20)
        return c
    finally:
        PyBuffer_Release(&view)


def check_bfd(buf):
    """0 (ACCEPTED) or the BfdDropReason value decode_bfd would raise; never raises."""
    cdef Py_buffer view
    cdef int reason
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    reason = _bfd_check(<const uint8_t*>view.buf, view.len)
    PyBuffer_Release(&view)
    return reason


def encode_bfd(int state, int diag, int detect_mult, uint32_t my_discr, uint32_t your_discr,
               uint32_t desired_min_tx_us, uint32_t required_min_rx_us, bint poll=False,
               bint final=False, bint demand=False, bint cpi=False,
               uint32_t required_min_echo_rx_us=0):
    """The 24-byte BFD Control packet (version 1, no authentication, M clear)."""
    cdef bytes out
    cdef uint8_t* p
    if not 0 <= state <= 3:
        raise ValueError(f"state must be 0..3, not {state}")
    if not 0 <= diag <= 31:
        raise ValueError(f"diag must be 0..31, not {diag}")
    if not 1 <= detect_mult <= 255:
        raise ValueError(f"detect_mult must be 1..255, not {detect_mult}")
    if poll and final:
        raise ValueError("poll and final cannot both be set (RFC 5880 §6.5)")
    out = PyBytes_FromStringAndSize(NULL, BV_CONTROL_LEN)
    p = <uint8_t*>PyBytes_AS_STRING(out)
    p[0] = <uint8_t>((BV_VERSION << 5) | diag)
    p[1] = <uint8_t>((state << 6) | (poll << 5) | (final << 4) | (cpi << 3) | (demand << 1))
    p[2] = <uint8_t>detect_mult
    p[3] = BV_CONTROL_LEN
    _put32(p + 4, my_discr)
    _put32(p + 8, your_discr)
    _put32(p + 12, desired_min_tx_us)
    _put32(p + 16, required_min_rx_us)
    _put32(p + 20, required_min_echo_rx_us)
    return out

# ---- end BFD codec ----
