"""Script security at run time, for the scripts the parent runs (startup_script,
shutdown_script), with keepalived's rules from fastha.config.validate_scripts.

Who runs a script: its own `user [group]`, else `script_user`, else `keepalived_script`
if that user exists, else root (refused under `enable_script_security`). A script
that is missing, not executable by that user, or (run as root) reachable through a
path a non-root user could change, is disabled under `enable_script_security`; without
it an insecure script still runs, as in keepalived, and `-t` says so (exit 6).
"""

from __future__ import annotations

import logging

from fastha.config.lexer import split_quoted_escaped
from fastha.config.model import Config
from fastha.config.model import Script as ScriptModel
from fastha.config.validate import Host
from fastha.config.validate_scripts import DEFAULT_SCRIPT_USER, Flags, program, script_flags
from fastha.drivers.scripts import Script, ScriptResult, ScriptRunner

log = logging.getLogger("fastha.daemon")


def runnable(
    config: Config, script: ScriptModel, timeout: float, name: str, host: Host | None = None
) -> Script | None:
    """The script to run, as whom; None (logged as keepalived logs it) when disabled."""
    host = host or Host()
    gdefs = config.global_defs
    security = gdefs.enable_script_security
    user, group = script.username, script.groupname
    if user is None:
        if gdefs.script_user is not None:
            user, group = gdefs.script_user.username, gdefs.script_user.groupname
        elif host.user_ids(DEFAULT_SCRIPT_USER) is not None:
            user = DEFAULT_SCRIPT_USER
        elif security:
            log.warning("Unable to set default user %s for script", DEFAULT_SCRIPT_USER)
            return None
    ids = (0, 0) if user is None else host.user_ids(user)
    if ids is not None and group is not None:
        gid = host.group_id(group)
        ids = None if gid is None else (ids[0], gid)
    if ids is None:
        log.warning("Disabling %s: user %s group %s not found", name, user, group)
        return None
    path = program(script.command)
    flags = script_flags(host, path, ids[0], ids[1], security)
    if flags & Flags.NOTFOUND or not flags & Flags.EXECUTABLE:
        log.warning("Disabling script %s since not found", path)
        return None
    if flags & Flags.INHIBIT:
        log.warning("Disabling script %s due to insecure", path)
        return None
    if flags & Flags.INSECURE:
        log.warning("SECURITY VIOLATION - %s %s is insecure and runs as root", name, path)
    argv, _ = split_quoted_escaped(script.command)
    as_root = ids == (0, 0)
    return Script(
        tuple(argv),
        timeout=float(timeout),
        user=None if as_root else user,
        group=None if as_root else group,
        name=name,
    )


def startup_script(config: Config, host: Host | None = None) -> Script | None:
    g = config.global_defs
    if g.startup_script is None:
        return None
    return runnable(config, g.startup_script, g.startup_script_timeout, "startup_script", host)


def shutdown_script(config: Config, host: Host | None = None) -> Script | None:
    g = config.global_defs
    if g.shutdown_script is None:
        return None
    return runnable(config, g.shutdown_script, g.shutdown_script_timeout, "shutdown_script", host)


async def run_logged(runner: ScriptRunner, script: Script | None) -> ScriptResult | None:
    """Run to completion (or its timeout), one log line for the outcome."""
    if script is None:
        return None
    result = await runner.run(script)
    if result.timed_out:
        log.warning("%s %s timed out after %s s", script.name, script.argv[0], script.timeout)
    elif result.error is not None:
        log.warning("%s %s failed to start: %s", script.name, script.argv[0], result.error)
    elif result.returncode != 0:
        log.warning("%s %s exited with status %d", script.name, script.argv[0], result.returncode)
    else:
        log.info("%s %s completed", script.name, script.argv[0])
    return result
