"""VMAC interfaces (keepalived's ``use_vmac``): a macvlan carrying the VRRP virtual MAC,
made through drivers/netlink's rtnetlink socket."""

from __future__ import annotations

import errno
import logging
import socket
from typing import TYPE_CHECKING

from pyroute2.netlink.exceptions import NetlinkError

if TYPE_CHECKING:
    from fastha.drivers.netlink import Netlink

log = logging.getLogger("fastha.drivers.netlink")


def vmac_address(vrid: int, family: int = socket.AF_INET) -> str:
    """RFC 5798 §7.3: 00-00-5E-00-01-{VRID} (IPv4), 00-00-5E-00-02-{VRID} (IPv6)."""
    if not 1 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} out of range 1-255")
    return f"00:00:5e:00:{2 if family == socket.AF_INET6 else 1:02x}:{vrid:02x}"


async def create(
    nl: Netlink,
    ifname: str,
    base: str,
    vrid: int,
    *,
    family: int = socket.AF_INET,
    mode: str = "private",
    ipv6: bool | None = None,
) -> int:
    """A macvlan on ``base`` with the VRRP virtual MAC (keepalived's ``use_vmac``),
    brought up; an existing one with that name is reused. Returns its ifindex.

    As keepalived's netlink_link_add_vmac: no link-local address generated from the
    (shared) virtual MAC (addr_gen_mode none, set before the link is up) and IPv6
    off unless ``ipv6`` (default: an IPv6 instance)."""
    base_idx = await nl.ifindex(base)
    mac = vmac_address(vrid, family)
    try:
        await nl.ipr.link(
            "add", ifname=ifname, kind="macvlan", link=base_idx, macvlan_mode=mode, address=mac
        )
        log.info("netlink vmac created %s on %s mac=%s mode=%s", ifname, base, mac, mode)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise
        log.info("netlink vmac already present %s", ifname)
    nl.forget(ifname)
    idx = await nl.ifindex(ifname)
    want_ipv6 = family == socket.AF_INET6 if ipv6 is None else ipv6
    for name, value in (("disable_ipv6", 0 if want_ipv6 else 1), ("addr_gen_mode", 1)):
        path = f"/proc/sys/net/ipv6/conf/{ifname}/{name}"
        try:
            with open(path, "w") as fh:
                fh.write(f"{value}\n")
        except OSError as exc:
            log.warning("Cannot set %s to %d: %s", path, value, exc)
    await nl.ipr.link("set", index=idx, state="up")
    return idx


async def delete(nl: Netlink, ifname: str) -> bool:
    """Remove the VMAC interface ``ifname``; False if it was already gone."""
    try:
        idx = await nl.ifindex(ifname)
        await nl.ipr.link("del", index=idx)
    except LookupError:
        return False
    except NetlinkError as exc:
        if exc.code in (errno.ENODEV, errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL):
            return False
        raise
    finally:
        nl.forget(ifname)
    log.info("netlink vmac deleted %s", ifname)
    return True
