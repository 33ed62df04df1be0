"""keepalived's line generators: `~SEQ[x](VAR, [START,] [STEP,] END) TEXT` and
`~LST(VAR, v1, v2...) TEXT` / `~LST({A,B}, {a1,b1}...) TEXT`, parsed as
keepalived 2.2.7's lib/parser.c add_seq() / add_lst() do.
"""

from __future__ import annotations

from fastha.config.diagnostics import Diagnostic, error
from fastha.config.lexer import BLANKS
from fastha.config.macros import Macros
from fastha.config.source import Where

# keepalived's ~SEQ copies its parameters into a 64-byte buffer.
_SEQ_PARAMS_MAX = 3 * 20 + 3


def strtol(s: str, i: int) -> tuple[int, int]:
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


def parse_seq(
    text: str, where: Where, macros: Macros, diags: list[Diagnostic]
) -> tuple[str, int, int, int, bool, str] | None:
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
        diags.append(error(where, f"Invalid ~SEQ definition '{text}'"))
        return None
    p += 1  # keepalived skips this character without checking it is a comma
    while p < len(text) and text[p] in BLANKS:
        p += 1
    close = text.find(")", p)
    if close < 0:
        return None
    params = text[p : close + 1]
    if len(params) > _SEQ_PARAMS_MAX:
        diags.append(error(where, f"~SEQ parameter strings too long '{text}'"))
        return None
    exp = macros.expand(params)
    if exp.pending or exp.problem is not None:
        diags.append(error(where, f"~SEQ parameter is multiline definition '{text}'"))
        return None
    params = exp.text
    nums: list[int] = []
    q = 0
    while True:
        value, q = strtol(params, q)
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
            diags.append(error(where, f"Invalid ~SEQ values '{text}'"))
            return None
    if hexa and (start < 0 or end < 0):
        diags.append(error(where, f"~SEQx is only valid for positive numbers '{text}'"))
        return None
    count = (end - start) // step + 1
    rest = text[close + 1 :].lstrip(BLANKS)
    return var, start, step, count, hexa, rest


def parse_lst(text: str) -> tuple[list[str], list[list[str]], str] | None:
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
