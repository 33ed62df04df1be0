"""no_accept (RFC 5798 §6.1 Accept_Mode off; keepalived's default under vrrp_strict):
a master that is not the address owner must not accept packets addressed to the VIPs.

keepalived enforces it with nftables (or iptables) rules; so do we, with one `inet`
table (global_defs `nftables TABLENAME`, default `fastha`) holding a set of the
no-accept instances' addresses and two base chains that drop traffic to and from
them, Neighbor Solicitations and Advertisements excepted so IPv6 neighbours still
resolve them. ARP and our own GARP/NA (AF_PACKET) never pass through nftables.

The set holds every such address all the time: the input and output hooks only see
an address while it is configured here, so nothing changes on a state transition and
failover pays nothing. The table is replaced as a whole (one `nft -f FILE` transaction) at
start and on reload, and deleted at stop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import shutil
import tempfile
from collections.abc import Iterable

log = logging.getLogger(__name__)

DEFAULT_TABLE = "fastha"
_ND = "icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept"


def ruleset(table: str, addresses: Iterable[str], priority: int = -1) -> str:
    """The `nft -f` script that replaces `table` with one dropping `addresses`."""
    by_family: dict[int, list[str]] = {4: [], 6: []}
    for ip in sorted({ipaddress.ip_address(a) for a in addresses}, key=lambda ip: (ip.version, ip)):
        by_family[ip.version].append(str(ip))
    v4, v6 = by_family[4], by_family[6]

    def elements(items: list[str]) -> str:
        return f" elements = {{ {', '.join(items)} }};" if items else ""

    return _drop_table(table) + "\n".join(
        (
            f"table inet {table} {{",
            f"  set vips4 {{ type ipv4_addr;{elements(v4)} }}",
            f"  set vips6 {{ type ipv6_addr;{elements(v6)} }}",
            "  chain in {",
            f"    type filter hook input priority {priority}; policy accept;",
            "    ip daddr @vips4 drop",
            f"    ip6 daddr @vips6 {_ND}",
            "    ip6 daddr @vips6 drop",
            "  }",
            "  chain out {",
            f"    type filter hook output priority {priority}; policy accept;",
            "    ip saddr @vips4 drop",
            f"    ip6 saddr @vips6 {_ND}",
            "    ip6 saddr @vips6 drop",
            "  }",
            "}",
            "",
        )
    )


def _drop_table(table: str) -> str:
    """Delete `table`, made first so that the delete never fails."""
    return f"table inet {table} {{}}\ndelete table inet {table}\n"


class VipFirewall:
    def __init__(self, table: str | None = None, priority: int = -1) -> None:
        self.table = table or DEFAULT_TABLE
        self.priority = priority
        # None: unknown (a run killed with -9 may have left its table behind).
        self.installed: bool | None = None
        self._nft = shutil.which("nft")
        self._warned = False

    async def _run(self, script: str, *, quiet: bool = False) -> bool:
        """`nft -f FILE`; a failure is an error, or a debug line when `quiet` (the
        clean-up of a table that may not exist, on a host that may have no nftables)."""
        say = log.debug if quiet else log.error
        if self._nft is None:
            if not self._warned and not quiet:
                say(
                    "no_accept: nft (Debian package nftables) is not installed; "
                    "traffic to the VIPs is accepted"
                )
                self._warned = True
            return False
        # The script goes in a file, not a pipe: an nft that fails at once (no
        # nf_tables) closes its stdin before we write, and uvloop raises on that.
        try:
            with tempfile.NamedTemporaryFile("w", prefix="fastha-nft-", suffix=".nft") as f:
                f.write(script)
                f.flush()
                proc = await asyncio.create_subprocess_exec(
                    self._nft,
                    "-f",
                    f.name,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                )
                _, err = await proc.communicate()
        except (OSError, RuntimeError) as exc:  # never the reason a VRRP child stops
            say("no_accept: cannot run nft: %s", exc)
            return False
        if proc.returncode != 0:
            say(
                "no_accept: nft failed (exit %s): %s",
                proc.returncode,
                err.decode(errors="replace").strip(),
            )
            return False
        return True

    async def apply(self, addresses: Iterable[str]) -> None:
        """Drop traffic to exactly `addresses` (none: no table at all)."""
        addresses = set(addresses)
        if not addresses:
            await self.remove()
            return
        if await self._run(ruleset(self.table, addresses, self.priority)):
            self.installed = True
            log.info(
                "no_accept: nftables table inet %s drops traffic to %d address(es)",
                self.table,
                len(addresses),
            )

    async def remove(self) -> None:
        quiet = self.installed is None
        if self.installed is not False and await self._run(_drop_table(self.table), quiet=quiet):
            log.debug("no_accept: nftables table inet %s removed", self.table)
        self.installed = False
