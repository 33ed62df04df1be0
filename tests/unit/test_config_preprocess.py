"""Preprocessing: includes, conditionals, macros, generators; every line keeps file:line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fastha.config.diagnostics import ConfigFatal, ExitCode, Severity
from fastha.config.preprocess import lines_from_text, load_lines
from fastha.config.source import Line

pytestmark = pytest.mark.unit


def flat(lines: list[Line]) -> list[tuple[int, str]]:
    return [(ln.where.line, " ".join(ln.words)) for ln in lines]


def run(text: str, config_id: str | None = None) -> list[tuple[int, str]]:
    lines, diags = lines_from_text(text, config_id=config_id)
    assert [d for d in diags if d.severity is Severity.ERROR] == []
    return flat(lines)


def errors(text: str, config_id: str | None = None) -> list[str]:
    _, diags = lines_from_text(text, config_id=config_id)
    return [f"{d.where.line if d.where else '-'} {d.message}" for d in diags]


# -- braces, comments, quotes ---------------------------------------------------------


def test_braces_always_separate_words() -> None:
    text = "vrrp_instance X{\nstate MASTER }}\nvirtual_ipaddress\n{\n{ 10.0.0.1 }\n"
    assert run(text) == [
        (1, "vrrp_instance X"),
        (1, "{"),
        (2, "state MASTER"),
        (2, "}"),
        (2, "}"),
        (3, "virtual_ipaddress"),
        (4, "{"),
        (5, "{"),
        (5, "10.0.0.1"),
        (5, "}"),
    ]


def test_comments_quotes_and_blank_lines() -> None:
    text = '! header\n\n  # indented\nrouter_id "a b" ! tail\nnotify "x # y" # z\n'
    lines, _ = lines_from_text(text)
    assert [(ln.where.line, ln.words) for ln in lines] == [
        (4, ("router_id", "a b")),
        (5, ("notify", "x # y")),
    ]
    assert lines[1].raw == 'notify "x # y"'


def test_backslash_continues_ordinary_lines() -> None:
    # A deliberate extension over keepalived 2.2.7 (which keeps `\` as a word): the
    # joined line keeps the file:line of its first physical line.
    assert run("foo3\\\nfoo4 x \\\n  more\nnext 1\n") == [(1, "foo3 foo4 x more"), (4, "next 1")]


def test_backslash_before_blank_line_ends_the_statement() -> None:
    assert run("a 1 \\\n\nb 2\n") == [(1, "a 1"), (3, "b 2")]


def test_crlf_and_missing_final_newline() -> None:
    assert run("a 1\r\nb 2") == [(1, "a 1"), (2, "b 2")]


def test_unterminated_quote_is_an_error_with_line() -> None:
    msgs = errors('x\nrouter_id "abc\n')
    assert any(m.startswith("2 Unterminated quote") for m in msgs)


# -- conditionals ---------------------------------------------------------------------


def test_conditional_lines() -> None:
    text = "@main a 1\n@backup a 2\n@^main b 1\n@^backup b 2\n@main\n@ c\n"
    assert run(text, "main") == [(1, "a 1"), (4, "b 2")]
    assert run(text, "backup") == [(2, "a 2"), (3, "b 1")]
    assert run(text, None) == [(3, "b 1"), (4, "b 2")]


def test_conditional_from_macro_and_on_definitions() -> None:
    text = "@main $P=240\n@backup $P=200\n$IF_MAIN=@main\npriority $P\n$IF_MAIN x 1\n"
    assert run(text, "main") == [(4, "priority 240"), (5, "x 1")]
    assert run(text, "backup") == [(4, "priority 200")]


# -- macros ---------------------------------------------------------------------------


def test_macro_forms_and_undefined() -> None:
    text = "$M=mac\n$M\n${M}x\n$M.x\n$UNDEF y\n${UNDEF}\nk $M,$M)\n$SP = v w\n$SP\n"
    assert run(text) == [
        (2, "mac"),
        (3, "macx"),
        (4, "$M.x"),  # `$NAME` needs a blank, `,`, `)` or the end after it
        (5, "$UNDEF y"),
        # An undefined ${NAME} stays, and its braces split the line as in keepalived.
        (6, "$"),
        (6, "{"),
        (6, "UNDEF"),
        (6, "}"),
        (7, "k mac,mac)"),
        (9, "v w"),
    ]


def test_macro_expands_at_use_time() -> None:
    text = (
        "$ADDRESS_BASE=10.2.${ADDRESS_BASE_SUB}\n$ADDRESS_BASE_SUB=0\n"
        "${ADDRESS_BASE}.100/32\n$ADDRESS_BASE_SUB=10\n${ADDRESS_BASE}.100/32\n"
    )
    assert run(text) == [(3, "10.2.0.100/32"), (5, "10.2.10.100/32")]


def test_multiline_macro_lines_point_at_use() -> None:
    text = (
        "$INST= \\\n"
        "vrrp_instance VI_${NUM} { \\\n"
        "    interface eth${NUM} \\\n"
        "    @high priority 130 \\\n"
        "}\n"
        "$NUM=0\n"
        "$INST\n"
        "$NUM=1\n"
        "$INST\n"
    )
    assert run(text, "high") == [
        (7, "vrrp_instance VI_0"),
        (7, "{"),
        (7, "interface eth0"),
        (7, "priority 130"),
        (7, "}"),
        (9, "vrrp_instance VI_1"),
        (9, "{"),
        (9, "interface eth1"),
        (9, "priority 130"),
        (9, "}"),
    ]


def test_multiline_definition_ends_at_blank_line() -> None:
    assert run("$ML=a1 \\\n   a2 \\\n\n   a3\n$ML\n") == [(4, "a3"), (5, "a1"), (5, "a2")]


def test_nested_multiline_macros() -> None:
    text = "$RS= \\\nreal_server 10.0.0.${R} 80 \\\n\n$VS= \\\nvs 1 \\\n$R=1 \\\n$RS \\\n$R=2 \\\n$RS\n$VS\n"
    assert run(text) == [
        (10, "vs 1"),
        (10, "real_server 10.0.0.1 80"),
        (10, "real_server 10.0.0.2 80"),
    ]


def test_multiline_macro_only_expands_at_end_of_line() -> None:
    assert run("$ML=a \\\nb\n$ML x\n") == [(3, "$ML x")]


def test_predefined_definitions(tmp_path: Path) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(
        "a ${_INSTANCE}\nb ${_PWD}\nc ${_RANDOM 7 7}\nd x${_HASH}y${_BANG}\n$_INSTANCE=o\ne $_INSTANCE\n"
    )
    lines, diags = load_lines(conf, "node1")
    assert diags == []
    assert flat(lines) == [
        (1, "a node1"),
        (2, f"b {tmp_path}"),
        (3, "c 7"),
        (4, "d x#y!"),
        (6, "e o"),
    ]


def test_self_referencing_macro_is_bounded() -> None:
    lines, diags = lines_from_text("$A=${A}x\nk ${A}\nnext 1\n")
    assert flat(lines) == [(3, "next 1")]
    assert [d.where.line for d in diags if d.where] == [2]


# -- generators -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ("~SEQ(N, 3)", ["1", "2", "3"]),
        ("~SEQ(N, 0)", ["1", "0"]),
        ("~SEQ(N, -2)", ["-1", "-2"]),
        ("~SEQ(N, 3, 1)", ["3", "2", "1"]),
        ("~SEQ(N, 0, 5, 12)", ["0", "5", "10"]),
        ("~SEQ(N, 0x10, 0x12)", ["16", "17", "18"]),
        ("~SEQx(N, 0x9, 0xb)", ["9", "a", "b"]),
        ("~SEQ(N 1)", ["1", "0"]),  # keepalived skips the separator without checking it
        ("~LST(N, a, b,c)", ["a", "b", "c"]),
    ],
)
def test_generator_values(spec: str, values: list[str]) -> None:
    assert run(f"x\n{spec} k$N\n") == [(1, "x")] + [(2, f"k{v}") for v in values]


def test_generators_nest_and_combine() -> None:
    assert run("~SEQ(A, 2) ~SEQ(B, 0, 5, 10) k_${A}_${B}\n") == [
        (1, f"k_{a}_{b}") for a in (1, 2) for b in (0, 5, 10)
    ]
    assert run("~LST({IP, IP1}, {10,1},{20,4}) ~SEQ(IP2,168,2,170) 192.${IP2}.${IP}.${IP1}\n") == [
        (1, "192.168.10.1"),
        (1, "192.170.10.1"),
        (1, "192.168.20.4"),
        (1, "192.170.20.4"),
    ]
    assert run("~LST({P,Q}, {1,2}, {3}) pq${P}_${Q}\n") == [(1, "pq1_2"), (1, "pq3_")]


def test_generator_with_multiline_macro_and_params_from_macro() -> None:
    text = "$BLK=vip ${I} { \\\n  10.0.0.${I} \\\n}\n$LAST=2\n~SEQ(I, ${LAST}) $BLK\n"
    assert run(text) == [
        (5, "vip 1"),
        (5, "{"),
        (5, "10.0.0.1"),
        (5, "}"),
        (5, "vip 2"),
        (5, "{"),
        (5, "10.0.0.2"),
        (5, "}"),
    ]


@pytest.mark.parametrize(
    "spec",
    [
        "~SEQ(U, 1, 0, 3)",
        "~SEQ(U, 3, 1, 1)",
        "~SEQ(U)",
        "~SEQ U, 3)",
        "~SEQ(U, 1, 2, 3, 4)",
        "~SEQ(U, 3",
        "~SEQx(U, -1, 3)",
        "~LST(L)",
        "~LST(L, a b)",
        '~LST(L, "a")',
        "~LST(L, a, {b,c})",
    ],
)
def test_invalid_generators(spec: str) -> None:
    lines, diags = lines_from_text(f"{spec} k$U\nafter 1\n")
    assert flat(lines) == [(2, "after 1")]
    assert diags and all(d.where is not None and d.where.line == 1 for d in diags)


def test_generator_limit() -> None:
    lines, diags = lines_from_text("~SEQ(N, 0, 1, 999999999999999) k$N\n~SEQ(M, 2) m$M\n")
    assert flat(lines) == [(2, "m1"), (2, "m2")]
    assert len(diags) == 1 and diags[0].where is not None and diags[0].where.line == 1
    lines, diags = lines_from_text("~SEQ(A, 100) ~SEQ(B, 100) x\n", max_lines=1000)
    assert len(lines) <= 1000 and any(
        "limit" in d.message or "more than" in d.message for d in diags
    )


# -- includes -------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def where_words(lines: list[Line], root: Path) -> list[tuple[str, int, str]]:
    return [
        (os.path.relpath(ln.where.file, root), ln.where.line, " ".join(ln.words)) for ln in lines
    ]


def test_include_globs_relative_and_nested(tmp_path: Path) -> None:
    main = write(
        tmp_path / "etc/keepalived.conf", "top 1\ninclude conf.d/*.conf\ninclude {x,y}.inc\nend 1\n"
    )
    write(tmp_path / "etc/conf.d/b.conf", "b 1\n\nb 3\n")
    write(tmp_path / "etc/conf.d/a.conf", "a 1\ninclude ../sub/n.conf\n")
    write(tmp_path / "etc/conf.d/skip.txt", "nope\n")
    write(tmp_path / "etc/sub/n.conf", "# c\nn 2\n")
    write(tmp_path / "etc/y.inc", "y 1\n")
    write(tmp_path / "etc/x.inc", "x 1\n")
    lines, diags = load_lines(main)
    assert diags == []
    assert where_words(lines, tmp_path) == [
        ("etc/keepalived.conf", 1, "top 1"),
        ("etc/conf.d/a.conf", 1, "a 1"),
        ("etc/sub/n.conf", 2, "n 2"),
        ("etc/conf.d/b.conf", 1, "b 1"),
        ("etc/conf.d/b.conf", 3, "b 3"),
        ("etc/x.inc", 1, "x 1"),
        ("etc/y.inc", 1, "y 1"),
        ("etc/keepalived.conf", 4, "end 1"),
    ]


def test_include_via_macro_and_conditional(tmp_path: Path) -> None:
    main = write(
        tmp_path / "k.conf", "$I=include inc.conf\n$I\n@a include inc.conf\n@b include inc.conf\n"
    )
    write(tmp_path / "inc.conf", "inc 1\n")
    lines, diags = load_lines(main, "a")
    assert diags == []
    assert [ln.where.line for ln in lines] == [1, 1]


def test_include_loop_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    main = write(tmp_path / "a.conf", "a 1\ninclude b.conf\na 3\n")
    write(tmp_path / "b.conf", "b 1\n\ninclude a.conf\n")
    lines, diags = load_lines(main)
    assert [ln.words[0] for ln in lines] == ["a", "b", "a"]
    (loop,) = diags
    assert loop.severity is Severity.ERROR
    assert loop.where is not None and loop.where.file.endswith("b.conf") and loop.where.line == 3
    assert "a.conf:2" in loop.message


def test_self_include_is_a_loop(tmp_path: Path) -> None:
    main = write(tmp_path / "a.conf", "include ./a.conf\n")
    _, diags = load_lines(main)
    assert len(diags) == 1 and "loop" in diags[0].message


def test_missing_includes(tmp_path: Path) -> None:
    main = write(
        tmp_path / "k.conf",
        "include nothere.conf\ninclude none/*.conf\nincludem nothere.conf\nincludew none/*.conf\ninclude sub\ninclude a b\n",
    )
    (tmp_path / "sub").mkdir()
    _, diags = load_lines(main)
    got = [(d.where.line if d.where else 0, d.severity, d.exit_code) for d in diags]
    assert got == [
        (1, Severity.WARNING, ExitCode.OK),  # keepalived only logs it
        (3, Severity.ERROR, ExitCode.NO_CONFIG),  # keepalived -t exits 6 (checked in
        (4, Severity.ERROR, ExitCode.NO_CONFIG),  # tests/unit/test_cli_daemon_options.py)
        (5, Severity.WARNING, ExitCode.OK),  # a directory is skipped
        (6, Severity.ERROR, ExitCode.CONFIG),
    ]


def test_include_check_applies_to_the_includes_after_it(tmp_path: Path) -> None:
    """keepalived applies include_check as it reads (parser.c include_check_set): not to
    the includes before its line; `-wildcard_match` takes one check back; an
    include_check inside an include ends with that include's glob."""
    write(tmp_path / "inc.conf", "include_check\ninc 1\n")
    main = write(
        tmp_path / "k.conf",
        "include none/*.conf\ninclude inc.conf\ninclude none/*.conf\n"
        "global_defs {\n include_check\n}\ninclude none/*.conf\n"
        "include_check -wildcard_match\ninclude none/*.conf\ninclude nothere.conf\n"
        "include_check read\ninclude nothere.conf\n",
    )
    _, diags = load_lines(main)
    got = [(d.where.line if d.where else 0, d.exit_code) for d in diags]
    assert got == [
        (7, ExitCode.NO_CONFIG),  # after include_check: no wildcard match is an error
        (10, ExitCode.NO_CONFIG),  # -wildcard_match keeps match: a missing file is one
        (12, ExitCode.OK),  # `read` alone: only logged
    ], diags


def test_executable_include_is_skipped(tmp_path: Path) -> None:
    main = write(tmp_path / "k.conf", "include x.conf\nincluder x.conf\n")
    write(tmp_path / "x.conf", "x 1\n").chmod(0o755)
    lines, diags = load_lines(main)
    assert lines == []
    assert [d.severity for d in diags] == [Severity.WARNING, Severity.ERROR]


def test_main_file_unreadable_is_fatal(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.conf", tmp_path):
        with pytest.raises(ConfigFatal) as exc:
            load_lines(path)
        assert exc.value.diagnostic.exit_code is ExitCode.FATAL


def test_nul_byte_is_reported(tmp_path: Path) -> None:
    main = tmp_path / "k.conf"
    main.write_bytes(b"a 1\nb 2\x00hidden\n")
    lines, diags = load_lines(main)
    assert flat(lines) == [(1, "a 1"), (2, "b 2")]
    assert [d.where.line for d in diags if d.where] == [2]


# -- never a traceback ----------------------------------------------------------------

_PIECES = st.sampled_from(
    [
        "{", "}", '"', "'", "$", "${", "$A", "$A=", "$B=x \\", "@", "@a ", "@^a ", "~SEQ(",
        "~SEQx(", "~LST(", "~LST({", ",", ")", "\\", "\x00", "\n", "\n\n", " ", "\t", "#", "!",
        "include ", "include *", "99999999999999999999", "-1", "0x", "A", "x", "${_RANDOM 5 1}",
        "${A}", "=", "\r", "é",
    ]
)  # fmt: skip


@given(st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=40))
@example(pieces=['0"', "{", '"'])  # found in CI: a quoted brace beside a word
def test_fuzz_never_raises(pieces: list[str]) -> None:
    lines, diags = lines_from_text(
        "".join(pieces), filename="/nonexistent/fuzz.conf", config_id="a", max_lines=5000
    )
    assert len(lines) <= 5000
    for ln in lines:
        assert ln.words and all(isinstance(w, str) for w in ln.words)
        assert ln.where.line >= 1
        # An unquoted brace is a line of its own; `"{"` is a word like any other
        # (keepalived's read_line splits braces outside quotes only).
        assert '"' in ln.raw or all(w not in ("{", "}") or len(ln.words) == 1 for w in ln.words)
    for d in diags:
        assert d.where is None or d.where.line >= 1
