"""Public face of the compiled wire layer.

`_wire` is compiled and has no pure-Python fallback: a second implementation at run time
would be a second attack surface. If it is missing, say how to build it.

Addresses are packed bytes throughout (4 for IPv4, 16 for IPv6); see fastha/_wire.pyi.
"""

try:
    from fastha import _wire  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "fastha._wire (the compiled wire layer) is not built: run "
        "`pip install -e .` (or `python setup.py build_ext --inplace`) with Cython and a C compiler"
    ) from exc

from fastha._wire import (
    ACCEPTED,
    AF_INET,
    AF_INET6,
    AH_LEN,
    AUTH_AH,
    AUTH_NONE,
    AUTH_PASS,
    IPPROTO_AH,
    IPPROTO_VRRP,
    IPTOS_PREC_INTERNETCONTROL,
    VRRP_TTL,
    VRRP_TYPE_ADVERTISEMENT,
    Advert,
    AdvertTemplate,
    AdvertTx,
    AhKey,
    DecodeError,
    DropReason,
    Expect,
    TxQueue,
    checksum,
    decode,
    decode_ipv4,
    encode_ipv4,
    encode_v2,
    encode_v3,
    garp_frame,
    na_frame,
)

# RFC 5798 5.1.1.2 / RFC 3768 5.2.2: the VRRP multicast groups.
VRRP_GROUP_V4 = bytes((224, 0, 0, 18))
VRRP_GROUP_V6 = bytes.fromhex("ff020000000000000000000000000012")


def family_of(addr: str) -> int:
    """AF_INET6 for an IPv6 address in text (it has a colon), else AF_INET."""
    return AF_INET6 if ":" in addr else AF_INET


__all__ = [
    "ACCEPTED",
    "AF_INET",
    "AF_INET6",
    "AH_LEN",
    "AUTH_AH",
    "AUTH_NONE",
    "AUTH_PASS",
    "IPPROTO_AH",
    "IPPROTO_VRRP",
    "IPTOS_PREC_INTERNETCONTROL",
    "VRRP_GROUP_V4",
    "VRRP_GROUP_V6",
    "VRRP_TTL",
    "VRRP_TYPE_ADVERTISEMENT",
    "Advert",
    "AdvertTemplate",
    "AdvertTx",
    "AhKey",
    "DecodeError",
    "DropReason",
    "Expect",
    "TxQueue",
    "checksum",
    "decode",
    "decode_ipv4",
    "encode_ipv4",
    "encode_v2",
    "encode_v3",
    "family_of",
    "garp_frame",
    "na_frame",
]
