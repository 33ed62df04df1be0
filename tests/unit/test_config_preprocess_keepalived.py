"""Same verdict as `keepalived -t` on configs whose validity hinges on preprocessing.

Each case is valid only if comments, quotes, braces, includes, `@id`, macros or
generators are handled the way keepalived handles them: a wrong rule leaves an unknown
keyword (or drops a needed one), which keepalived -t rejects with exit 5.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.support.prereq import need_tool

from fastha.config.diagnostics import ExitCode, Severity
from fastha.config.preprocess import load_lines

pytestmark = pytest.mark.unit

# The only keywords the cases use, by depth; anything else reaching the parser, or
# unbalanced braces, is a rejection (a stand-in for the keyword table).
TOP = {"global_defs"}
INNER = {"router_id", "vrrp_garp_master_delay"}

CASES: dict[str, tuple[dict[str, str], str, bool]] = {
    "comments": ({"k.conf": "! c\nglobal_defs { # c\n  router_id R ! c\n}\n"}, "n", True),
    "glued braces": ({"k.conf": "global_defs{\n router_id abc }\n"}, "n", True),
    "brace next line": ({"k.conf": "global_defs\n{\n router_id abc\n}\n"}, "n", True),
    "quoted": ({"k.conf": 'global_defs {\n "router_id" "a b"\n}\n'}, "n", True),
    "unterminated quote": ({"k.conf": 'global_defs {\n router_id "abc\n}\n'}, "n", False),
    "comment mid word": ({"k.conf": "global_defs {\n rou#ter_id R\n}\n"}, "n", False),
    "macro keyword": ({"k.conf": "$KW=router_id\nglobal_defs {\n $KW R1\n}\n"}, "n", True),
    "macro braces": ({"k.conf": "$K=router\nglobal_defs {\n ${K}_id R1\n}\n"}, "n", True),
    "macro dot": ({"k.conf": "$K=router_id\nglobal_defs {\n $K.x R1\n}\n"}, "n", False),
    "macro undefined": ({"k.conf": "global_defs {\n $NOPE R1\n}\n"}, "n", False),
    "conditional kept": (
        {"k.conf": "global_defs {\n @n router_id R\n @^m router_id S\n}\n"},
        "n",
        True,
    ),
    "conditional dropped": ({"k.conf": "global_defs {\n @m bogus R\n @^n bogus S\n}\n"}, "n", True),
    "conditional applies": ({"k.conf": "global_defs {\n @n bogus R\n}\n"}, "n", False),
    "multiline macro": (
        {"k.conf": "$G=global_defs { \\\n router_id ${ID} \\\n}\n$ID=a\n$G\n"},
        "n",
        True,
    ),
    "multiline ends at blank": (
        {"k.conf": "$G=global_defs { \\\n\n router_id X \\\n}\n$G\n"},
        "n",
        False,
    ),
    "seq": ({"k.conf": "global_defs {\n~SEQ(N, 1, 3) router_id r$N\n}\n"}, "n", True),
    "seq makes unknown": ({"k.conf": "global_defs {\n~SEQ(N, 2) bogus$N\n}\n"}, "n", False),
    "seq invalid": ({"k.conf": "global_defs {\n~SEQ(N, 1, 0, 3) router_id r$N\n}\n"}, "n", False),
    "lst": (
        {"k.conf": "global_defs {\n~LST(K, router_id, vrrp_garp_master_delay) $K 1\n}\n"},
        "n",
        True,
    ),
    "include glob": (
        {
            "k.conf": "include d/*.conf\n",
            "d/a.conf": "global_defs {\n",
            "d/b.conf": "router_id R\n}\n",
        },
        "n",
        True,
    ),
    "include missing": (
        {"k.conf": "include nothere.conf\nglobal_defs {\n router_id R\n}\n"},
        "n",
        True,
    ),
    "include by macro": (
        {"k.conf": "$I=include i.conf\n$I\n", "i.conf": "global_defs {\n}\n"},
        "n",
        True,
    ),
}


def ours(path: Path, config_id: str) -> bool:
    lines, diags = load_lines(path, config_id)
    bad = [d for d in diags if d.severity is Severity.ERROR and d.exit_code is not ExitCode.OK]
    depth = 0
    for ln in lines:
        word = ln.words[0]
        if word in ("{", "}"):
            depth += 1 if word == "{" else -1
        elif word not in (INNER if depth else TOP):
            return False
        if depth < 0:
            return False
    return not bad and depth == 0


def keepalived_accepts(tool: str, path: Path, config_id: str) -> bool:
    run = path.parent / "run"
    run.mkdir(exist_ok=True)
    cmd = [tool, "-t", "-n", "-l", "-D", "-f", str(path), "-i", config_id]
    cmd += ["--pid", str(run / "k.pid"), "--vrrp_pid", str(run / "v.pid")]
    cmd += ["--checkers_pid", str(run / "c.pid")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=path.parent)
    return proc.returncode == 0


@pytest.mark.parametrize("name", list(CASES))
def test_same_verdict_as_keepalived(name: str, tmp_path: Path) -> None:
    tool = need_tool("keepalived")
    files, config_id, expected = CASES[name]
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    main = tmp_path / "k.conf"
    assert keepalived_accepts(tool, main, config_id) is expected, "keepalived changed its mind"
    assert ours(main, config_id) is expected


def test_backslash_continuation_differs_on_purpose(tmp_path: Path) -> None:
    """keepalived 2.2.7 keeps a trailing `\\` as a word (so `router_id \\` gets a stray
    argument and the next line is an unknown keyword); fastha joins the lines, as the
    config issue asks, so this file is accepted by us and rejected by 2.2.7."""
    tool = need_tool("keepalived")
    main = tmp_path / "k.conf"
    main.write_text("global_defs {\n router_id \\\n R\n}\n")
    assert keepalived_accepts(tool, main, "n") is False, "keepalived changed its mind"
    assert ours(main, "n") is True
