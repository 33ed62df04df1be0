"""Where configuration text came from: the unit every later stage reports against."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    `words` are the line's words with quotes removed and comments dropped; `{` and `}`
    are always words of their own, so `vrrp_instance VI_1 {` and a brace on the next line
    reach the parser the same way.
    """

    words: tuple[str, ...]
    where: Where
    # The line's text before word splitting (quotes and escapes intact): keepalived
    # re-splits script command lines from it with shell-like quoting and escapes
    # (see fastha.config.lexer.split_quoted_escaped).
    raw: str = field(default="", compare=False)
