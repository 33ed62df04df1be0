"""Walks preprocessed lines against the keyword table and builds the model.

keepalived is line-oriented with braces: a statement is the words of a line up to a
`{`, a `}` or the end of the line, and a block keyword's `{` may sit on the next line.
Problems never stop the walk: each becomes a Diagnostic with file:line and the parser
moves on, so one run reports every problem in the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from fastha.config.diagnostics import Diagnostic, error, warning
from fastha.config.schema import Block, Keyword
from fastha.config.source import Line, Where
from fastha.config.values import BadValue


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

    def block(self, spec: Block, where: Where, header: tuple[str, ...], top: bool = False) -> Any:
        """Parse a block's body (its `{` already consumed); None when it cannot be built."""
        fields: dict[str, Any] = {}
        items: list[Any] = []
        ok = True
        if spec.header is not None:
            try:
                fields.update(spec.header(header))
            except BadValue as exc:
                self.diags.append(error(where, f"{spec.name}: {exc}"))
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
                break
            if stmt.kind is Kind.OPEN:
                self.diags.append(error(stmt.where, "unexpected '{'"))
                self.skip_block()
                continue
            if spec.items is not None:
                self.item(spec, stmt, items)
            else:
                self.keyword(spec, stmt, fields)
        if not closed:
            self.diags.append(error(where, f"missing '}}' for {spec.name} block opened here"))
        if not ok:
            return None
        if spec.items is not None:
            if spec.model is None:
                return tuple(items)
            # A named list block (`virtual_server_group NAME { ... }`): header fields + items.
            fields["items"] = tuple(items)
        return self.build(spec, where, fields)

    def item(self, spec: Block, stmt: Statement, items: list[Any]) -> None:
        assert spec.items is not None
        if self.opens_block():
            self.diags.append(error(stmt.where, f"{spec.name}: unexpected block"))
            self.skip_block()
            return
        try:
            value = spec.items(stmt.words, stmt.where)
        except BadValue as exc:
            self.diags.append(error(stmt.where, f"{spec.name}: {exc}"))
            return
        if spec.flatten:
            items.extend(value)
        else:
            items.append(value)

    def keyword(self, spec: Block, stmt: Statement, fields: dict[str, Any]) -> None:
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
            self.diags.append(
                warning(stmt.where, f"'{name}' is deprecated, use '{kw.deprecated_by}'")
            )
        if kw.block is not None:
            if not self.opens_block():
                self.diags.append(error(stmt.where, f"'{name}' needs a {{ ... }} block"))
                return
            value = self.block(kw.block, stmt.where, args)
            if value is None:
                return
        else:
            if self.opens_block():
                self.diags.append(error(stmt.where, f"'{name}' does not take a block"))
                self.skip_block()
                return
            try:
                value = kw.parse(args)
            except BadValue as exc:
                self.diags.append(error(stmt.where, f"{name}: {exc}"))
                return
        self.store(kw, value, fields)

    @staticmethod
    def store(kw: Keyword, value: Any, fields: dict[str, Any]) -> None:
        if kw.spreads:
            fields.update(value)
        elif kw.extends or (
            kw.block is not None and kw.block.items is not None and kw.block.model is None
        ):
            fields.setdefault(kw.target, []).extend(value)
        elif kw.repeat:
            fields.setdefault(kw.target, []).append(value)
        else:
            fields[kw.target] = value  # keepalived: a repeated keyword overrides

    def build(self, spec: Block, where: Where, fields: dict[str, Any]) -> Any:
        assert spec.model is not None
        for key, value in fields.items():
            if isinstance(value, list):
                fields[key] = tuple(value)
        try:
            return spec.model(where=where, **fields)
        except BadValue as exc:
            self.diags.append(error(where, f"{spec.name}: {exc}"))
            return None


def parse(lines: list[Line], root: Block, diags: list[Diagnostic]) -> Any:
    """Parse every line against `root`; problems are appended to `diags`."""
    walker = _Walker(statements(lines), diags)
    start = lines[0].where if lines else Where("<empty>", 0)
    return walker.block(root, Where(start.file, 0), (), top=True)
