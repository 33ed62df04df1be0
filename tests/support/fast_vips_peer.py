"""Drive a VRRP instance's fast VIP path (runtime/vrrp/vips over drivers/rtnl_raw) inside
a namespace: ``ip netns exec NS python -m tests.support.fast_vips_peer CONF [UNLINK]
[--remove]``.

Loads CONF's first vrrp_instance, resolves its interfaces as the VRRP child does (the
index cache that link events keep), builds the prebuilt requests, deletes the
interface UNLINK if given (its cached index goes stale: the kernel refuses that
address), sends them with ``Vips.add_now`` and logs the kernel's answers with
``Vips.added``; with --remove, removes them again (``Vips.remove``). Prints one JSON
line: whether the fast path was taken, each address's errno, the socket's counters,
``installed`` along the way. The log goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path

import uvloop

from fastha.config.loader import load
from fastha.drivers.netlink import Netlink
from fastha.drivers.rtnl_raw import RawRtnl
from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.from_config import vrrp_spec
from fastha.runtime.vrrp.vips import Vips


async def run(conf: Path, unlink: str | None, remove: bool) -> dict[str, object]:
    result = load(conf)
    assert result.config is not None and not result.diagnostics, result.diagnostics
    spec = vrrp_spec(result.config).instances[0]
    loop = asyncio.get_running_loop()
    async with Netlink() as nl:
        for vip in (*spec.vips, *spec.excluded):
            await nl.ifindex(vip.dev)
        ctx = Context(loop, None, nl, None, None)  # type: ignore[arg-type]
        ctx.rtnl = RawRtnl().open(loop)
        try:
            vips = Vips(ctx, spec.name)
            vips.prepare(spec)
            if unlink:
                subprocess.run(["ip", "link", "del", unlink], check=True)
            acks = vips.add_now(spec)
            if acks is None:
                return {"fast": False}
            await vips.added(spec, acks)
            r = ctx.rtnl
            out: dict[str, object] = {
                "fast": True,
                "errors": acks.errors,
                "sent": r.sent,
                "refused": r.refused,
                "installed": vips.installed,
            }
            if remove:
                # While our own deletions are in flight, a deletion event is no VIP
                # deleted by hand (runtime/vrrp/vip_watch reads `installed`).
                task = loop.create_task(vips.remove(spec))
                await asyncio.sleep(0)
                out["installed_while_removing"] = vips.installed
                await task
                out["installed_after_removing"] = vips.installed
            return out
        finally:
            ctx.rtnl.close()
            ctx.rx_budget.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
    args = sys.argv[1:]
    remove = "--remove" in args
    args = [a for a in args if a != "--remove"]
    out = uvloop.run(run(Path(args[0]), args[1] if len(args) > 1 else None, remove))
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
