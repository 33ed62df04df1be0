"""Walks preprocessed lines against the keyword table and builds the model.

keepalived is line-oriented with braces: a statement is the words of a line up to a
`{`, a `}` or the end of the line, and a block keyword's `{` may sit on the next line.
Problems never stop the walk: each becomes a Diagnostic with file:line and the parser
moves on, so one run reports every problem in the file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from types import MappingProxyType
from typing import Any

from fastha.config.diagnostics import STOPS_ALL, Diagnostic, ExitCode, error, note, stop, warning
from fastha.config.schema import Block, Keyword
from fastha.config.source import Line, Where
from fastha.config.values import BadValue, Fallback, MissingValue

# `Parser.parsed` for a value keepalived cannot use at all (it is left out).
_UNUSABLE: Any = object()


class Kind(IntEnum):
    WORDS = 0
    OPEN = 1
    CLOSE = 2


@dataclass(frozen=True, slots=True)
class Statement:
    kind: Kind
    words: tuple[str, ...]
    where: Where


def statements(lines: list[Line]) -> list[Statement]:
    out: list[Statement] = []
    for line in lines:
        current: list[str] = []
        for word in line.words:
            if word in ("{", "}"):
                if current:
                    out.append(Statement(Kind.WORDS, tuple(current), line.where))
                    current = []
                out.append(Statement(Kind.OPEN if word == "{" else Kind.CLOSE, (), line.where))
            else:
                current.append(word)
        if current:
            out.append(Statement(Kind.WORDS, tuple(current), line.where))
    return out


class _Walker:
    def __init__(self, stmts: list[Statement], diags: list[Diagnostic]) -> None:
        self.stmts = stmts
        self.pos = 0
        self.diags = diags

    def peek(self) -> Statement | None:
        return self.stmts[self.pos] if self.pos < len(self.stmts) else None

    def skip_block(self) -> None:
        """Consume a `{ ... }` whose `{` was just consumed, nested blocks included."""
        depth = 1
        while depth and self.pos < len(self.stmts):
            kind = self.stmts[self.pos].kind
            depth += 1 if kind is Kind.OPEN else -1 if kind is Kind.CLOSE else 0
            self.pos += 1

    def opens_block(self) -> bool:
        nxt = self.peek()
        if nxt is not None and nxt.kind is Kind.OPEN:
            self.pos += 1
            return True
        return False

    def block(
        self, spec: Block, where: Where, header: tuple[str, ...], top: bool = False
    ) -> tuple[Any, list[Where]]:
        """Parse a block's body (its `{` already consumed) -> (value, the line of each item
        of a list block); the value is None when the block cannot be built."""
        fields: dict[str, Any] = {}
        positions: dict[str, Where] = {}
        items: list[Any] = []
        item_wheres: list[Where] = []
        ok = True
        if spec.header is not None:
            try:
                fields.update(spec.header(header))
            except BadValue as exc:
                self.diags.append(self.problem(where, f"{spec.name}: {exc}", exc))
                ok = False
        elif header and not top:
            self.diags.append(
                warning(where, f"{spec.name}: extra words ignored: {' '.join(header)}")
            )
        closed = top
        while (stmt := self.peek()) is not None:
            self.pos += 1
            if stmt.kind is Kind.CLOSE:
                if top:
                    self.diags.append(error(stmt.where, "unexpected '}'"))
                    continue
                closed = True
                positions["}"] = stmt.where  # keepalived's end handlers report here
                break
            if stmt.kind is Kind.OPEN:
                self.diags.append(error(stmt.where, "unexpected '{'"))
                self.skip_block()
                continue
            if spec.items is not None:
                self.item(spec, stmt, items, item_wheres)
            else:
                self.keyword(spec, stmt, fields, positions)
        if not closed:
            self.diags.append(error(where, f"missing '}}' for {spec.name} block opened here"))
        if not ok:
            return None, item_wheres
        if spec.items is not None:
            if spec.model is None:
                return tuple(items), item_wheres
            # A named list block (`virtual_server_group NAME { ... }`): header fields + items.
            fields["items"] = tuple(items)
            for i, item_where in enumerate(item_wheres):
                positions[f"items[{i}]"] = item_where
        return self.build(spec, where, fields, positions), item_wheres

    def item(
        self, spec: Block, stmt: Statement, items: list[Any], item_wheres: list[Where]
    ) -> None:
        assert spec.items is not None
        if self.opens_block():
            self.diags.append(error(stmt.where, f"{spec.name}: unexpected block"))
            self.skip_block()
            return
        value = self.parsed(partial(spec.items, stmt.words, stmt.where), stmt.where, spec.name)
        if value is _UNUSABLE:
            return
        if spec.flatten:
            items.extend(value)
            item_wheres.extend([stmt.where] * len(value))
        else:
            items.append(value)
            item_wheres.append(stmt.where)

    def keyword(
        self, spec: Block, stmt: Statement, fields: dict[str, Any], positions: dict[str, Where]
    ) -> None:
        name, args = stmt.words[0], stmt.words[1:]
        kw = spec.lookup.get(name)
        if kw is None and spec.rest is not None:
            kw, args = spec.rest, stmt.words
        if kw is None:
            self.diags.append(warning(stmt.where, f"unknown keyword '{name}'"))
            if self.opens_block():
                self.skip_block()
            return
        if kw.deprecated_by:
            message = f"'{name}' is deprecated, use '{kw.deprecated_by}'"
            if kw.quiet_deprecation:
                self.diags.append(note(stmt.where, message))
            else:
                self.diags.append(warning(stmt.where, message))
        if kw.block is not None:
            if not self.opens_block():
                # keepalived (lib/parser.c process_stream) reads the lines that follow as
                # the block's body all the same, up to the '}' that closes it.
                self.diags.append(
                    error(stmt.where, f"'{name}': Missing '{{' at beginning of configuration block")
                )
            value, item_wheres = self.block(kw.block, stmt.where, args)
            if value is None:
                return
        else:
            if self.opens_block():
                self.diags.append(error(stmt.where, f"'{name}' does not take a block"))
                self.skip_block()
                return
            value = self.parsed(partial(kw.parse, args), stmt.where, name)
            if value is _UNUSABLE:
                return
            item_wheres = []
        self.store(kw, value, fields, positions, stmt.where, item_wheres)

    def parsed(self, parse: Callable[[], Any], where: Where, label: str) -> Any:
        """The value `parse` reads, or _UNUSABLE (after its diagnostic): keepalived runs
        on with a fix-up's value (an error), or without the keyword or item."""
        try:
            return parse()
        except Fallback as exc:
            self.diags.append(error(where, f"{label}: {exc}"))
            return exc.value
        except BadValue as exc:
            self.diags.append(self.problem(where, f"{label}: {exc}", exc))
            return _UNUSABLE

    @staticmethod
    def problem(where: Where, message: str, exc: BadValue) -> Diagnostic:
        """A value keepalived cannot use: it runs on without it, except for a missing
        parameter, where it exits."""
        if isinstance(exc, MissingValue):
            return stop(where, message, ExitCode.PARSE_EXIT, child=STOPS_ALL)
        return error(where, message)

    @staticmethod
    def store(
        kw: Keyword,
        value: Any,
        fields: dict[str, Any],
        positions: dict[str, Where],
        where: Where,
        item_wheres: list[Where],
    ) -> None:
        """Set the keyword's field(s) and record the line of each (see source.Positions)."""
        target = kw.target
        if kw.spreads:
            fields.update(value)
            for key in value:
                positions[key] = where
        elif kw.extends or (
            kw.block is not None and kw.block.items is not None and kw.block.model is None
        ):
            collected = fields.setdefault(target, [])
            start = len(collected)
            collected.extend(value)
            positions.setdefault(target, where)
            for i in range(len(value)):
                positions[f"{target}[{start + i}]"] = (
                    item_wheres[i] if i < len(item_wheres) else where
                )
        elif kw.repeat:
            collected = fields.setdefault(target, [])
            positions.setdefault(target, where)
            positions[f"{target}[{len(collected)}]"] = where
            collected.append(value)
        else:
            fields[target] = value  # keepalived: a repeated keyword overrides
            positions[target] = where

    def build(
        self, spec: Block, where: Where, fields: dict[str, Any], positions: dict[str, Where]
    ) -> Any:
        assert spec.model is not None
        for key, value in fields.items():
            if isinstance(value, list):
                fields[key] = tuple(value)
        if "positions" in getattr(spec.model, "__dataclass_fields__", ()):
            fields["positions"] = MappingProxyType(positions)
        try:
            return spec.model(where=where, **fields)
        except BadValue as exc:
            self.diags.append(error(where, f"{spec.name}: {exc}"))
            return None


def parse(lines: list[Line], root: Block, diags: list[Diagnostic]) -> Any:
    """Parse every line against `root`; problems are appended to `diags`."""
    walker = _Walker(statements(lines), diags)
    start = lines[0].where if lines else Where("<empty>", 0)
    return walker.block(root, Where(start.file, 0), (), top=True)[0]
