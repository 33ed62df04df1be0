"""Script security, as keepalived 2.2.7 checks it before running anything (exit 6).

keepalived (lib/notify.c check_script_secure(), vrrp/vrrp.c check_vrrp_script_security(),
check/check_data.c check_check_script_security(), core/main.c for start/shutdown
scripts) decides, for every script it may run:

- who runs it: the script's own `user [group]`, else global `script_user`, else the
  user `keepalived_script` if it exists, else root. With `enable_script_security` and
  neither a script user nor `keepalived_script`, keepalived refuses the script ("Unable to
  set default user keepalived_script for script", exit 5);
- whether it is found (a bare name is looked up on PATH) and executable by that user;
- when it runs as root (or is set-uid/gid root), whether any component of its path -
  `/`, each directory, the file - is owned by a non-root user, or writable by a non-root
  group or by everyone (the sticky bit excuses a directory). Such a script is insecure:
  with `enable_script_security` it is disabled.

Then, for each process that runs scripts (VRRP: if there is a vrrp_instance; checker:
if there is a virtual_server; the parent: start-up/shut-down scripts), keepalived -t
exits 6 with "SECURITY VIOLATION - ... scripts are being executed but script_security not
enabled." when any script exists and security is off. Only track scripts (vrrp_script)
that are insecure or missing are configuration errors (exit 5); notify and checker
scripts are disabled with a log line only (exit 0). keepalived gives the violation no
line; fastha points at the first script concerned.

All of these are warnings: keepalived still starts and runs without the disabled
scripts, so the configuration loads (LoadResult.ok); only `-t`'s exit code tells.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastha.config.diagnostics import Diagnostic, ExitCode, note, warning
from fastha.config.model import Config
from fastha.config.model_lvs import MiscCheck
from fastha.config.scripts import DEFAULT_SCRIPT_USER, Flags, program, resolve, split_command
from fastha.config.source import Where, where_of
from fastha.config.validate import Host, check


@dataclass(frozen=True, slots=True)
class _Script:
    """One script keepalived would run, with where it is configured."""

    command: str
    user: str | None
    group: str | None
    where: Where | None
    track: str | None = None  # the vrrp_script's name, for a track script


def _notify_scripts(obj: Any, names: tuple[str, ...]) -> Iterator[_Script]:
    for name in names:
        script = getattr(obj, name, None)
        if script is not None:
            yield _Script(script.command, script.username, script.groupname, where_of(obj, name))


_VRRP_NOTIFY = (
    "notify_backup",
    "notify_master",
    "notify_fault",
    "notify_stop",
    "notify_deleted",
    "notify",
    "notify_master_rx_lower_pri",
)


def _vrrp_scripts(config: Config) -> list[_Script]:
    out = [
        _Script(s.script, s.user, s.group, where_of(s, "script"), track=s.name)
        for s in config.vrrp_scripts
        if s.script
    ]
    for vrrp in config.vrrp_instances:
        out.extend(_notify_scripts(vrrp, _VRRP_NOTIFY))
    for group in config.vrrp_sync_groups:
        out.extend(_notify_scripts(group, _VRRP_NOTIFY))
    gdefs = config.global_defs
    out.extend(_notify_scripts(gdefs, ("notify_fifo_script", "vrrp_notify_fifo_script")))
    return out


def _checker_scripts(config: Config) -> list[_Script]:
    out: list[_Script] = []
    for vs in config.virtual_servers:
        for rs in vs.real_servers:
            for checker in rs.checkers:
                if isinstance(checker, MiscCheck) and checker.misc_path:
                    out.append(
                        _Script(
                            checker.misc_path,
                            checker.user,
                            checker.group,
                            where_of(checker, "misc_path"),
                        )
                    )
        for name in ("quorum_up", "quorum_down"):
            script = getattr(vs, name)
            if script is not None:
                out.append(_Script(script.command, script.user, script.group, where_of(vs, name)))
        for rs in vs.real_servers:
            for name in ("notify_up", "notify_down"):
                script = getattr(rs, name)
                if script is not None:
                    out.append(
                        _Script(script.command, script.user, script.group, where_of(rs, name))
                    )
    gdefs = config.global_defs
    out.extend(_notify_scripts(gdefs, ("notify_fifo_script", "lvs_notify_fifo_script")))
    return out


def _parent_scripts(config: Config) -> list[_Script]:
    return list(_notify_scripts(config.global_defs, ("startup_script", "shutdown_script")))


def _check_group(
    config: Config, host: Host, scripts: list[_Script], what: str
) -> Iterator[Diagnostic]:
    gdefs = config.global_defs
    security = gdefs.enable_script_security
    total = Flags.NONE
    first: Where | None = None
    for script in scripts:
        _, error = split_command(script.command)
        if error is not None:
            # keepalived drops the script; an unmatched quote is a config error (exit 5),
            # a trailing backslash only logged.
            if error.startswith("Missing escape char"):
                yield note(script.where, error)
            else:
                yield warning(script.where, error)
            if script.track is not None:
                yield warning(
                    script.where, f"No script set for vrrp_script {script.track} - removing"
                )
            continue
        resolved = resolve(script.command, script.user, script.group, gdefs, host)
        flags = resolved.flags
        if flags & Flags.UNUSABLE:
            if script.user is None and gdefs.script_user is None:
                yield warning(
                    script.where, f"Unable to set default user {DEFAULT_SCRIPT_USER} for script"
                )
                if script.track is not None:
                    yield warning(
                        script.where,
                        f"Unable to set default user for vrrp script {script.track} - removing",
                    )
            continue  # otherwise keepalived rejected the user name while parsing
        path = program(script.command)
        if flags & Flags.ISSCRIPT and first is None:
            first = script.where
        total |= flags
        if script.track is not None:
            if flags & Flags.INHIBIT:
                yield warning(
                    script.where, f"Disabling track script {script.track} due to insecure"
                )
            elif flags & Flags.NOTFOUND:
                yield warning(
                    script.where,
                    f"Disabling track script {script.track} since not found/accessible",
                )
        elif flags & Flags.INHIBIT:
            yield note(script.where, f"Disabling script {path} due to insecure")
        elif flags & Flags.NOTFOUND:
            yield note(script.where, f"Disabling script {path} since not found")
    if not security and total & Flags.ISSCRIPT:
        extra = " There are insecure scripts." if total & Flags.INSECURE else ""
        yield warning(
            first,
            f"SECURITY VIOLATION - {what}scripts are being executed but script_security "
            f"not enabled.{extra}",
            ExitCode.SCRIPT_SECURITY,
        )


@check
def script_security(config: Config, host: Host) -> Iterator[Diagnostic]:
    if not host.check_scripts:
        return
    if config.vrrp_instances:
        yield from _check_group(config, host, _vrrp_scripts(config), "")
    if config.virtual_servers:
        yield from _check_group(config, host, _checker_scripts(config), "check ")
    yield from _check_group(config, host, _parent_scripts(config), "start/shutdown ")
