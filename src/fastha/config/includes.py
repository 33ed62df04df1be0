"""keepalived's include lines: `include FILE` and its checking variants, glob and brace
patterns, which files are read and what keepalived says on the way (lib/parser.c
check_include(), read_conf_file()).
"""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from fastha.config.diagnostics import Diagnostic, ExitCode, error, note
from fastha.config.source import Where

MAX_INCLUDE_DEPTH = 64

INCLUDE_KEYWORDS = frozenset(
    {"include", "includer", "includem", "includew", "includeb", "includea"}
)


@dataclass(frozen=True, slots=True)
class _IncludeChecks:
    """keepalived's include_check flags, chosen by the include keyword's suffix."""

    readable: bool = False
    match: bool = False
    wildcard_match: bool = False
    brace_match: bool = False


CHECKS = {
    "include": _IncludeChecks(),
    "includer": _IncludeChecks(readable=True),
    "includem": _IncludeChecks(readable=True, match=True),
    "includew": _IncludeChecks(readable=True, wildcard_match=True),
    "includeb": _IncludeChecks(readable=True, brace_match=True),
    "includea": _IncludeChecks(True, True, True, True),
}


# What keepalived only logs: shown, but it does not change `-t`'s exit code.
info = note
# A failed include check: keepalived exits 6 before it even validates.
NO_CONFIG = ExitCode.NO_CONFIG


def brace_alternatives(pattern: str) -> list[str]:
    """csh-style `{a,b}` expansion, as glob(GLOB_BRACE) does, outermost group first."""
    depth, start = 0, -1
    for i, c in enumerate(pattern):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                inner, parts, level, last = pattern[start + 1 : i], [], 0, 0
                for j, d in enumerate(inner):
                    level += d == "{"
                    level -= d == "}"
                    if d == "," and level == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                if len(parts) == 1:
                    continue  # `{x}` is literal for glob
                head, tail = pattern[:start], pattern[i + 1 :]
                return [alt for part in parts for alt in brace_alternatives(head + part + tail)]
    return [pattern]


def unreadable(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"open problem ({exc.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory"
    if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o111:
        return "is not a regular non-executable file"
    return None


def included(
    keyword: str,
    pattern: str,
    where: Where,
    reading: list[tuple[str, Where | None]],
    diags: list[Diagnostic],
    *,
    all_config: bool = False,
) -> Iterator[tuple[str, bytes]]:
    """The files an include line reads, in order, each (path, content) as it is reached
    (`reading`: the files being read, outermost first, for the loop and depth checks);
    what keepalived says on the way goes to `diags`. `all_config`: keepalived's -e."""
    checks = CHECKS["includea" if all_config else keyword]
    if len(reading) >= MAX_INCLUDE_DEPTH:
        diags.append(error(where, f"includes nested more than {MAX_INCLUDE_DEPTH} deep"))
        return
    base = os.path.dirname(where.file) if not where.file.startswith("<") else ""
    full = os.path.join(base, pattern)
    wildcard = any(c in pattern for c in "*?[")
    alternatives = brace_alternatives(full)
    matches: list[str] = []
    for alt in alternatives:
        found = sorted(glob.glob(alt))
        if not found and len(alternatives) > 1 and checks.brace_match:
            diags.append(error(where, f"Config files missing '{alt}'.", NO_CONFIG))
        matches.extend(found)
    if not matches:
        if wildcard:
            if checks.wildcard_match:
                diags.append(error(where, f"No config files matched '{pattern}'.", NO_CONFIG))
        elif checks.match or checks.wildcard_match:
            diags.append(error(where, f"Config files missing '{pattern}'.", NO_CONFIG))
        else:
            diags.append(info(where, f"Config files missing '{pattern}'."))
        return
    for path in matches:
        problem = unreadable(path)
        if problem is not None:
            message = f"Configuration file '{path}' {problem} - skipping"
            diags.append(
                error(where, message, NO_CONFIG) if checks.readable else info(where, message)
            )
            continue
        real = os.path.realpath(path)
        if any(r == real for r, _ in reading):
            chain = " -> ".join(str(w) for _, w in reading[1:] if w is not None)
            chain = f"{chain} -> {where}" if chain else str(where)
            # keepalived recurses until it runs out of file descriptors; we stop here.
            diags.append(error(where, f"include loop: '{path}' is already being read ({chain})"))
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            message = f"Configuration file '{path}' open problem ({exc.strerror}) - skipping"
            diags.append(
                error(where, message, NO_CONFIG) if checks.readable else info(where, message)
            )
            continue
        yield path, data
