"""Drive fastha.drivers.netlink inside a namespace (``ip netns exec NS python -m
tests.support.netlink_peer``).

    ops   reads a JSON list of [method, kwargs] on stdin, e.g.
          [["add_address", {"address": "198.18.0.100", "prefixlen": 24, "dev": "eth0"}]],
          builds the argument dataclass the method takes, prints one JSON result per op
    watch prints the initial link states, then {"ifname", "ifindex", "up"} per change
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import Any

import uvloop

from fastha.drivers import netlink as nl
from fastha.vrrp import addresses

ARG_TYPES: dict[str, Any] = {
    "add_address": addresses.VirtualAddress,
    "delete_address": addresses.VirtualAddress,
    "add_route": addresses.VirtualRoute,
    "delete_route": addresses.VirtualRoute,
    "add_rule": addresses.VirtualRule,
    "delete_rule": addresses.VirtualRule,
}


def _out(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def ops() -> None:
    async with nl.Netlink() as n:
        for method, kw in json.load(sys.stdin):
            try:
                if method in ARG_TYPES:
                    result: Any = await getattr(n, method)(ARG_TYPES[method](**kw))
                else:
                    result = await getattr(n, method)(**kw)
                if isinstance(result, list):
                    result = [dataclasses.asdict(r) for r in result]
                _out({"op": method, "result": result})
            except Exception as exc:
                _out({"op": method, "error": f"{type(exc).__name__}: {exc}"})


async def watch() -> None:
    async with nl.Netlink() as n:
        initial = await n.watch_links(
            lambda name, idx, up: _out({"ifname": name, "ifindex": idx, "up": up})
        )
        _out({"initial": {s.ifname: s.up for s in initial.values()}})
        await asyncio.Event().wait()  # killed by the test


def main() -> None:
    uvloop.run({"ops": ops, "watch": watch}[sys.argv[1]]())


if __name__ == "__main__":
    main()
