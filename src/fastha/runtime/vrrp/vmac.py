"""use_vmac: the macvlan interfaces with the VRRP virtual MAC, and the sysctls
keepalived sets on them and on their base interface (vrrp_if_config.c)."""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import TYPE_CHECKING

from fastha.drivers.netlink import Netlink

if TYPE_CHECKING:
    from fastha.runtime.vrrp.instance import Instance

log = logging.getLogger("fastha.vrrp")


class Vmacs:
    def __init__(self) -> None:
        self.names: list[str] = []
        # Base interfaces' sysctls as they were, restored on exit.
        self.base_sysctls: dict[str, dict[str, int | None]] = {}

    async def create(self, nl: Netlink, inst: Instance) -> None:
        """keepalived's use_vmac: at startup, a macvlan (private mode) on the interface
        with the VRRP virtual MAC, brought up; the VIPs go on it when master.

        Sysctls as keepalived sets them (vrrp_if_config.c): the VMAC answers ARP only
        for its own addresses, accepts packets with local sources and skips rp_filter;
        the base interface stops answering ARP for addresses it does not hold
        (arp_ignore 1, arp_filter 1), restored on exit."""
        spec = inst.spec
        assert spec.vmac is not None
        # IPv6 stays on for an IPv4 instance with IPv6 excluded addresses (keepalived's
        # VRRP_FLAG_EVIP_OTHER_FAMILY)
        other = any(v.family != spec.family for v in spec.excluded)
        await nl.create_vmac(
            spec.vmac,
            spec.ifname,
            spec.params.vrid,
            family=spec.family,
            ipv6=spec.family == socket.AF_INET6 or other,
        )
        inst.vmac = spec.vmac
        self.names.append(spec.vmac)
        if spec.family == socket.AF_INET:
            for name, value in (
                ("arp_ignore", 1),
                ("accept_local", 1),
                ("rp_filter", 0),
                ("promote_secondaries", 1),
            ):
                set_sysctl(spec.vmac, name, value)
            if spec.ifname not in self.base_sysctls:
                saved = {}
                for name in ("arp_ignore", "arp_filter"):
                    saved[name] = set_sysctl(spec.ifname, name, 1)
                self.base_sysctls[spec.ifname] = saved
        log.info("(%s) using VMAC %s on %s", inst.name, spec.vmac, spec.ifname)

    async def delete(self, nl: Netlink, name: str) -> None:
        """One instance's VMAC, when the instance is removed (reload)."""
        with contextlib.suppress(Exception):
            await nl.delete_vmac(name)
        if name in self.names:
            self.names.remove(name)

    async def remove_all(self, nl: Netlink) -> None:
        for name in self.names:
            with contextlib.suppress(Exception):
                await nl.delete_vmac(name)
        self.names.clear()
        for ifname, saved in self.base_sysctls.items():
            for name, value in saved.items():
                if value is not None:
                    set_sysctl(ifname, name, value)
        self.base_sysctls.clear()


def set_sysctl(ifname: str, name: str, value: int) -> int | None:
    """Set net.ipv4.conf.IFNAME.NAME; returns the old value (None if unreadable)."""
    path = f"/proc/sys/net/ipv4/conf/{ifname}/{name}"
    try:
        with open(path) as fh:
            old = int(fh.read().strip() or 0)
        if old != value:
            with open(path, "w") as fh:
                fh.write(f"{value}\n")
        return old
    except (OSError, ValueError) as exc:
        log.warning("Cannot set %s to %d: %s", path, value, exc)
        return None
