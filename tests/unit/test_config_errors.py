"""Error messages: the right file:line, through includes, macros and ~SEQ.

tests/golden/config/broken/NAME.conf each have a sidecar NAME.expect:

    # comment
    exit 5
    SEVERITY FILE:LINE[,LINE...] SUBSTRING

SEVERITY is error, warning or any; FILE is relative to broken/; SUBSTRING (the rest of
the line, compared case-insensitively) must occur in the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "golden" / "config"
BROKEN = CORPUS / "broken"


@dataclass(frozen=True)
class Expect:
    severity: str
    file: str
    lines: tuple[int, ...]
    text: str

    def __str__(self) -> str:
        return f"{self.severity} {self.file}:{','.join(map(str, self.lines))} ~ {self.text!r}"


def read_expect(path: Path) -> tuple[int | None, list[Expect]]:
    exit_code: int | None = None
    out: list[Expect] = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("exit "):
            exit_code = int(line.split()[1])
            continue
        severity, place, text = line.split(None, 2)
        file, _, lines = place.rpartition(":")
        assert severity in ("error", "warning", "any"), raw
        out.append(Expect(severity, file, tuple(int(n) for n in lines.split(",")), text))
    return exit_code, out


def _matches(diag, exp: Expect, base: Path) -> bool:
    if diag.where is None:
        return False
    if exp.severity != "any" and diag.severity.value != exp.severity:
        return False
    if Path(diag.where.file).resolve() != (base / exp.file).resolve():
        return False
    return diag.where.line in exp.lines and exp.text.lower() in diag.message.lower()


def _report(diags) -> str:
    return "\n".join(str(d) for d in diags) or "(no diagnostics)"


def assert_diagnosed(result, exp: Expect, base: Path) -> None:
    assert any(_matches(d, exp, base) for d in result.diagnostics), (
        f"expected {exp}\ngot:\n{_report(result.diagnostics)}"
    )


BROKEN_FILES = sorted(BROKEN.glob("*.conf"))

# Broken configs whose diagnostics fastha does not produce yet (bugs reported to the
# owners); strict, so the mark must go when the bug is fixed.
KNOWN_BUGS: dict[str, str] = {}


def _broken_params():
    for path in BROKEN_FILES:
        marks = []
        if path.name in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(reason=KNOWN_BUGS[path.name], strict=True))
        yield pytest.param(path, id=path.name, marks=marks)


@pytest.mark.unit
def test_every_broken_config_has_a_sidecar() -> None:
    missing = [p.name for p in BROKEN_FILES if not p.with_suffix(".expect").exists()]
    assert not missing


@pytest.mark.unit
@pytest.mark.parametrize("path", list(_broken_params()))
def test_broken_config_diagnostics(path: Path) -> None:
    from fastha.config.loader import load

    exit_code, expects = read_expect(path.with_suffix(".expect"))
    result = load(path)
    assert expects, "a sidecar must expect at least one diagnostic"
    for exp in expects:
        assert_diagnosed(result, exp, BROKEN)
    if exit_code is not None:
        assert int(result.exit_code) == exit_code, _report(result.diagnostics)
    assert not result.ok or any(d.severity.value == "warning" for d in result.diagnostics)


# --- positions through the preprocessor, on small files written here -----------------

BAD_INSTANCE = """\
vrrp_instance VI_{n} {{
    interface lo
    virtual_router_id {n}
    priority 100
    advert_int never
    virtual_ipaddress {{
        192.0.2.{n}/32
    }}
}}
"""


def _load(path: Path, cid: str | None = None):
    from fastha.config.loader import load

    return load(path, cid)


def _where(result, text: str) -> list[tuple[str, int]]:
    return [
        (Path(d.where.file).name, d.where.line)
        for d in result.diagnostics
        if d.where is not None and text in d.message
    ]


@pytest.mark.unit
def test_error_in_nested_include_points_into_that_file(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "main.conf").write_text("! main\n\ninclude d/*.conf\n")
    (tmp_path / "d" / "a.conf").write_text("# a\ninclude e/inner.conf\n")
    (tmp_path / "d" / "e" / "inner.conf").write_text("\n\n" + BAD_INSTANCE.format(n=7))
    result = _load(tmp_path / "main.conf")
    assert ("inner.conf", 7) in _where(result, "never"), _report(result.diagnostics)
    bad = next(d for d in result.diagnostics if "never" in d.message)
    assert Path(bad.where.file).resolve() == (tmp_path / "d/e/inner.conf").resolve()


@pytest.mark.unit
def test_lines_after_an_include_keep_their_own_numbers(tmp_path: Path) -> None:
    (tmp_path / "inc.conf").write_text("! ten\n! lines\n\n\n\n\n\n\n\n\n")
    (tmp_path / "main.conf").write_text("include inc.conf\n" + BAD_INSTANCE.format(n=8))
    result = _load(tmp_path / "main.conf")
    assert ("main.conf", 6) in _where(result, "never"), _report(result.diagnostics)


@pytest.mark.unit
def test_error_in_multiline_macro_is_reported_at_its_use(tmp_path: Path) -> None:
    body = " \\\n".join(BAD_INSTANCE.format(n="${N}").splitlines())
    text = f"$VI= \\\n{body}\n\n$N=3\n! padding\n$VI\n"
    (tmp_path / "m.conf").write_text(text)
    use_line = text.splitlines().index("$VI") + 1
    result = _load(tmp_path / "m.conf")
    assert ("m.conf", use_line) in _where(result, "never"), _report(result.diagnostics)


@pytest.mark.unit
def test_error_from_a_parameter_value_is_at_the_line_using_it(tmp_path: Path) -> None:
    text = "$PRIO=900\n\nvrrp_instance VI_1 {\n interface lo\n virtual_router_id 9\n"
    text += " priority $PRIO\n virtual_ipaddress {\n  192.0.2.9/32\n }\n}\n"
    (tmp_path / "p.conf").write_text(text)
    result = _load(tmp_path / "p.conf")
    assert ("p.conf", 6) in _where(result, "900"), _report(result.diagnostics)


@pytest.mark.unit
def test_seq_expansion_errors_point_at_the_seq_line(tmp_path: Path) -> None:
    text = "vrrp_instance VI_1 {\n interface lo\n virtual_router_id 9\n virtual_ipaddress {\n"
    text += "  ~SEQ(X, 254, 1, 257) 192.0.2.${X}/32\n }\n}\n"
    (tmp_path / "s.conf").write_text(text)
    result = _load(tmp_path / "s.conf")
    for bad in ("192.0.2.256", "192.0.2.257"):
        assert ("s.conf", 5) in _where(result, bad), _report(result.diagnostics)
    assert not _where(result, "192.0.2.255"), "192.0.2.255 is a valid /32"


@pytest.mark.unit
def test_brace_on_next_line_and_glued_braces_keep_line_numbers(tmp_path: Path) -> None:
    text = (
        "vrrp_instance VI_1\n{\n interface lo\n virtual_router_id 9\n"
        " virtual_ipaddress { 192.0.2.9/32 }\n priority zero }\n"
    )
    (tmp_path / "b.conf").write_text(text)
    result = _load(tmp_path / "b.conf")
    assert ("b.conf", 6) in _where(result, "zero"), _report(result.diagnostics)


@pytest.mark.unit
def test_conditional_lines_do_not_shift_numbers(tmp_path: Path) -> None:
    text = "global_defs {\n@a router_id A\n@b router_id B\n}\n" + BAD_INSTANCE.format(n=4)
    (tmp_path / "c.conf").write_text(text)
    for cid in ("a", "b", "zzz"):
        result = _load(tmp_path / "c.conf", cid)
        assert ("c.conf", 9) in _where(result, "never"), _report(result.diagnostics)


@pytest.mark.unit
def test_every_diagnostic_has_a_position_inside_the_files(tmp_path: Path) -> None:
    """No diagnostic about a corpus file points at a line past the end of its file."""
    from fastha.config.loader import load

    for path in sorted(BROKEN.glob("*.conf")):
        for diag in load(path).diagnostics:
            if diag.where is None or diag.where.line == 0:
                continue
            lines = Path(diag.where.file).read_text().count("\n") + 1
            assert 1 <= diag.where.line <= lines, f"{path.name}: {diag}"


@pytest.mark.unit
def test_missing_main_file_is_fatal_with_its_name(tmp_path: Path) -> None:
    result = _load(tmp_path / "nope.conf")
    assert result.config is None
    assert int(result.exit_code) == 4
    assert any("nope.conf" in str(d) for d in result.diagnostics), _report(result.diagnostics)
