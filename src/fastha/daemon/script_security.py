"""The parent's own scripts (startup_script, shutdown_script), resolved by
fastha.config.scripts as every script is: keepalived's user, path and security rules.
A disabled script does not run; an insecure one runs without `enable_script_security`,
as in keepalived, and `-t` says so (exit 6).
"""

from __future__ import annotations

import logging

from fastha.config.invocation import Script
from fastha.config.model import Config
from fastha.config.model import Script as ScriptModel
from fastha.config.scripts import enabled
from fastha.config.validate import Host
from fastha.drivers.scripts import ScriptResult, ScriptRunner

log = logging.getLogger("fastha.daemon")


def runnable(
    config: Config, script: ScriptModel, timeout: float, name: str, host: Host | None = None
) -> Script | None:
    """The script to run, as whom; None (logged as keepalived logs it) when disabled."""
    r = enabled(script.command, script.username, script.groupname, config.global_defs, None, host)
    if r is None:
        log.warning("Disabling %s %s", name, script.command)
        return None
    return Script(r.argv, timeout=float(timeout), uid=r.uid, gid=r.gid, name=name)


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
