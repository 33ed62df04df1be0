"""Which keepalived keywords the scenarios exercise: keyword -> scenarios.

The universe is every keyword of fastha's keyword table in global_defs and the VRRP
root blocks (vrrp_instance, vrrp_sync_group, vrrp_script, track_file, static_* ...),
and of BFD's: ``bfd_instance`` and ``BFD_CHECK`` (with the path down to it, not the
rest of virtual_server), as dotted paths (``vrrp_instance.authentication.auth_type``).
A keyword is

- covered: some scenario's config uses it;
- not acted on: fastha says so itself (``fastha.config.validate_unsupported``, which
  notes it at its line) or ``allowlist.toml`` [[not_acted_on]] says why;
- uncovered: neither. The coverage test fails and names them.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable

from fastha.config import validate_unsupported
from fastha.config.keywords import GLOBAL_DEFS
from fastha.config.keywords_lvs import LVS_ROOT_KEYWORDS
from fastha.config.keywords_vrrp import VRRP_ROOT_KEYWORDS
from fastha.config.schema import Block
from tests.conformance.harness import ALLOWLIST, Scenario, load_allowlist


def universe() -> list[str]:
    out: list[str] = []

    def walk(block: Block, prefix: str) -> None:
        for kw in block.keywords:
            path = f"{prefix}.{kw.name}" if prefix else kw.name
            out.append(path)
            for alias in kw.aliases:
                out.append(f"{prefix}.{alias}" if prefix else alias)
            if kw.block is not None and kw.block.keywords:
                walk(kw.block, path)

    out.append("global_defs")
    walk(GLOBAL_DEFS, "global_defs")
    for kw in VRRP_ROOT_KEYWORDS:
        out.append(kw.name)
        if kw.block is not None and kw.block.keywords:
            walk(kw.block, kw.name)
    # BFD on the LVS side: the bfd_instance block, and BFD_CHECK by its path (the
    # blocks on the way count as keywords, so that used() can follow the path).
    for path in BFD_PATHS:
        kws, prefix = LVS_ROOT_KEYWORDS, ""
        for name in path.split("."):
            kw = next(k for k in kws if k.name == name)
            prefix = f"{prefix}.{name}" if prefix else name
            out.append(prefix)
            kws = kw.block.keywords if kw.block is not None else ()
        if kw.block is not None:
            walk(kw.block, prefix)
    return sorted(set(out))


BFD_PATHS = ("bfd_instance", "virtual_server.real_server.BFD_CHECK")


def used(conf: str, known: set[str]) -> set[str]:
    """Keyword paths a keepalived.conf uses (a light reading: blocks by braces)."""
    found: set[str] = set()
    stack: list[str] = []
    for raw in conf.splitlines():
        line = re.split(r"[!#]", raw, maxsplit=1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "}":
            if stack:
                stack.pop()
            continue
        path = ".".join([*[s for s in stack if s], words[0]])
        if path in known:
            found.add(path)
        if line.endswith("{"):
            # Entering a block: keyword blocks extend the path, list blocks do not.
            stack.append(words[0] if path in known else "")
        if line.endswith("}") and line.count("{") == line.count("}") and "{" in line:
            stack.pop()
    return found


def not_acted_on() -> dict[str, str]:
    """keyword path -> why fastha does not act on it."""
    out: dict[str, str] = {}
    for k, why in validate_unsupported.INSTANCE.items():
        out[f"vrrp_instance.{k}"] = f"fastha notes it as not supported: {why}"
    for k, why in validate_unsupported.SYNC_GROUP.items():
        out[f"vrrp_sync_group.{k}"] = f"fastha notes it as not supported: {why}"
    for k, why in validate_unsupported.GLOBAL.items():
        out[f"global_defs.{k}"] = f"fastha notes it as not supported: {why}"
    for e in load_allowlist()[1]:
        out[e["keyword"]] = e["reason"]
    return out


def gaps() -> dict[str, str]:
    """keyword path -> why no scenario covers it yet (allowlist.toml [[gap]]): known work,
    shown in the table, never counted as covered."""
    data = tomllib.loads(ALLOWLIST.read_text())
    return {e["keyword"]: e["reason"] for e in data.get("gap", [])}


def table(scenarios: Iterable[Scenario]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Rows (keyword, status, scenarios or reason) and the uncovered keywords: neither
    covered, nor not acted on, nor a listed gap; and a gap entry that no longer is one
    (covered now, or unknown) counts as uncovered too, so the list cannot go stale."""
    known = universe()
    kset = set(known)
    by_kw: dict[str, list[str]] = {k: [] for k in known}
    for s in scenarios:
        text = "\n".join(s.nodes.values())
        for k in used(text, kset):
            by_kw[k].append(s.name)
    skip = not_acted_on()
    gap = gaps()
    rows, uncovered = [], []
    for k in known:
        if by_kw[k]:
            rows.append((k, "covered", ", ".join(sorted(by_kw[k]))))
            if k in gap:
                uncovered.append(f"{k} (listed as a gap but covered: remove the entry)")
        elif k in skip:
            rows.append((k, "not acted on", skip[k]))
        elif k in gap:
            rows.append((k, "gap", gap[k]))
        else:
            rows.append((k, "UNCOVERED", ""))
            uncovered.append(k)
    uncovered += [f"{k} (a gap entry for an unknown keyword)" for k in gap if k not in kset]
    return rows, uncovered


def render(rows: list[tuple[str, str, str]]) -> str:
    w = max(len(r[0]) for r in rows)
    out = [f"{'keyword':<{w}}  {'status':<12}  scenarios / reason"]
    out += [f"{k:<{w}}  {st:<12}  {what}" for k, st, what in rows]
    kinds = ("covered", "not acted on", "gap", "UNCOVERED")
    n = {st: sum(1 for r in rows if r[1] == st) for st in kinds}
    out.append(f"{n['covered']} covered, {n['not acted on']} not acted on, {n['gap']} gaps, "
               f"{n['UNCOVERED']} uncovered of {len(rows)}")  # fmt: skip
    return "\n".join(out)
