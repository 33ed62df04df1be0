"""Public face of the BFD codec compiled in fastha._wire (RFC 5880 §4.1 Control packets).

`decode_bfd(payload)` returns a read-only `BfdControl` or raises `BfdDecodeError` whose
`reason` is a `BfdDropReason` (count it, drop the packet); `check_bfd` returns the same
reason as an int without raising. `encode_bfd(...)` builds the 24-byte packet.
No authentication section: keepalived 2.2.7 supports none, and drops packets with A set.
"""

from __future__ import annotations

from fastha._wire import (
    BFD_CONTROL_LEN,
    BFD_DIAG_MAX,
    BFD_MULTIHOP_PORT,
    BFD_PORT,
    BFD_STATE_ADMIN_DOWN,
    BFD_STATE_DOWN,
    BFD_STATE_INIT,
    BFD_STATE_UP,
    BFD_VERSION,
    BfdControl,
    BfdDecodeError,
    BfdDropReason,
    check_bfd,
    decode_bfd,
    encode_bfd,
)

__all__ = [
    "BFD_CONTROL_LEN",
    "BFD_DIAG_MAX",
    "BFD_MULTIHOP_PORT",
    "BFD_PORT",
    "BFD_STATE_ADMIN_DOWN",
    "BFD_STATE_DOWN",
    "BFD_STATE_INIT",
    "BFD_STATE_UP",
    "BFD_VERSION",
    "BfdControl",
    "BfdDecodeError",
    "BfdDropReason",
    "check_bfd",
    "decode_bfd",
    "encode_bfd",
]
