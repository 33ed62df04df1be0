"""The man pages come from the click commands (fastha.cli.manpages, run by
scripts/build-deb): every command has a page and every visible option of each is on it,
and man renders each page without a warning."""

from __future__ import annotations

import subprocess
from pathlib import Path

import click
import pytest
from tests.support.prereq import need_tool

from fastha.cli.main import COMMANDS, main
from fastha.cli.manpages import pages, write

pytestmark = pytest.mark.unit


def test_a_page_per_command_with_every_option() -> None:
    got = pages()
    assert set(got) == {"fastha.8"} | {f"fastha-{name}.8" for name in COMMANDS}
    root = click.Context(main, info_name="fastha")
    for name in COMMANDS:
        cmd = main.get_command(root, name)
        assert cmd is not None
        text = got[f"fastha-{name}.8"].replace("\\-", "-")
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    assert opt in text, f"{opt} of fastha {name} missing from its page"
        assert f"fastha {name}" in got["fastha.8"].replace("\\-", "-")
    daemon = got["fastha-daemon.8"].replace("\\-", "-")
    for keepalived_flag in ("--signum", "--config-test", "--all-config", "--no_bfd", "--all"):
        assert keepalived_flag in daemon


def test_pages_render_without_warnings(tmp_path: Path) -> None:
    man = need_tool("man")
    for page in write(tmp_path):
        r = subprocess.run([man, "--warnings", "-l", "-Tutf8", "-Z", str(page)],
                           capture_output=True, text=True, env={"LC_ALL": "C.UTF-8",
                           "MANWIDTH": "80", "PATH": "/usr/bin:/bin"})  # fmt: skip
        assert r.returncode == 0 and r.stderr == "", (page.name, r.stderr)
