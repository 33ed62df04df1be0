"""`$NAME=value` definitions and their expansion, after keepalived's lib/parser.c.

Rules kept from keepalived (check_definition(), find_definition(), replace_param()):
- a definition is a line `$NAME=value` (blanks allowed before `=`); the value is kept
  unexpanded, so expansion happens at use time with the definitions current then;
- `$NAME` is only replaced when followed by a blank, `,`, `)` or the end of the line
  (`$NAME.x` stays as it is: write `${NAME}.x`); `${NAME}` may be followed by anything;
- an undefined name is left in the text unchanged;
- a value ending in `\\` continues on the next lines (multi-line definition); such a
  definition is only expanded when its use ends the line, and then yields several lines;
- replacement rescans the replaced text, so values may use other definitions;
- `${_RANDOM [MIN [MAX]]}`, `${_PWD}`, `${_INSTANCE}` (and `${_HASH}`, `${_BANG}`,
  documented from keepalived 2.2) are predefined and may be redefined.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# Bounds that keep a self-referencing definition ($A=${A}x) from looping or eating memory;
# keepalived stops at its 1 KiB line buffer instead.
MAX_LINE_CHARS = 64 * 1024
MAX_REPLACEMENTS = 10_000

_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset("0123456789")


@dataclass(slots=True)
class Definition:
    """One `$NAME`; mutable because multi-line values grow line by line while read."""

    name: str
    value: str
    multiline: bool = False
    builtin: str | None = None  # name of a computed predefined value
    max_params: int = 0


@dataclass(frozen=True, slots=True)
class Expansion:
    text: str
    # Remaining lines of multi-line definitions, innermost first: each is read after
    # the current line, in this order, with the definitions current at that time.
    pending: tuple[tuple[str, ...], ...] = ()
    changed: bool = False
    problem: str | None = None


@dataclass(slots=True)
class Macros:
    config_id: str | None = None
    pwd: str = "."
    defs: dict[str, Definition] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        for name, builtin, params in (
            ("_PWD", "pwd", 0),
            ("_INSTANCE", "instance", 0),
            ("_RANDOM", "random", 2),
        ):
            self.defs[name] = Definition(name, "", builtin=builtin, max_params=params)
        self.defs["_HASH"] = Definition("_HASH", "#")
        self.defs["_BANG"] = Definition("_BANG", "!")

    def set(self, name: str, value: str) -> None:
        self.defs[name] = Definition(name, value)

    def define(self, text: str) -> Definition | None:
        """Record `$NAME=value` if `text` is a definition line (keepalived's check_definition)."""
        if len(text) < 2 or text[0] != "$" or text[1] not in _NAME_START:
            return None
        i = 2
        while i < len(text) and text[i] != "=":
            if text[i] not in _NAME_CHARS:
                break
            i += 1
        name = text[1:i]
        while i < len(text) and text[i] in " \t":
            i += 1
        if i >= len(text) or text[i] != "=":
            return None
        value = text[i + 1 :].lstrip(" \t")
        multiline = value.endswith("\\")
        if multiline:
            # The first line ends at the `\`; its padding is not part of the value.
            first = value[:-1].rstrip(" \t")
            value = first + "\n" if first else ""
        definition = Definition(name, value, multiline)
        self.defs[name] = definition
        return definition

    def _value(self, d: Definition, params: str | None) -> str:
        if d.builtin == "pwd":
            return self.pwd
        if d.builtin == "instance":
            return self.config_id or ""
        if d.builtin == "random":
            lo, hi = 0, 32767
            nums = [int(x) for x in params.split()] if params else []
            if nums:
                lo = nums[0]
            if len(nums) > 1:
                hi = nums[1]
            return str(self.rng.randint(lo, hi) if lo <= hi else lo)
        return d.value

    def _find(self, text: str, start: int) -> tuple[Definition, int, str | None] | None:
        """The definition used at text[start] == '$': (definition, end index, params)."""
        pos = start + 1
        braces = pos < len(text) and text[pos] == "{"
        if braces:
            pos += 1
        if pos >= len(text) or text[pos] not in _NAME_START:
            return None
        end = pos + 1
        while end < len(text) and text[end] in _NAME_CHARS:
            end += 1
        name = text[pos:end]
        params: str | None = None
        if braces:
            p = end
            while p < len(text) and (text[p] == " " or text[p].isdigit()):
                p += 1
            inner = text[end:p]
            if inner.strip():
                if inner != inner.rstrip():  # keepalived: parameters must not end with a space
                    return None
                params = inner
            if p >= len(text) or text[p] != "}":
                return None
            stop = p + 1
        else:
            if end < len(text) and text[end] not in " \t,)":
                return None
            stop = end
        d = self.defs.get(name)
        if d is None:
            return None
        if d.multiline and stop != len(text):
            return None  # a multi-line value must end the line that uses it
        if params is not None and not d.max_params:
            return None
        return d, stop, params

    def expand(self, text: str) -> Expansion:
        """keepalived's replace_param(): one pass over the line, rescanning replacements."""
        pending: list[tuple[str, ...]] = []
        changed = False
        pos = text.find("$")
        count = 0
        while pos >= 0 and pos + 1 < len(text):
            found = self._find(text, pos)
            if found is None:
                pos = text.find("$", pos + 1)
                continue
            count += 1
            if count > MAX_REPLACEMENTS:
                return Expansion(text, tuple(pending), changed, "too many parameter substitutions")
            d, stop, params = found
            changed = True
            value = self._value(d, params)
            if d.multiline:
                first, *rest = value.split("\n")
                pending.insert(0, tuple(rest))
                value = first
            text = text[:pos] + value + text[stop:]
            if len(text) > MAX_LINE_CHARS:
                return Expansion(
                    text[:MAX_LINE_CHARS],
                    tuple(pending),
                    changed,
                    "Parameter substitution would exceed maximum line length",
                )
            if value.lstrip(" \t").startswith("~"):
                break  # let the caller run the ~SEQ/~LST it produced first
            pos = text.find("$", pos)
        return Expansion(text, tuple(pending), changed)
