"""keepalived's inheritance of an unset setting: the first level that sets it."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def inherit(*levels: T | None, default: T) -> T:
    """The first of `levels` that is set (not None), most specific first, else `default`:
    an instance's setting over its sync group's over global_defs' (keepalived's
    PARAMETER_UNSET), a checker's over its real server's over its virtual server's."""
    return next((v for v in levels if v is not None), default)
