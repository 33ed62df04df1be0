"""static_ipaddress, static_routes and static_rules: keepalived sets them at start and,
unless -V, removes them on stop; a reload changes only those that changed."""

from __future__ import annotations

from fastha.drivers.netlink import Netlink
from fastha.runtime.vrrp.from_config import VrrpSpec


async def add_statics(nl: Netlink, spec: VrrpSpec) -> None:
    for a in spec.static_addresses:
        await nl.add_address(a)
    for r in spec.static_routes:
        await nl.add_route(r)
    for rule in spec.static_rules:
        await nl.add_rule(rule)


async def remove_statics(nl: Netlink, spec: VrrpSpec) -> None:
    for rule in spec.static_rules:
        await nl.delete_rule(rule)
    for r in spec.static_routes:
        await nl.delete_route(r)
    for a in spec.static_addresses:
        await nl.delete_address(a)


async def swap_statics(nl: Netlink, old: VrrpSpec, new: VrrpSpec) -> None:
    for rule in old.static_rules:
        if rule not in new.static_rules:
            await nl.delete_rule(rule)
    for route in old.static_routes:
        if route not in new.static_routes:
            await nl.delete_route(route)
    for a in old.static_addresses:
        if a not in new.static_addresses:
            await nl.delete_address(a)
    for a in new.static_addresses:
        if a not in old.static_addresses:
            await nl.add_address(a)
    for route in new.static_routes:
        if route not in old.static_routes:
            await nl.add_route(route)
    for rule in new.static_rules:
        if rule not in old.static_rules:
            await nl.add_rule(rule)
