"""keepalived.conf files -> logical lines: includes, `@id`, `$MACRO`, `~SEQ`/`~LST`.

The rules follow keepalived's lib/parser.c read_line()/check_include(); where we differ
on purpose, a comment says so. Every output Line carries the ORIGINAL file:line: text
produced by a macro, a generator or a brace split keeps the line that used it.

Differences from the brief, where keepalived (checked against 2.2.7) wins:
- a trailing `\\` does not join ordinary lines; it only continues a `$NAME=` definition
  (keepalived passes `word\\` through as a word);
- an include pattern that matches nothing is not an error for plain `include`
  (keepalived logs and goes on); `includem`/`includew`/`includeb`/`includea` make it one;
- `@id` and `$NAME` work on include lines too, since the include check runs last.
"""

from __future__ import annotations

import glob
import os
import stat
from dataclasses import dataclass

from fastha.config.diagnostics import ConfigFatal, Diagnostic, ExitCode, error, note
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
MAX_INCLUDE_DEPTH = 64
# Nesting of generators, residues and multi-line expansions within one physical line.
MAX_NESTING = 100
# keepalived's ~SEQ copies its parameters into a 64-byte buffer.
_SEQ_PARAMS_MAX = 3 * 20 + 3

INCLUDE_KEYWORDS = frozenset(
    {"include", "includer", "includem", "includew", "includeb", "includea"}
)


@dataclass(frozen=True, slots=True)
class _IncludeChecks:
    """keepalived's include_check flags, chosen by the include keyword's suffix."""

    readable: bool = False
    match: bool = False
    wildcard_match: bool = False
    brace_match: bool = False


_FLAG_WORDS = {"read": "readable", "match": "match", "wildcard_match": "wildcard_match",
               "brace_match": "brace_match"}  # fmt: skip


def include_check_set(current: _IncludeChecks, args: list[str]) -> _IncludeChecks:
    """keepalived's include_check line (parser.c include_check_set): no word sets every
    check; ``WORD`` sets read + WORD (first word only), ``+WORD`` adds, ``-WORD`` removes;
    an unknown word is ignored (the keyword table reports it)."""
    if not args:
        return _IncludeChecks(True, True, True, True)
    flags = {f: getattr(current, f) for f in _FLAG_WORDS.values()}
    for i, word in enumerate(args):
        sign = word[0] if word[:1] in ("+", "-") else ""
        name = _FLAG_WORDS.get(word[len(sign) :])
        if not sign:
            if i > 0:
                continue  # keepalived: "Duplicate include_check ... - ignoring"
            flags = dict.fromkeys(flags, False)
        if name is None:
            continue
        if sign == "-":
            flags[name] = False
        else:
            flags[name] = True
            if not sign:
                flags["readable"] = True
    return _IncludeChecks(**flags)


def _either(a: _IncludeChecks, b: _IncludeChecks) -> _IncludeChecks:
    return _IncludeChecks(*(getattr(a, f) or getattr(b, f) for f in _FLAG_WORDS.values()))


_CHECKS = {
    "include": _IncludeChecks(),
    "includer": _IncludeChecks(readable=True),
    "includem": _IncludeChecks(readable=True, match=True),
    "includew": _IncludeChecks(readable=True, wildcard_match=True),
    "includeb": _IncludeChecks(readable=True, brace_match=True),
    "includea": _IncludeChecks(True, True, True, True),
}


# What keepalived only logs: shown, but it does not change `-t`'s exit code.
info = note
# A failed include check: keepalived exits 6 before it even validates.
NO_CONFIG = ExitCode.NO_CONFIG


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


def _brace_alternatives(pattern: str) -> list[str]:
    """csh-style `{a,b}` expansion, as glob(GLOB_BRACE) does, outermost group first."""
    depth, start = 0, -1
    for i, c in enumerate(pattern):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth:
            depth -= 1
            if depth == 0:
                inner, parts, level, last = pattern[start + 1 : i], [], 0, 0
                for j, d in enumerate(inner):
                    level += d == "{"
                    level -= d == "}"
                    if d == "," and level == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                if len(parts) == 1:
                    continue  # `{x}` is literal for glob
                head, tail = pattern[:start], pattern[i + 1 :]
                return [alt for part in parts for alt in _brace_alternatives(head + part + tail)]
    return [pattern]


def _strtol(s: str, i: int) -> tuple[int, int]:
    """C strtol(s + i, &end, 0): (value, end index); no digits gives (0, i)."""
    n = len(s)
    j = i
    while j < n and s[j] in " \t\n\v\f\r":
        j += 1
    sign = 1
    if j < n and s[j] in "+-":
        sign = -1 if s[j] == "-" else 1
        j += 1
    base, digits = 10, "0123456789"
    if s[j : j + 2].lower() == "0x" and j + 2 < n and s[j + 2] in "0123456789abcdefABCDEF":
        base, digits, j = 16, "0123456789abcdefABCDEF", j + 2
    elif j < n and s[j] == "0":
        base, digits = 8, "01234567"
    k = j
    while k < n and s[k] in digits:
        k += 1
    if k == j:
        return 0, i
    value = sign * int(s[j:k], base)
    return max(-(2**63), min(2**63 - 1, value)), k


class _Preprocessor:
    def __init__(self, config_id: str | None, max_lines: int, *, all_config: bool = False) -> None:
        self.config_id = config_id
        self.all_config = all_config
        # include_check: in force for the includes read after its line (keepalived
        # applies it as it reads), restored when the include that set it ends.
        self.include_check = _IncludeChecks()
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

    def _include(self, keyword: str, pattern: str, where: Where) -> None:
        checks = _either(_CHECKS["includea" if self.all_config else keyword], self.include_check)
        if len(self.reading) >= MAX_INCLUDE_DEPTH:
            self.diags.append(error(where, f"includes nested more than {MAX_INCLUDE_DEPTH} deep"))
            return
        base = os.path.dirname(where.file) if not where.file.startswith("<") else ""
        full = os.path.join(base, pattern)
        wildcard = any(c in pattern for c in "*?[")
        alternatives = _brace_alternatives(full)
        matches: list[str] = []
        for alt in alternatives:
            found = sorted(glob.glob(alt))
            if not found and len(alternatives) > 1 and checks.brace_match:
                self.diags.append(error(where, f"Config files missing '{alt}'.", NO_CONFIG))
            matches.extend(found)
        if not matches:
            if wildcard:
                if checks.wildcard_match:
                    self.diags.append(
                        error(where, f"No config files matched '{pattern}'.", NO_CONFIG)
                    )
            elif checks.match or checks.wildcard_match:
                self.diags.append(error(where, f"Config files missing '{pattern}'.", NO_CONFIG))
            else:
                self.diags.append(info(where, f"Config files missing '{pattern}'."))
            return
        # An include_check inside these files lasts until their glob is read (parser.c).
        saved = self.include_check
        try:
            self._read_matches(matches, checks, where)
        finally:
            self.include_check = saved

    def _read_matches(self, matches: list[str], checks: _IncludeChecks, where: Where) -> None:
        for path in matches:
            problem = self._unreadable(path)
            if problem is not None:
                message = f"Configuration file '{path}' {problem} - skipping"
                self.diags.append(
                    error(where, message, NO_CONFIG) if checks.readable else info(where, message)
                )
                continue
            real = os.path.realpath(path)
            if any(r == real for r, _ in self.reading):
                chain = " -> ".join(str(w) for _, w in self.reading[1:] if w is not None)
                chain = f"{chain} -> {where}" if chain else str(where)
                # keepalived recurses until it runs out of file descriptors; we stop here.
                self.diags.append(
                    error(where, f"include loop: '{path}' is already being read ({chain})")
                )
                continue
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError as exc:
                message = f"Configuration file '{path}' open problem ({exc.strerror}) - skipping"
                self.diags.append(
                    error(where, message, NO_CONFIG) if checks.readable else info(where, message)
                )
                continue
            self._read(data, path, where)

    @staticmethod
    def _unreadable(path: str) -> str | None:
        try:
            st = os.stat(path)
        except OSError as exc:
            return f"open problem ({exc.strerror})"
        if stat.S_ISDIR(st.st_mode):
            return "is a directory"
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o111:
            return "is not a regular non-executable file"
        return None

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
                self._include(words[0], words[1], where)
                return
            if words and words[0] == "include_check":
                self.include_check = include_check_set(self.include_check, words[1:])
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
            seq = self._parse_seq(text, where)
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
        lst = self._parse_lst(text)
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

    def _parse_seq(self, text: str, where: Where) -> tuple[str, int, int, int, bool, str] | None:
        """keepalived's add_seq(): ~SEQ[x](VAR, [START,] [STEP,] END) TEXT."""
        p = 4
        hexa = text[p : p + 1] == "x"
        p += hexa
        while p < len(text) and text[p] in BLANKS:
            p += 1
        if text[p : p + 1] != "(":
            return None
        p += 1
        while p < len(text) and text[p] in BLANKS:
            p += 1
        var_start = p
        while p < len(text) and text[p] not in " \t,)":
            p += 1
        var = text[var_start:p]
        while p < len(text) and text[p] in BLANKS:
            p += 1
        if p >= len(text) or text[p] == ")" or not var:
            self.diags.append(error(where, f"Invalid ~SEQ definition '{text}'"))
            return None
        p += 1  # keepalived skips this character without checking it is a comma
        while p < len(text) and text[p] in BLANKS:
            p += 1
        close = text.find(")", p)
        if close < 0:
            return None
        params = text[p : close + 1]
        if len(params) > _SEQ_PARAMS_MAX:
            self.diags.append(error(where, f"~SEQ parameter strings too long '{text}'"))
            return None
        exp = self.macros.expand(params)
        if exp.pending or exp.problem is not None:
            self.diags.append(error(where, f"~SEQ parameter is multiline definition '{text}'"))
            return None
        params = exp.text
        nums: list[int] = []
        q = 0
        while True:
            value, q = _strtol(params, q)
            nums.append(value)
            while q < len(params) and params[q] in BLANKS:
                q += 1
            if q < len(params) and params[q] == ")":
                break
            if q >= len(params) or params[q] != "," or len(nums) == 3:
                return None
            q += 1
        if len(nums) == 1:
            (end,) = nums
            step, start = (-1 if end < 1 else 1), (-1 if end < 0 else 1)
        elif len(nums) == 2:
            start, end = nums
            step = 1 if start <= end else -1
        else:
            start, step, end = nums
            if not step or (start < end and step < 0) or (start > end and step > 0):
                self.diags.append(error(where, f"Invalid ~SEQ values '{text}'"))
                return None
        if hexa and (start < 0 or end < 0):
            self.diags.append(error(where, f"~SEQx is only valid for positive numbers '{text}'"))
            return None
        count = (end - start) // step + 1
        rest = text[close + 1 :].lstrip(BLANKS)
        return var, start, step, count, hexa, rest

    @staticmethod
    def _parse_lst(text: str) -> tuple[list[str], list[list[str]], str] | None:
        """~LST(VAR, v1, v2, ...) or ~LST({A,B}, {a1,b1}, {a2,b2}) TEXT.

        As in keepalived 2.2.7, values are bare words: blanks inside a value, quotes or
        `$` parameters make the specification invalid.
        """
        p = 4
        while p < len(text) and text[p] in BLANKS:
            p += 1
        if text[p : p + 1] != "(":
            return None
        close = text.find(")", p)
        if close < 0:
            return None
        items: list[list[str]] = []
        body = text[p + 1 : close]
        i = 0
        while True:
            while i < len(body) and body[i] in BLANKS:
                i += 1
            if body[i : i + 1] == "{":
                end = body.find("}", i)
                if end < 0:
                    return None
                group = [v.strip(BLANKS) for v in body[i + 1 : end].split(",")]
                i = end + 1
            else:
                end = i
                while end < len(body) and body[end] != ",":
                    end += 1
                group = [body[i:end].strip(BLANKS)]
                i = end
            if any(c in v for v in group for c in " \t\"'{}$"):
                return None
            items.append(group)
            while i < len(body) and body[i] in BLANKS:
                i += 1
            if i >= len(body):
                break
            if body[i] != ",":
                return None
            i += 1
        names, rows = items[0], items[1:]
        valid_name = all(
            n and not n[0].isdigit() and all(c.isalnum() or c == "_" for c in n) and n.isascii()
            for n in names
        )
        if not rows or not valid_name or any(len(r) > len(names) for r in rows):
            return None
        return names, rows, text[close + 1 :].lstrip(BLANKS)
