"""Where configuration text came from: the unit every later stage reports against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, slots=True)
class Where:
    """A position in an original file (before include/macro/SEQ expansion)."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True, slots=True)
class Line:
    """One logical configuration line after preprocessing.

    `words` are the line's words with quotes removed and comments dropped; an unquoted
    `{` or `}` is always a line of its own, so `vrrp_instance VI_1 {` and a brace on the
    next line reach the parser the same way.
    """

    words: tuple[str, ...]
    where: Where
    # The line's text before word splitting (quotes and escapes intact): keepalived
    # re-splits script command lines from it with shell-like quoting and escapes
    # (see fastha.config.lexer.split_quoted_escaped).
    raw: str = field(default="", compare=False)


# Where each keyword of a block was written, filled by the parser for every block model
# that declares a `positions` field (see fastha.config.parser): `positions["interface"]`
# is the `interface` line of a vrrp_instance; items of a list-valued field are keyed
# `name[i]` (`positions["group[1]"]` is where a sync group's second member is written).
# Validation reports at these lines, as keepalived does, through `where_of`.
Positions = Mapping[str, Where]
NO_POSITIONS: Positions = MappingProxyType({})


def no_positions() -> Positions:
    """Default factory of a model's `positions`: declare the field as
    `positions: Positions = field(default_factory=no_positions, compare=False, repr=False)`."""
    return NO_POSITIONS


def where_of(obj: Any, name: str, index: int | None = None) -> Where | None:
    """The line of `obj`'s keyword `name` (its `index`-th item), else the block's line."""
    positions: Positions = getattr(obj, "positions", NO_POSITIONS)
    if index is not None:
        found = positions.get(f"{name}[{index}]")
        if found is not None:
            return found
    return positions.get(name) or getattr(obj, "where", None)
