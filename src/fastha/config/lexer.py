"""Text-level rules of keepalived.conf: comments, quotes, words and braces.

Everything here is a pure function on one line of text, mirroring keepalived's
lib/parser.c (decomment(), alloc_strvec_r(), alloc_strvec_quoted_escaped() and the
brace split at the end of read_line()). Problems are returned as messages; the caller
ties them to a file:line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# keepalived's WHITE_SPACE_STR: word separators.
WHITESPACE = " \t\f\n\r\v"
# decomment() and the trailing trim only treat blanks (isblank) as padding.
BLANKS = " \t"
# A run of non-separators: the words of a line without quotes (split_words' fast path).
_WORD_RE = re.compile(r"[^ \t\f\n\r\v]+")


@dataclass(frozen=True, slots=True)
class Decommented:
    text: str
    # The line ended with `\`: only a multi-line `$NAME=` definition uses this.
    continued: bool
    problem: str | None = None


def decomment(line: str) -> Decommented:
    """Strip comments (`!`, `#`), `\\#`/`\\!` escapes and padding, as keepalived does.

    A comment starts at an unquoted `!` or `#`, even in the middle of a word. Inside
    "double quotes" they are literal (single quotes are not special here). A trailing
    `\\` is remembered even after a comment was cut, exactly like keepalived.
    """
    s = line.lstrip(BLANKS)
    if '"' not in s and "\\" not in s:
        # Fast path (most lines): no quotes or escapes, the comment is the first ! or #.
        cut_at = len(s)
        for mark in "!#":
            found = s.find(mark, 0, cut_at)
            if found >= 0:
                cut_at = found
        return Decommented(s[:cut_at].rstrip(BLANKS), False)
    out: list[str] = []
    quote = False
    cut: int | None = None  # index in `out` where a comment started
    continued = False
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c == '"':
            if cut is None:
                quote = not quote
            out.append(c)
            i += 1
        elif c == "\\":
            if i + 1 >= n:
                continued = True
                i += 1
            elif not quote and s[i + 1] in "#!":
                out.append(s[i + 1])  # the escape only protects a comment character
                i += 2
            else:
                out.append(s[i : i + 2])
                i += 2
        elif c in "!#" and not quote and cut is None:
            cut = len(out)
            out.append(c)
            i += 1
        else:
            out.append(c)
            i += 1
    problem = f"Unterminated quote '{s}'" if quote else None
    if cut is not None:
        out = out[:cut]
    text = "".join(out).rstrip(BLANKS)
    return Decommented(text + "\\" if continued else text, continued, problem)


def _word_start(text: str, i: int) -> int:
    """Where the next word starts at or after `i` (len(text): no more words)."""
    while i < len(text) and text[i] in WHITESPACE:
        i += 1
    return i


def split_words(text: str) -> tuple[list[str], str | None]:
    """keepalived's alloc_strvec_r(): whitespace-separated words, `"..."` as one word.

    Quotes are removed, nothing is unescaped, and a word ends at a `"` (so `a"b c"`
    is two words, `a` and `b c`). An unmatched quote drops the rest of the line.
    """
    if '"' not in text:
        return _WORD_RE.findall(text), None
    words: list[str] = []
    i, n = 0, len(text)
    while (i := _word_start(text, i)) < n:
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                return words, f"Unmatched quote: '{text}'"
            words.append(text[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < n and text[j] not in WHITESPACE and text[j] != '"':
                j += 1
            words.append(text[i:j])
            i = j
    return words, None


_ESCAPES = {"a": "\a", "b": "\b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_ESCAPES["v"] = "\v"
_HEX = "0123456789abcdefABCDEF"


def split_quoted_escaped(text: str) -> tuple[list[str], str | None]:
    """keepalived's alloc_strvec_quoted_escaped(), used for script command lines.

    Both quote kinds group words and may sit mid-word (`a"b c"d` is `ab cd`); shell-like
    escapes (`\\n`, `\\t`, `\\xHH`, `\\NNN` octal, `\\cC`, `\\C`) work in and out of quotes.
    """
    words: list[str] = []
    i, n = 0, len(text)
    while (i := _word_start(text, i)) < n:
        out: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if c == "\\":
                i += 1
                if i >= n:
                    return words, f"Missing escape char at end: '{text}'"
                c = text[i]
                if c == "x" and i + 1 < n and text[i + 1] in _HEX:
                    i += 1
                    value = 0
                    while i < n and text[i] in _HEX:
                        value = (value << 4 | int(text[i], 16)) & 0xFF  # C char wraps
                        i += 1
                    out.append(chr(value))
                elif c == "c" and i + 1 < n:
                    out.append(chr(ord(text[i + 1]) & 0x1F))
                    i += 2
                elif "0" <= c <= "7":
                    value, digits = 0, 0
                    while i < n and digits < 3 and "0" <= text[i] <= "7":
                        value = (value << 3 | int(text[i])) & 0xFF
                        i += 1
                        digits += 1
                    out.append(chr(value))
                else:
                    out.append(_ESCAPES.get(c, c))
                    i += 1
            elif quote:
                if c == quote:
                    quote = ""
                else:
                    out.append(c)
                i += 1
            elif c in "\"'":
                quote = c
                i += 1
            elif c in WHITESPACE:
                break
            else:
                out.append(c)
                i += 1
        if quote:
            return words, f"String '{text}': missing terminating {quote}"
        words.append("".join(out))
    return words, None


def split_brace(text: str) -> tuple[str, str]:
    """Split off the first `{` or `}` (outside "quotes") as keepalived's read_line does.

    Returns (head, residue): a line starting with a brace yields that brace alone and
    the rest as residue; otherwise the text before the brace, and the residue starts
    at the brace. The caller feeds the residue back as the next line.
    """
    if not text:
        return text, ""
    if "{" not in text and "}" not in text:
        return text.rstrip(BLANKS), ""  # fast path: no brace at all
    p: int | None = 0
    if text[0] not in "{}":
        p = None
        i = 0
        while i < len(text):
            c = text[i]
            if c in "{}":
                p = i
                break
            if c == '"':
                end = text.find('"', i + 1)
                if end < 0:
                    break
                i = end + 1
                continue
            i += 1
    if p is None:
        return text.rstrip(BLANKS), ""
    if p == 0:
        skip = 1
        while skip < len(text) and text[skip] in BLANKS:
            skip += 1
    else:
        skip = p
    residue = text[skip:].rstrip(BLANKS)
    return text[:skip].rstrip(BLANKS), residue
