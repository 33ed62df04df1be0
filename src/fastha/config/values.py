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
    """A keyword's value cannot be used; the message says why (no file:line needed)."""


def _one(args: Args, what: str) -> str:
    if not args:
        raise BadValue(f"missing {what}")
    return args[0]


def flag(args: Args) -> bool:
    """A keyword that is on by its presence (`nopreempt`). keepalived ignores extra words."""
    return True


def boolean(args: Args) -> bool:
    """Optional true/false after the keyword; bare keyword means true (keepalived's get_value_bool)."""
    if not args:
        return True
    word = args[0].lower()
    if word in ("true", "on", "yes", "1"):
        return True
    if word in ("false", "off", "no", "0"):
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


def integer(lo: int | None = None, hi: int | None = None) -> ValueParser:
    def parse(args: Args) -> int:
        word = _one(args, "number")
        try:
            value = int(word, 0) if word.lower().startswith(("0x", "0o")) else int(word, 10)
        except ValueError:
            raise BadValue(f"'{word}' is not an integer") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise BadValue(f"{value} is out of range [{_bound(lo)}-{_bound(hi)}]")
        return value

    return parse


def number(lo: float | None = None, hi: float | None = None) -> ValueParser:
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
    return "" if value is None else f"{value:g}"


def choice(*options: str, casefold: bool = True) -> ValueParser:
    table = {(o.lower() if casefold else o): o for o in options}

    def parse(args: Args) -> str:
        word = _one(args, "value")
        key = word.lower() if casefold else word
        if key not in table:
            raise BadValue(f"'{word}' is not one of {', '.join(options)}")
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
