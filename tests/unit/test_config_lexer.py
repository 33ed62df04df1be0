"""Line-level rules: comments, quotes, words, braces (keepalived's lib/parser.c)."""

from __future__ import annotations

import pytest

from fastha.config.lexer import decomment, split_brace, split_quoted_escaped, split_words

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("line", "text"),
    [
        ("  router_id R1  ", "router_id R1"),
        ("router_id R1 # comment", "router_id R1"),
        ("router_id R1 ! comment", "router_id R1"),
        ("word#glued", "word"),  # a comment may start mid-word
        ('notify "a # b" # real', 'notify "a # b"'),
        ("'a # b'", "'a"),  # single quotes do not protect comments
        (r"pass \#hash", "pass #hash"),
        (r"pass \!bang", "pass !bang"),
        ("! whole line", ""),
        ("$X=a \\", "$X=a\\"),
        ("x # comment \\", "x\\"),  # keepalived keeps the continuation after a comment
    ],
)
def test_decomment(line: str, text: str) -> None:
    assert decomment(line).text == text


def test_decomment_continuation_and_unterminated_quote() -> None:
    assert decomment("a \\").continued
    assert not decomment("a").continued
    assert decomment('router_id "abc').problem == "Unterminated quote 'router_id \"abc'"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a b\tc", ["a", "b", "c"]),
        ('router_id "a b"', ["router_id", "a b"]),
        ('q"a b"c d', ["q", "a b", "c", "d"]),
        ('"" x', ["", "x"]),
        (r'"a\nb"', [r"a\nb"]),  # no escapes in ordinary words
        ("'a b'", ["'a", "b'"]),
    ],
)
def test_split_words(text: str, words: list[str]) -> None:
    assert split_words(text) == (words, None)


def test_split_words_unmatched_quote_drops_rest() -> None:
    words, problem = split_words('a "b c')
    assert words == ["a"]
    assert problem is not None and "Unmatched quote" in problem


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("/bin/echo 'a b' c", ["/bin/echo", "a b", "c"]),
        ('ab" efg h "mnop', ["ab efg h mnop"]),
        (r"a\tb \x41\101 \cA \\ \"", ["a\tb", "AA", "\x01", "\\", '"']),
        ('"it\'s"', ["it's"]),
    ],
)
def test_split_quoted_escaped(text: str, words: list[str]) -> None:
    assert split_quoted_escaped(text) == (words, None)


def test_split_quoted_escaped_problems() -> None:
    assert split_quoted_escaped("a 'b")[1] is not None
    assert split_quoted_escaped("a \\")[1] is not None


@pytest.mark.parametrize(
    ("text", "head", "residue"),
    [
        ("vrrp_instance X{", "vrrp_instance X", "{"),
        ("{", "{", ""),
        ("{ key value }", "{", "key value }"),
        ("key value }", "key value", "}"),
        ("}}}", "}", "}}"),
        ('notify "a { b" {', 'notify "a { b"', "{"),
        ("plain words", "plain words", ""),
    ],
)
def test_split_brace(text: str, head: str, residue: str) -> None:
    assert split_brace(text) == (head, residue)
