"""`fastha daemon`: keepalived's command line.

Runs the VRRP side (`-P`) in this process; the checker child and the supervising
parent arrive with the daemon issue. Every keepalived flag either works as in
keepalived or is refused with a message saying so: nothing is silently ignored.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from fastha.config.model import Config

DEFAULT_CONF = "/etc/keepalived/keepalived.conf"


def _refuse(message: str) -> None:
    click.echo(f"fastha daemon: {message}", err=True)
    sys.exit(1)


def _write_pid(path: str | None) -> None:
    if path:
        with open(path, "w") as fh:
            fh.write(f"{os.getpid()}\n")


def _daemonize() -> None:
    """keepalived without -n: detach from the terminal."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _reloader(path: str, config_id: str | None) -> Callable[[], Config | None]:
    """SIGHUP in a child: re-read `-f FILE` (with the same `-i ID`); log every
    diagnostic with file:line; None when the file has errors."""
    import logging

    from fastha.config.diagnostics import Severity
    from fastha.config.loader import load
    from fastha.config.preprocess import default_config_id

    log = logging.getLogger("fastha.config")

    def reload_config() -> Config | None:
        result = load(path, config_id if config_id is not None else default_config_id())
        for diag in result.diagnostics:
            log.log(logging.ERROR if diag.severity is Severity.ERROR else logging.WARNING,
                    "%s", diag)  # fmt: skip
        return result.config if result.ok else None

    return reload_config


@click.command("daemon", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--use-file", "path", default=DEFAULT_CONF, show_default=True)
@click.option("-P", "--vrrp", is_flag=True, help="only run the VRRP subsystem")
@click.option("-C", "--check", is_flag=True, help="only run the health-checker subsystem")
@click.option("-l", "--log-console", is_flag=True, help="log to the console")
@click.option("-D", "--log-detail", is_flag=True, help="detailed log messages")
@click.option("-S", "--log-facility", default=None, help="syslog facility (0-7, local0-7)")
@click.option("-G", "--no-syslog", is_flag=True, help="don't log via syslog")
@click.option("-n", "--dont-fork", is_flag=True, help="stay in the foreground")
@click.option("-d", "--dump-conf", is_flag=True, help="dump the configuration (JSON)")
@click.option("-p", "--pid", "pid_file", default=None, help="parent pid file")
@click.option("-r", "--vrrp_pid", "vrrp_pid_file", default=None, help="VRRP child pid file")
@click.option("-c", "--checkers_pid", "checkers_pid_file", default=None)
@click.option("-V", "--dont-release-vrrp", is_flag=True, help="keep VIPs/routes on stop")
@click.option("-I", "--dont-release-ipvs", is_flag=True, help="keep IPVS entries on stop")
@click.option("-R", "--dont-respawn", is_flag=True, help="don't respawn children")
@click.option("-t", "--config-test", is_flag=True, help="check the configuration and exit")
@click.option("-i", "--config-id", default=None, help="select @id conditional lines")
@click.option("-s", "--namespace", default=None, help="run in this network namespace")
@click.option(
    "--json-file",
    default="/tmp/keepalived.json",
    show_default=True,
    help="where the JSON signal (SIGRTMIN+2, as keepalived) writes state and counters",
)
def command(
    path: str,
    vrrp: bool,
    check: bool,
    log_console: bool,
    log_detail: bool,
    log_facility: str | None,
    no_syslog: bool,
    dont_fork: bool,
    dump_conf: bool,
    pid_file: str | None,
    vrrp_pid_file: str | None,
    checkers_pid_file: str | None,
    dont_release_vrrp: bool,
    dont_release_ipvs: bool,
    dont_respawn: bool,
    config_test: bool,
    config_id: str | None,
    namespace: str | None,
    json_file: str,
) -> None:
    """Run as keepalived would, from an unmodified keepalived.conf."""
    from fastha.cli.check_config import run_check

    if config_test:
        # keepalived -t ignores its logging/foreground flags; so do we.
        sys.exit(run_check(path, config_id, dump=False))
    if vrrp and check:
        _refuse("-P and -C together: give neither to run both")
    if not (vrrp or check):
        _refuse("running both children under one parent is not available yet: use -P or -C")
    if namespace:
        _refuse("-s/--namespace is not available yet; run under `ip netns exec NAME`")

    from fastha.config.dump import dumps
    from fastha.config.loader import load
    from fastha.config.preprocess import default_config_id

    result = load(path, config_id if config_id is not None else default_config_id())
    for diag in result.diagnostics:
        click.echo(str(diag), err=True)
    if not result.ok:
        _refuse(f"{path}: configuration has errors; not starting")
    if dump_conf:
        sys.stdout.buffer.write(dumps(result.config) + b"\n")
        sys.stdout.flush()

    from fastha.vrrp.runner import configure_logging

    if not dont_fork:
        _daemonize()
    child_pid_file = vrrp_pid_file if vrrp else checkers_pid_file
    configure_logging(
        console=log_console or no_syslog,
        detail=log_detail,
        name="fastha_vrrp" if vrrp else "fastha_checkers",
    )
    _write_pid(pid_file)
    _write_pid(child_pid_file)
    try:
        if vrrp:
            from fastha.vrrp.runner import RunOptions, run_vrrp

            options = RunOptions(
                release_on_stop=not dont_release_vrrp,
                json_file=json_file,
                reload_config=_reloader(path, config_id),
            )
            code = run_vrrp(result.config, options)
        else:
            from fastha.check.runner import CheckOptions, run_checker

            code = run_checker(result.config, CheckOptions(
                release_on_stop=not dont_release_ipvs,
                reload_config=_reloader(path, config_id)))  # fmt: skip
    finally:
        for p in (pid_file, child_pid_file):
            if p:
                with contextlib.suppress(OSError):
                    os.unlink(p)
    sys.exit(code)
