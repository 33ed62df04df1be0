"""The shape of the keyword table: keywords, blocks and what each builds.

Every keepalived.conf keyword is one `Keyword` row in a `Block` (keywords_*.py): its
name, value parser, model field, aliases and deprecation. Defaults live on the model
dataclasses (model_*.py), as keepalived documents them, and `Keyword.default_in` reads
them back so the table can be dumped with its defaults.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastha.config.source import Where
from fastha.config.values import Args, ValueParser, flag

# A list block's statements (`virtual_ipaddress { ... }`) are parsed one by one.
ItemParser = Callable[[Args, Where], Any]
# A block header (`vrrp_instance VI_1 {`, `real_server 1.2.3.4 80 {`) -> model fields.
HeaderParser = Callable[[Args], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Keyword:
    name: str
    parse: ValueParser = flag
    field: str | None = None  # model field; defaults to the keyword's name
    aliases: tuple[str, ...] = ()
    deprecated_by: str | None = None  # the current spelling, when this name is old
    # keepalived still accepts this old name without a word (its -t exits 0): fastha
    # notes the new spelling but, as keepalived, does not count it as a problem.
    quiet_deprecation: bool = False
    block: Block | None = None  # the keyword opens a `{ ... }` block
    repeat: bool = False  # may appear many times; values collect into a tuple in order
    # Fields this keyword sets besides its own (when `parse` returns a mapping of them).
    spreads: bool = False
    # `parse` returns a tuple whose items extend the field (list blocks always do:
    # `virtual_ipaddress { }` given twice, or `static_routes` blocks, concatenate).
    extends: bool = False

    @property
    def target(self) -> str:
        return self.field or self.name

    def default_in(self, model: type) -> Any:
        """The documented default, read off the model dataclass (MISSING if none)."""
        for f in dataclasses.fields(model):
            if f.name == self.target:
                if f.default is not dataclasses.MISSING:
                    return f.default
                if f.default_factory is not dataclasses.MISSING:
                    return f.default_factory()
        return dataclasses.MISSING


@dataclass(frozen=True, slots=True)
class Block:
    """A `{ ... }` block: either keywords building `model`, or a list of items."""

    name: str
    model: Callable[..., Any] | None = None  # called as model(where=..., **fields)
    keywords: tuple[Keyword, ...] = ()
    header: HeaderParser | None = None
    # A list block: its value is a tuple of items, or model(where, items=..., **header).
    items: ItemParser | None = None
    # A list block whose item parser returns a tuple of items per statement
    # (keepalived's read_value_block: `group { VI_1 VI_2 }` on one line).
    flatten: bool = False
    # Statements whose first word is no keyword of this block (an old syntax listing
    # names directly, as a pre-2.0 vrrp_sync_group did): parsed by this keyword with
    # ALL the statement's words.
    rest: Keyword | None = None
    lookup: dict[str, Keyword] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        table: dict[str, Keyword] = {}
        for kw in self.keywords:
            for name in (kw.name, *kw.aliases):
                if name in table:
                    raise ValueError(f"{self.name}: keyword {name!r} defined twice")
                table[name] = kw
        object.__setattr__(self, "lookup", table)
