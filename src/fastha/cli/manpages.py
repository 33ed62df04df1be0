"""Man pages generated from the click commands themselves, so they cannot drift.

    python -m fastha.cli.manpages OUTDIR     # fastha.8, fastha-daemon.8, ...

fastha(8) lists the commands; each command gets fastha-NAME(8) with its synopsis,
description and every visible option (a group's subcommands as subsections). The
package build (scripts/build-deb) runs this against the code it ships.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

from fastha import __version__

SECTION = "8"
MANUAL = "System Administration"


def _esc(text: str) -> str:
    """Plain text as troff: backslashes, hyphens and leading control characters."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def _paragraphs(text: str) -> str:
    """click's help text (paragraphs split by blank lines; indented blocks verbatim)."""
    out: list[str] = []
    for block in inspect.cleandoc(text).split("\n\n") if text else []:
        if not block.strip():
            continue
        if all(line.startswith("    ") for line in block.splitlines() if line.strip()):
            out += [
                ".PP",
                ".nf",
                ".RS 4",
                _esc("\n".join(ln[4:] for ln in block.splitlines())),
                ".RE",
                ".fi",
            ]
        else:
            out += [".PP", _esc(" ".join(block.split()))]
    return "\n".join(out)


def _option(param: click.Parameter, ctx: click.Context) -> str | None:
    if not isinstance(param, click.Option) or param.hidden:
        return None
    record = param.get_help_record(ctx)
    if record is None:
        return None
    names, help_text = record
    return "\n".join([".TP", f"\\fB{_esc(names)}\\fR", _esc(help_text) or "\\&"])


def _options(cmd: click.Command, ctx: click.Context) -> list[str]:
    return [text for p in cmd.get_params(ctx) if (text := _option(p, ctx)) is not None]


def _title(name: str) -> str:
    return f'.TH "{_esc(name.upper())}" "{SECTION}" "" "fastha {__version__}" "{MANUAL}"'


def command_page(path: list[str], cmd: click.Command, parent: click.Context) -> str:
    name = "-".join(path)
    ctx = click.Context(cmd, info_name=path[-1], parent=parent)
    summary = cmd.get_short_help_str(limit=200).rstrip(".")
    out = [
        _title(name),
        ".SH NAME",
        f"{_esc(name)} \\- {_esc(summary)}",
        ".SH SYNOPSIS",
        f".B {_esc(' '.join(path))}",
        _esc(" ".join(cmd.collect_usage_pieces(ctx))),
    ]
    out += [".SH DESCRIPTION", _paragraphs(cmd.help or "")]
    options = _options(cmd, ctx)
    if options:
        out += [".SH OPTIONS", *options]
    if isinstance(cmd, click.Group):
        out.append(".SH COMMANDS")
        for sub_name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, sub_name)
            if sub is None or sub.hidden:
                continue
            sub_ctx = click.Context(sub, info_name=sub_name, parent=ctx)
            out += [
                f'.SS "{_esc(" ".join([*path, sub_name]))} '
                f'{_esc(" ".join(sub.collect_usage_pieces(sub_ctx)))}"',
                _paragraphs(sub.help or ""),
            ]
            out += _options(sub, sub_ctx)
    out += [".SH SEE ALSO", "\\fBfastha\\fR(8), \\fBkeepalived.conf\\fR(5)"]
    return "\n".join(s for s in out if s) + "\n"


def pages() -> dict[str, str]:
    """{file name: troff text} for fastha(8) and every command."""
    from fastha.cli.main import main

    root = click.Context(main, info_name="fastha")
    commands = [(n, main.get_command(root, n)) for n in main.list_commands(root)]
    out = [
        _title("fastha"),
        ".SH NAME",
        "fastha \\- keepalived\\-compatible VRRP and LVS health checking daemon",
        ".SH SYNOPSIS",
        ".B fastha",
        "[\\fB\\-\\-version\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        _paragraphs(main.help or ""),
        ".PP",
        "The daemon reads \\fI/etc/keepalived/keepalived.conf\\fR by default and takes "
        "keepalived's command line; under systemd its options come from "
        "\\fI/etc/default/fastha\\fR (\\fBDAEMON_ARGS\\fR).",
        ".SH COMMANDS",
    ]
    result: dict[str, str] = {}
    for name, cmd in commands:
        if cmd is None or cmd.hidden:
            continue
        out += [
            ".TP",
            f"\\fBfastha {_esc(name)}\\fR",
            _esc(cmd.get_short_help_str(limit=200)),
            f"See \\fBfastha\\-{_esc(name)}\\fR(8).",
        ]
        result[f"fastha-{name}.{SECTION}"] = command_page(["fastha", name], cmd, root)
    out += [
        ".SH FILES",
        ".TP",
        "\\fI/etc/keepalived/keepalived.conf\\fR",
        "the configuration, as keepalived's",
        ".TP",
        "\\fI/etc/default/fastha\\fR",
        "options for the systemd unit",
        ".SH SEE ALSO",
        "\\fBkeepalived.conf\\fR(5), \\fBkeepalived\\fR(8)",
    ]
    result[f"fastha.{SECTION}"] = "\n".join(s for s in out if s) + "\n"
    return dict(sorted(result.items()))


def write(outdir: str | Path) -> list[Path]:
    target = Path(outdir)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in pages().items():
        path = target / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m fastha.cli.manpages OUTDIR")
    for p in write(sys.argv[1]):
        print(p)
