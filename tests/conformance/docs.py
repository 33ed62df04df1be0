"""The allow-list as the docs show it: README's compatibility notes and MIGRATING.md's
"What differs" carry a block generated from tests/conformance/allowlist.toml, between
markers; tests/unit/test_docs_migrating.py fails when a block is stale.

    .venv/bin/python -m tests.conformance.docs        # rewrite both blocks
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from tests.conformance.harness import load_allowlist

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- allowlist:begin (generated) -->", "<!-- allowlist:end -->"


def _text(reason: str) -> str:
    return " ".join(reason.split()).replace("|", "\\|")


def _first_sentence(reason: str) -> str:
    text = _text(reason)
    m = re.match(r"(.+?\.)(\s|$)", text)
    first = m.group(1) if m else text
    return first if len(first) <= 200 else first[:199].rsplit(" ", 1)[0] + " …"


def readme_block() -> str:
    diffs, _ = load_allowlist()
    lines = ["Intended differences from keepalived 2.2.7, found by the conformance suite",
             "(`tests/conformance/allowlist.toml`; the reasons in full in",
             "[docs/MIGRATING.md](docs/MIGRATING.md#what-differs)):", ""]  # fmt: skip
    seen: set[str] = set()
    for d in diffs:
        key = d.id.removesuffix("-none-left")
        if key in seen:
            continue
        seen.add(key)
        lines.append(f"- `{d.id}`: {_first_sentence(d.reason)}")
    return "\n".join(lines)


def migrating_block() -> str:
    diffs, not_acted = load_allowlist()
    lines = ["| difference | scenarios | why |", "|---|---|---|"]
    for d in diffs:
        lines.append(f"| `{d.id}` | {', '.join(d.scenarios)} | {_text(d.reason)} |")
    lines += ["", "Keywords the conformance suite found read but not acted on (beyond the "
              "table above):", "", "| keyword | why |", "|---|---|"]  # fmt: skip
    for e in not_acted:
        lines.append(f"| `{e['keyword']}` | {_text(e['reason'])} |")
    return "\n".join(lines)


TARGETS = {ROOT / "README.md": readme_block, ROOT / "docs" / "MIGRATING.md": migrating_block}


def render(text: str, block: str) -> str:
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[:start] + "\n" + block + "\n" + text[end:]


def stale() -> list[Path]:
    return [p for p, make in TARGETS.items() if render(p.read_text(), make()) != p.read_text()]


def main() -> int:
    for path, make in TARGETS.items():
        path.write_text(render(path.read_text(), make()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
