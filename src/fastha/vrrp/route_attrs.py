"""The RTM_NEWROUTE attributes of the route options keepalived 2.2.7 installs beyond
the common ones (vrrp_iproute.c netlink_route): RTA_SRC (``from``), RTA_FLOW
(``realms``), RTA_EXPIRES, RTA_PREF, as pyroute2 request fields.

The values were computed by fastha.config.route_options (the kernel's units, as
keepalived computes them). ``ttl-propagate`` (RTA_TTL_PROPAGATE) is MPLS-only: the IPv4
and IPv6 FIBs ignore it, so the kernel state is the same whether or not it is sent, and
pyroute2 has no field for it.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from typing import Any


def route_extras(options: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """pyroute2 ``route()`` fields for the kept options the kernel gets."""
    req: dict[str, Any] = {}
    for name, value in options:
        if name == "from":
            net = ipaddress.ip_network(value, strict=False)
            req["src"], req["src_len"] = str(net.network_address), net.prefixlen
        elif name == "realms":
            req["flow"] = int(value)
        elif name == "expires":
            # pyroute2 types RTA_EXPIRES as "hex": the u32's bytes, colon-separated.
            req["expires"] = ":".join(f"{b:02x}" for b in struct.pack("=I", int(value)))
        elif name == "pref":
            req["pref"] = int(value)
    return req
