"""Hostile and random configurations: `load` and the CLI never raise a traceback.

Two kinds of input: structure-aware soup (real keyword names from the keyword table,
braces, plausible and implausible values, preprocessor constructs: includes of files
that exist, `$MACRO`s, `@id`, `~SEQ`/`~LST`, quotes, comments, continuations) and raw
random text. Whatever comes in, `load` returns a LoadResult whose exit code is one of
keepalived -t's (0, 4, 5, 6) and the CLI exits with one of them without a traceback.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXIT_CODES = {0, 2, 4, 5, 6}  # 2: a missing parameter (keepalived exits while parsing)


@cache
def keyword_names() -> tuple[str, ...]:
    from fastha.config.keywords import ROOT

    seen: set[int] = set()
    names: set[str] = set()

    def walk(block) -> None:
        if id(block) in seen:
            return
        seen.add(id(block))
        for kw in block.keywords:
            names.update((kw.name, *kw.aliases))
            if kw.block is not None:
                walk(kw.block)

    walk(ROOT)
    return tuple(sorted(names))


VALUES = st.one_of(
    st.integers(-(2**40), 2**40).map(str),
    st.sampled_from(
        [
            *[
                "0",
                "1",
                "255",
                "256",
                "-1",
                "0x10",
                "1.5",
                "nan",
                "inf",
                "1e999",
                "192.0.2.1",
                "192.0.2.1/24",
                "10.0.0.300",
            ],
            *[
                "2001:db8::1",
                "fe80::1/64",
                "2001:db8::/129",
                "::",
                "0.0.0.0/0",
                "eth0",
                "lo",
                "nosuch0",
            ],
            *[
                "MASTER",
                "BACKUP",
                "PASS",
                "AH",
                "rr",
                "wlc",
                "NAT",
                "DR",
                "TUN",
                "TCP",
                "UDP",
                "true",
                "off",
                "dev",
                "brd",
                "scope",
            ],
            *[
                "label",
                "via",
                "table",
                "weight",
                "reverse",
                "fwmark",
                "group",
                "inet6",
                "-",
                "+",
                "/",
                ":",
                "[",
                "]",
            ],
            *["/bin/true", "/usr/bin/logger", "'quoted'", "a\\tb"],
            "",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=12),
)

PUNCT = st.sampled_from(["{", "}", "{ }", "}}", "{{", "!", "#", " ! c", " # c", "\\", '"', "'"])
PREPROC = st.one_of(
    st.sampled_from(
        [
            "$M=vrrp_instance",
            "$M=",
            "$M",
            "${M}",
            "${M",
            "$",
            "$$",
            "${_PWD}",
            "${_HASH}",
            "${_BANG}",
            "${_RANDOM 1 5}",
            "${_INSTANCE}",
            "@lb1",
            "@^lb1",
            "@",
            "@^",
            "~SEQ(X, 1, 3)",
            "~SEQ(X,3)",
            "~SEQ(X, 1, 0, 3)",
            "~SEQ(",
            "~SEQx(H, 0, 16, 64)",
            "~LST(X, a, b)",
            "~LST({A,B},{1,2})",
            "~LST(",
            "${X}",
            "include",
            "includea",
            "include inc.conf",
            "include *.inc",
            "include nonexistent/*.conf",
            "include /dev/null",
            "include inc.conf inc.conf",
        ]
    ),
)


@cache
def _keyword_strategy():
    return st.sampled_from(keyword_names())


def _word():
    return st.one_of(_keyword_strategy(), _keyword_strategy(), VALUES, PUNCT, PREPROC)


def _line():
    return st.lists(_word(), max_size=8).map(" ".join)


def soup():
    return st.lists(_line(), max_size=40).map("\n".join)


# A small tree for includes to find, including one that includes itself back.
INCLUDED = "vrrp_instance VI_INC {\n interface lo\n virtual_router_id 1\n}\ninclude inc.conf\n"


def _write(dir_: Path, text: str | bytes) -> Path:
    (dir_ / "inc.conf").write_text(INCLUDED)
    (dir_ / "a.inc").write_text("global_defs {\n router_id X\n")
    path = dir_ / "keepalived.conf"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, errors="surrogateescape")
    return path


def _load_ok(path: Path, cid: str | None) -> None:
    from fastha.config.loader import load

    result = load(path, cid)
    assert int(result.exit_code) in EXIT_CODES
    for diag in result.diagnostics:
        str(diag)  # every diagnostic renders
    if result.config is not None:
        from fastha.config.dump import dumps

        dumps(result.config)


FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.unit
@FUZZ
@given(text=soup(), cid=st.sampled_from([None, "lb1", "lb2"]))
def test_keyword_soup_never_raises(text: str, cid: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _load_ok(_write(Path(tmp), text), cid)


@pytest.mark.unit
@FUZZ
@given(text=st.text(max_size=400))
def test_random_text_never_raises(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _load_ok(_write(Path(tmp), text), None)


@pytest.mark.unit
@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _load_ok(_write(Path(tmp), data), None)


CORPUS = Path(__file__).resolve().parents[1] / "golden" / "config"


@pytest.mark.unit
@FUZZ
@given(
    name=st.sampled_from(sorted(p.name for p in CORPUS.glob("*.conf"))),
    cut=st.integers(0, 10_000),
    junk=st.one_of(PUNCT, _keyword_strategy(), VALUES, st.just("")),
    drop=st.booleans(),
)
def test_mutated_corpus_never_raises(name: str, cut: int, junk: str, drop: bool) -> None:
    """Real configs with a line dropped or garbage spliced in at a random place."""
    text = (CORPUS / name).read_text()
    cut %= len(text) + 1
    if drop:
        end = text.find("\n", cut)
        text = text[:cut] + (text[end:] if end >= 0 else "")
    else:
        text = text[:cut] + junk + text[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        _load_ok(_write(Path(tmp), text), None)


@pytest.mark.unit
@settings(deadline=None, max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(text=soup(), dump=st.booleans())
def test_cli_never_raises(text: str, dump: bool) -> None:
    from fastha.cli.main import main

    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), text)
        args = ["check-config", "-f", str(path)] + (["--dump"] if dump else [])
        result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code in EXIT_CODES, result.output


@pytest.mark.unit
@settings(deadline=None, max_examples=10, suppress_health_check=[HealthCheck.too_slow])
@given(text=soup())
def test_cli_process_never_prints_a_traceback(text: str) -> None:
    """The real process, as an operator runs it: no 'Traceback' on stderr, ever."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(Path(tmp), text)
        proc = subprocess.run(
            [sys.executable, "-m", "fastha.cli.main", "check-config", "-f", str(path), "--dump"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in EXIT_CODES, proc.stderr


@pytest.mark.unit
@pytest.mark.parametrize(
    "text",
    [
        "include /dev/null\n",
        "include keepalived.conf\n",  # includes itself
        "$A=${A}${A}\n$A\n",  # self-referencing macro
        "$A=${B}\n$B=${A}\n${A}\n",  # mutual recursion
        "$A=$A $A\n$A\n",
        "~SEQ(X, 1, 1000000000) a\n",  # huge expansion
        "~SEQ(X, 0, 0, 1) a\n",  # zero step
        "vrrp_instance V {\n" * 2000,  # deep nesting, never closed
        "}" * 5000 + "\n",
        "{" * 5000 + "\n",
        '"' * 1001 + "\n",
        "\\\n" * 1000,
        "\x00\x01\x02 vrrp_instance\x00 {\n",
    ],
    ids=lambda t: repr(t[:24]),
)
def test_hostile_inputs(tmp_path: Path, text: str) -> None:
    _load_ok(_write(tmp_path, text), None)
