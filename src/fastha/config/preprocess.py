"""keepalived.conf files -> logical lines: includes, `@id`, `$MACRO`, `~SEQ`/`~LST`.

The rules follow keepalived's lib/parser.c read_line()/check_include(); where we differ
on purpose, a comment says so. Every output Line carries the ORIGINAL file:line: text
produced by a macro, a generator or a brace split keeps the line that used it.

This module walks files and lines; which files an include reads is includes.py's job,
`$NAME` definitions and expansion macros.py's, `~SEQ`/`~LST` parsing generators.py's.

Differences from the brief, where keepalived (checked against 2.2.7) wins:
- a trailing `\\` does not join ordinary lines; it only continues a `$NAME=` definition
  (keepalived passes `word\\` through as a word);
- an include pattern that matches nothing is not an error for plain `include`
  (keepalived logs and goes on); `includem`/`includew`/`includeb`/`includea` make it one;
- `@id` and `$NAME` work on include lines too, since the include check runs last.
"""

from __future__ import annotations

import os
import stat

from fastha.config.diagnostics import ConfigFatal, Diagnostic, ExitCode, error
from fastha.config.generators import parse_lst, parse_seq
from fastha.config.includes import INCLUDE_KEYWORDS, included
from fastha.config.lexer import BLANKS, decomment, split_brace, split_words
from fastha.config.macros import Definition, Macros
from fastha.config.source import Line, Where

# Generated and emitted lines are bounded so a hostile `~SEQ(X, 1e18)` cannot eat memory.
# keepalived's own man page generates 65,024 instances (~1M lines) in one example.
MAX_LINES = 2_000_000
# Lines emitted bound the output, not the work: macros or includes that fan out to
# nothing (ten `$B` per `$A`, ten `$C` per `$B`, ... all empty) emit no line and grew
# ~10x per level (a reload runs this in the parent). So every logical line processed is
# a step, and the steps may exceed the lines emitted by only STEPS_PER_LINE to one
# (beyond a floor for definitions and conditionals); every file read counts too.
STEPS_FLOOR = 100_000
STEPS_PER_LINE = 4
MAX_FILES = 10_000
# Nesting of generators, residues and multi-line expansions within one physical line.
MAX_NESTING = 100


class _TooMany(Exception):
    """Past a bound: the message says which."""


def default_config_id() -> str:
    """keepalived's default config id: the host name up to the first dot."""
    return os.uname().nodename.split(".", 1)[0]


def load_lines(
    path: str | os.PathLike[str],
    config_id: str | None = None,
    *,
    max_lines: int = MAX_LINES,
    all_config: bool = False,
) -> tuple[list[Line], list[Diagnostic]]:
    """Read the main file and everything it includes; ConfigFatal if it cannot be read.

    `config_id` is keepalived's `-i`: None matches no `@id` line (the CLI passes
    default_config_id() to behave like keepalived without `-i`). `all_config` is
    keepalived's `-e`/`--all-config`: every include checks as `includea` (a missing,
    unmatched or unreadable file is an error).
    """
    name = os.fspath(path)
    if isinstance(name, bytes):
        name = os.fsdecode(name)
    try:
        st = os.stat(name)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(f"'{name}' is a directory")
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o111:
            raise OSError(f"'{name}' is not a regular non-executable file")
        with open(name, "rb") as f:
            data = f.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigFatal(
            error(None, f"Unable to read configuration file {name}: {reason}", ExitCode.FATAL)
        ) from None
    pre = _Preprocessor(config_id, max_lines, all_config=all_config)
    pre.run(data, name)
    return pre.out, pre.diags


def lines_from_text(
    text: str,
    filename: str = "<string>",
    config_id: str | None = None,
    *,
    max_lines: int = MAX_LINES,
) -> tuple[list[Line], list[Diagnostic]]:
    """Preprocess `text` as if it were the file `filename` (includes resolve from its dir)."""
    pre = _Preprocessor(config_id, max_lines)
    pre.run(text.encode("utf-8", "surrogatepass"), filename)
    return pre.out, pre.diags


class _Preprocessor:
    def __init__(self, config_id: str | None, max_lines: int, *, all_config: bool = False) -> None:
        self.config_id = config_id
        self.all_config = all_config
        self.macros = Macros(config_id, os.getcwd())
        self.out: list[Line] = []
        self.diags: list[Diagnostic] = []
        self.max_lines = max_lines
        self.generated = 0
        self.steps = 0
        self.files = 0
        self.reading: list[tuple[str, Where | None]] = []  # (real path, included from)
        self.collecting: Definition | None = None
        # A line ending in `\` waiting for its continuation: (text so far, first line).
        self.continued: tuple[str, Where] | None = None

    # -- files -------------------------------------------------------------------------

    def run(self, data: bytes, name: str) -> None:
        try:
            self._read(data, name, None)
        except _TooMany as exc:
            self.diags.append(error(None, str(exc)))

    def _step(self) -> None:
        self.steps += 1
        if self.steps > STEPS_FLOOR and self.steps > STEPS_PER_LINE * len(self.out):
            raise _TooMany(
                f"configuration expansion does {self.steps} steps for {len(self.out)} lines "
                "(macros or includes fanning out to nothing); refused"
            )

    def _read(self, data: bytes, name: str, included_from: Where | None) -> None:
        real = os.path.realpath(name) if not name.startswith("<") else name
        saved_pwd = self.macros.pwd
        self.reading.append((real, included_from))
        self.macros.pwd = os.path.dirname(os.path.abspath(name))
        try:
            # fgets() splits on "\n" only; "\r" before it is dropped (CRLF files).
            self.files += 1
            if self.files > MAX_FILES:
                raise _TooMany(f"configuration reads more than {MAX_FILES} files; refused")
            for number, raw in enumerate(data.split(b"\n"), start=1):
                where = Where(name, number)
                nul = raw.find(b"\0")
                if nul >= 0:
                    # C strings end at NUL: keepalived never sees the rest of the line.
                    self.diags.append(error(where, "NUL byte in line; the rest is ignored"))
                    raw = raw[:nul]
                self._physical(raw.rstrip(b"\r").decode("utf-8", "replace"), where)
            self._flush_continued()
        finally:
            self.reading.pop()
            self.macros.pwd = saved_pwd
            # A definition being collected ends with its file.
            self.collecting = None

    # -- lines -------------------------------------------------------------------------

    def _physical(self, raw: str, where: Where) -> None:
        if not raw:
            self._flush_continued()
            self._end_definition()  # an empty line ends a multi-line definition
            return
        dec = decomment(raw)
        if dec.problem is not None:
            self.diags.append(error(where, dec.problem))
        text = dec.text
        if not text:
            self._flush_continued()
            self._end_definition()  # so does a blank or comment-only line
            return
        if self.collecting is None:
            # `\` at the end of an ordinary line continues it (the issue asks for it;
            # keepalived 2.2.7 keeps the `\` as a word). Definitions keep their own rule.
            if self.continued is not None:
                head, where = self.continued
                self.continued = None
                text = f"{head} {text.lstrip(BLANKS)}"
            if text.endswith("\\") and not text.lstrip(BLANKS).startswith("$"):
                self.continued = (text[:-1].rstrip(BLANKS), where)
                return
        if self.collecting is not None:
            d = self.collecting
            if text.endswith("\\"):
                text = text[:-1].rstrip(BLANKS) + "\n"
                if len(text) >= 2:
                    d.value += text
            else:
                d.value += text
                self._end_definition()
            return
        self._process(text, where, 0, physical=True)

    def _flush_continued(self) -> None:
        if self.continued is not None:
            text, where = self.continued
            self.continued = None
            self._process(text, where, 0, physical=True)

    def _end_definition(self) -> None:
        if self.collecting is not None and not self.collecting.value:
            self.collecting.multiline = False
        self.collecting = None

    def _emit(self, line: Line) -> None:
        if len(self.out) >= self.max_lines:
            raise _TooMany(f"configuration expands to more than {self.max_lines} lines")
        self.out.append(line)

    def _process(self, text: str, where: Where, depth: int, physical: bool = False) -> None:
        """One logical line: read_line()'s conditional/definition/generator/macro loop,
        then the include check, then the brace split."""
        self._step()
        if depth > MAX_NESTING:
            self.diags.append(error(where, f"expansion nested more than {MAX_NESTING} deep"))
            return
        if "$" not in text and text[:1] not in "@~":  # ("" takes the full path)
            # Fast path (most lines): no conditional, definition, generator or macro.
            self._finish(text, where, depth)
            return
        pending: list[tuple[str, ...]] = []
        rounds = 0
        while True:
            rounds += 1
            if rounds > MAX_NESTING:
                self.diags.append(error(where, "parameter substitution does not terminate"))
                text = ""
                break
            if text.startswith("@"):
                text = self._conditional(text)
                if not text:
                    break
            if text.startswith("$"):
                d = self.macros.define(text)
                if d is not None:
                    if d.multiline and physical:
                        self.collecting = d
                    text = ""
                    break
            if text.startswith(("~SEQ", "~LST")):
                self._generate(text, where, depth)
                text = ""
                break
            if text.startswith("~") or "$" not in text:
                break
            exp = self.macros.expand(text)
            if exp.problem is not None:
                self.diags.append(error(where, f"{exp.problem}: '{text[:200]}'"))
                text = ""
                break
            pending[:0] = exp.pending
            text = exp.text
            if not exp.changed or not (text.startswith("@") or "$" in text):
                break
        if text:
            self._finish(text, where, depth)
        for group in pending:
            for line in group:
                if line:
                    self._process(line, where, depth + 1)

    def _conditional(self, text: str) -> str:
        """`@id rest` / `@^id rest`: the rest when it applies to this config id, else ''."""
        negate = text.startswith("@^")
        start = 2 if negate else 1
        ends = [i for i in (text.find(" ", start), text.find("\t", start)) if i >= 0]
        if not ends:
            return ""  # nothing after the id
        end = min(ends)
        matches = self.config_id is not None and text[start:end] == self.config_id
        if matches == negate:
            return ""
        return text[end:].lstrip(BLANKS)

    def _finish(self, text: str, where: Where, depth: int) -> None:
        if "include" in text:
            words, _ = split_words(text)
            if words and words[0] in INCLUDE_KEYWORDS and len(words) == 2:
                files = included(
                    words[0], words[1], where, self.reading, self.diags, all_config=self.all_config
                )
                for path, data in files:
                    self._read(data, path, where)
                return
        head, residue = split_brace(text)
        if head:
            words, problem = split_words(head)
            if problem is not None:
                self.diags.append(error(where, problem))
            if words and words[0] in INCLUDE_KEYWORDS:
                # keepalived only includes from a line holding exactly `include FILE`.
                self.diags.append(
                    error(where, f"'{words[0]}' must be alone on its line with one file pattern")
                )
            elif words:
                self._emit(Line(tuple(words), where, head))
        if residue:
            self._process(residue, where, depth + 1)

    # -- generators --------------------------------------------------------------------

    def _budget(self, count: int, text: str, where: Where) -> bool:
        if self.generated + count > self.max_lines:
            self.diags.append(
                error(
                    where,
                    f"'{text[:80]}' would generate {count} lines, more than the limit of {self.max_lines}",
                )
            )
            return False
        self.generated += count
        return True

    def _generate(self, text: str, where: Where, depth: int) -> None:
        if text.startswith("~SEQ"):
            seq = parse_seq(text, where, self.macros, self.diags)
            if seq is None:
                self.diags.append(error(where, f"Invalid ~SEQ specification '{text}'"))
                return
            var, start, step, count, hexa, rest = seq
            if not self._budget(count, text, where):
                return
            for k in range(count):
                value = start + k * step
                self.macros.set(var, format(value, "x") if hexa else str(value))
                self._process(rest, where, depth + 1)
            return
        lst = parse_lst(text)
        if lst is None:
            self.diags.append(error(where, f"Invalid ~LST specification '{text}'"))
            return
        names, rows, rest = lst
        if not self._budget(len(rows), text, where):
            return
        for row in rows:
            for i, name in enumerate(names):
                self.macros.set(name, row[i] if i < len(row) else "")
            self._process(rest, where, depth + 1)
