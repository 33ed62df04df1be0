"""The resolved model as JSON (`fastha check-config --dump`), via orjson."""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from collections.abc import Mapping
from typing import Any

import orjson

from fastha.config.source import Where


def to_data(obj: Any, *, positions: bool = False) -> Any:
    """Plain JSON-able data; `where` and `positions` fields are dropped unless `positions` (golden files
    must not depend on the directory the corpus sits in)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        if isinstance(obj, Where):
            return str(obj)
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            if f.name in ("where", "positions") and not positions:
                continue
            out[f.name] = to_data(getattr(obj, f.name), positions=positions)
        return out
    if isinstance(obj, enum.Enum):
        return obj.value if isinstance(obj.value, str | int) else obj.name
    if isinstance(obj, tuple | list | frozenset | set):
        items = [to_data(v, positions=positions) for v in obj]
        return sorted(items, key=repr) if isinstance(obj, frozenset | set) else items
    if isinstance(obj, Mapping):
        return {str(k): to_data(v, positions=positions) for k, v in obj.items()}
    if isinstance(
        obj,
        ipaddress.IPv4Address
        | ipaddress.IPv6Address
        | ipaddress.IPv4Network
        | ipaddress.IPv6Network
        | ipaddress.IPv4Interface
        | ipaddress.IPv6Interface,
    ):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


def dumps(obj: Any, *, positions: bool = False) -> bytes:
    return orjson.dumps(
        to_data(obj, positions=positions), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    )
