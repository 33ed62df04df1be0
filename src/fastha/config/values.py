"""Value parsers for keyword arguments.

A value parser takes the words after a keyword and returns the model value, or raises
`BadValue` with a message the parser turns into a `file:line` error. Parsers are built
once, at import, by the small factories below so the keyword tables read like data.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

Args = tuple[str, ...]
ValueParser = Callable[[Args], Any]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class BadValue(Exception):
    """A keyword's value cannot be used; the message says why (no file:line needed).

    keepalived logs it and runs on without the keyword (the model keeps its default);
    the subclasses below say when keepalived does something else."""


class MissingValue(BadValue):
    """The keyword has no parameter at all: keepalived exits at once, at start-up as in
    -t (lib/parser.c null_strvec: "... is missing a parameter", exit 5)."""


class Fallback(BadValue):
    """The value is bad and keepalived runs with `value` instead ("Using default 100",
    "defaulting to BACKUP", "setting to 1", or the number read before the junk). This is
    the one place each such fix-up lives: check-config reports the message, and the
    daemon starts with `value`, both from the same parse."""

    def __init__(self, message: str, value: Any) -> None:
        super().__init__(message)
        self.value = value


def settle(parse: ValueParser, args: Args) -> tuple[Any, str | None]:
    """For a parser built of others: run `parse`, -> (value, keepalived's message when it
    fell back). The caller builds its own value and re-raises `Fallback` with it."""
    try:
        return parse(args), None
    except Fallback as exc:
        return exc.value, str(exc)


def _one(args: Args, what: str) -> str:
    if not args:
        raise MissingValue(f"missing {what}")
    return args[0]


def _strtol_prefix(word: str, signed: bool) -> int | None:
    """The number C's strtol (`signed`) or strtoul reads at the start of `word` (base 10):
    0 when no digit starts it, as C returns; None for a '-' given to strtoul (keepalived's
    "negative number")."""
    text = word.lstrip(" \t")
    sign = text[:1] if text[:1] in ("+", "-") else ""
    if sign == "-" and not signed:
        return None
    end = len(sign)
    while end < len(text) and text[end].isdigit():
        end += 1
    digits = text[len(sign) : end]
    if not digits:
        return 0
    return int(sign + digits, 10)


def flag(args: Args) -> bool:
    """A keyword that is on by its presence (`nopreempt`). keepalived ignores extra words."""
    return True


def boolean(args: Args) -> bool:
    """Optional true/false after the keyword; bare keyword means true. keepalived's
    check_true_false (lib/parser.c) takes exactly true/on/yes and false/off/no, lower
    case: anything else ("True", "1") is an error and the keyword is ignored."""
    if not args:
        return True
    word = args[0]
    if word in ("true", "on", "yes"):
        return True
    if word in ("false", "off", "no"):
        return False
    raise BadValue(f"'{args[0]}' is not a boolean (true/false, on/off, yes/no)")


def string(args: Args) -> str:
    return _one(args, "value")


def text(args: Args) -> str:
    """All remaining words joined with spaces (subjects, script command lines)."""
    if not args:
        raise BadValue("missing value")
    return " ".join(args)


def words(args: Args) -> tuple[str, ...]:
    return tuple(args)


_NO_FALLBACK: Any = object()


def integer(
    lo: int | None = None,
    hi: int | None = None,
    *,
    lenient: bool = False,
    fallback: Any = _NO_FALLBACK,
    zero: Any = _NO_FALLBACK,
) -> Callable[[Args], int]:
    """A whole number in [lo, hi]. keepalived's own fallbacks, where it has one:

    - `lenient`: keepalived read it with ignore_error (lib/parser.c read_unsigned_func):
      outside -t, a word with junk is used as the number strtoul reads from it ("5x" is
      5, "abc" is 0) when that is in range;
    - `fallback`: the value keepalived uses for anything it cannot read ("Using default");
    - `zero`: the value a 0 becomes ("must be greater than 0, setting to 1").
    """

    def parse(args: Args) -> int:
        word = _one(args, "number")
        try:
            value = int(word, 0) if word.lower().startswith(("0x", "0o")) else int(word, 10)
        except ValueError:
            signed = lo is not None and lo < 0
            prefix = _strtol_prefix(word, signed) if lenient else None
            if prefix is not None and _in(prefix, lo, hi):
                if prefix == 0 and zero is not _NO_FALLBACK:
                    prefix = zero
                raise Fallback(f"invalid number '{word}'; using {prefix}", prefix) from None
            if fallback is not _NO_FALLBACK:
                raise Fallback(f"'{word}' is not an integer; using {fallback}", fallback) from None
            raise BadValue(f"'{word}' is not an integer") from None
        if value == 0 and zero is not _NO_FALLBACK:
            raise Fallback(f"must be greater than 0, setting to {zero}", zero)
        if not _in(value, lo, hi):
            message = f"{value} is out of range [{_bound(lo)}-{_bound(hi)}]"
            if fallback is not _NO_FALLBACK:
                raise Fallback(f"{message}; using {fallback}", fallback)
            raise BadValue(message)
        return value

    return parse


def _in(value: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def number(lo: float | None = None, hi: float | None = None) -> Callable[[Args], float]:
    """A decimal number (keepalived accepts fractions for most timers)."""

    def parse(args: Args) -> float:
        word = _one(args, "number")
        try:
            value = float(word)
        except ValueError:
            raise BadValue(f"'{word}' is not a number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise BadValue(f"'{word}' is not a finite number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise BadValue(f"{word} is out of range [{_bound(lo)}-{_bound(hi)}]")
        return value

    return parse


def _bound(value: float | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:g}"


def choice(*options: str, casefold: bool = True, fallback: Any = _NO_FALLBACK) -> ValueParser:
    """One of `options`; `fallback`: what keepalived uses for any other word."""
    table = {(o.lower() if casefold else o): o for o in options}

    def parse(args: Args) -> str:
        word = _one(args, "value")
        key = word.lower() if casefold else word
        if key not in table:
            message = f"'{word}' is not one of {', '.join(options)}"
            if fallback is not _NO_FALLBACK:
                raise Fallback(f"{message}; using {fallback}", fallback)
            raise BadValue(message)
        return table[key]

    return parse


def ip_address(args: Args) -> IPAddress:
    word = _one(args, "IP address")
    try:
        return ipaddress.ip_address(word)
    except ValueError:
        raise BadValue(f"'{word}' is not a valid IP address") from None


def ip_network(args: Args) -> IPNetwork:
    """`addr[/prefix]`, host bits allowed (keepalived keeps the address as written)."""
    word = _one(args, "IP address")
    try:
        return ipaddress.ip_network(word, strict=False)
    except ValueError:
        raise BadValue(f"'{word}' is not a valid IP address or prefix") from None


def ip_interface(word: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    try:
        return ipaddress.ip_interface(word)
    except ValueError:
        raise BadValue(f"'{word}' is not a valid IP address[/prefix]") from None


def port(args: Args) -> int:
    return integer(0, 65535)(args)
