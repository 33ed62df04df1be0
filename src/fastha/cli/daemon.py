"""`fastha daemon`: keepalived's command line.

    fastha daemon -f /etc/keepalived/keepalived.conf

The process started is always the parent (fastha.daemon.supervisor), as keepalived's:
it validates the file, spawns the VRRP child and the checker child (`-P` / `-C` for one
only; without either, each child whose part the file configures), restarts a child that
dies, passes signals on, answers the control socket and stops cleanly on SIGTERM. A
`kill -9` of the parent takes the children with it at once (PR_SET_PDEATHSIG SIGKILL).

Every keepalived flag either works as in keepalived or is refused with a message saying
so: nothing is silently ignored. The hidden `--no-supervise` runs one child (`-P` or
`-C`) in this process, for debugging under a debugger or a profiler only.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Any

import click

from fastha import __version__

if TYPE_CHECKING:
    from fastha.config.model import Config

DEFAULT_CONF = "/etc/keepalived/keepalived.conf"

# keepalived flags fastha does not implement: refused by name, never ignored.
REFUSED = {
    "snmp": ("-x", "--snmp", "SNMP is not supported; use --metrics HOST:PORT (Prometheus)"),
    "core_dump": ("-m", "--core-dump", "core dumps are the system's business (ulimit -c)"),
    "core_dump_pattern": ("-M", "--core-dump-pattern", "set kernel.core_pattern instead"),
    "log_file": ("-g", "--log-file", "log to syslog (default) or the console (-l)"),
    "address_monitoring": ("-a", "--address-monitoring", "not supported"),
    "release_vips": ("-X", "--release-vips", "VIPs are removed at start-up already"),
    "all_port_exit": ("-e", "--all", "not supported"),
}


def _refuse(message: str, code: int = 1) -> None:
    click.echo(f"fastha daemon: {message}", err=True)
    sys.exit(code)


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


def _umask(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text, 0) if text.startswith("0x") else int(text, 8)
    except ValueError:
        _refuse(f"-u/--umask: invalid value {text!r} (octal, e.g. 022)")
    if not 0 <= value <= 0o777:
        _refuse(f"-u/--umask: {text} is out of range")
    return value


def _has_vrrp(config: Config) -> bool:
    return bool(config.vrrp_instances or config.static_ipaddresses or config.static_routes
                or config.static_rules)  # fmt: skip


def _refused_options(fn: Any) -> Any:
    for key, (short, long, _why) in REFUSED.items():
        fn = click.option(short, long, key, is_flag=True, hidden=True)(fn)
    return fn


@click.command("daemon", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--use-file", "path", default=DEFAULT_CONF, show_default=True)
@click.option("-P", "--vrrp", is_flag=True, help="run the VRRP child (alone unless -C)")
@click.option("-C", "--check", is_flag=True, help="run the checker child (alone unless -P)")
@click.option("-l", "--log-console", is_flag=True, help="log to the console, not syslog")
@click.option("-D", "--log-detail", is_flag=True, help="detailed log messages")
@click.option("-S", "--log-facility", default=None, help="syslog facility: 0-7 (local0-7)")
@click.option("-G", "--no-syslog", is_flag=True, help="don't log via syslog")
@click.option("-n", "--dont-fork", is_flag=True, help="stay in the foreground")
@click.option("-d", "--dump-conf", is_flag=True, help="dump the configuration (JSON)")
@click.option("-p", "--pid", "pid_file", default=None, help="parent pid file")
@click.option("-r", "--vrrp_pid", "vrrp_pid_file", default=None, help="VRRP child pid file")
@click.option("-c", "--checkers_pid", "checkers_pid_file", default=None,
              help="checker child pid file")  # fmt: skip
@click.option("-V", "--dont-release-vrrp", is_flag=True, help="keep VIPs/routes on stop")
@click.option("-I", "--dont-release-ipvs", is_flag=True, help="keep IPVS entries on stop")
@click.option("-R", "--dont-respawn", is_flag=True, help="don't respawn children")
@click.option("-t", "--config-test", is_flag=True, help="check the configuration and exit")
@click.option("-i", "--config-id", default=None, help="select @id conditional lines")
@click.option("-s", "--namespace", default=None, help="run in this network namespace")
@click.option("-u", "--umask", "umask_text", default=None, help="umask (octal)")
@click.option("-v", "--version", "show_version", is_flag=True, help="print the version")
@click.option(
    "--json-file",
    default=None,
    help="where the JSON signal (SIGRTMIN+2, as keepalived) writes state and counters "
    "[default: $TMPDIR/keepalived.json, /tmp without TMPDIR, as keepalived]",
)
@click.option("--data-file", default=None,
              help="SIGUSR1's file (the checker writes NAME_check.data beside it) "
                   "[default: $TMPDIR/keepalived.data]")  # fmt: skip
@click.option("--stats-file", default=None,
              help="SIGUSR2's file [default: $TMPDIR/keepalived.stats]")  # fmt: skip
@click.option("--metrics", "metrics_listen", default=None, metavar="HOST:PORT",
              help="serve Prometheus metrics here (off by default)")  # fmt: skip
@click.option("--control-socket", default=None, metavar="PATH",
              help="the control socket (default /run/fastha/control.sock, or "
                   "/run/fastha/NETNS/control.sock in a named network namespace)")  # fmt: skip
@click.option("--no-supervise", is_flag=True, hidden=True,
              help="debugging: run the one child (-P or -C) in this process")  # fmt: skip
@_refused_options
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
    umask_text: str | None,
    show_version: bool,
    json_file: str | None,
    data_file: str | None,
    stats_file: str | None,
    metrics_listen: str | None,
    control_socket: str | None,
    no_supervise: bool,
    **refused: bool,
) -> None:
    """Run as keepalived would, from an unmodified keepalived.conf."""
    from fastha.cli.check_config import run_check

    for key, given in refused.items():
        if given:
            short, long, why = REFUSED[key]
            _refuse(f"keepalived's {short}/{long} is not supported by fastha: {why}")
    if show_version:
        click.echo(f"fastha {__version__} (keepalived-compatible daemon)")
        return
    # keepalived's set_tmp_dir(): $TMPDIR when it is an absolute path, else /tmp.
    tmp = os.environ.get("TMPDIR") or ""
    tmp = tmp if tmp.startswith("/") else "/tmp"
    json_file = json_file or f"{tmp}/keepalived.json"
    data_file = data_file or f"{tmp}/keepalived.data"
    stats_file = stats_file or f"{tmp}/keepalived.stats"
    if config_test:
        # keepalived -t ignores its logging/foreground flags; so do we.
        sys.exit(run_check(path, config_id, dump=False))

    from fastha.daemon import logs

    try:
        facility = logs.parse_facility(log_facility)
    except ValueError as exc:
        _refuse(f"-S: {exc}")
    umask = _umask(umask_text)
    if metrics_listen is not None:
        _host, sep, port = metrics_listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            _refuse(f"--metrics: expected HOST:PORT, got {metrics_listen!r}")

    from fastha.config.dump import dumps
    from fastha.config.loader import load
    from fastha.config.preprocess import default_config_id

    result = load(path, config_id if config_id is not None else default_config_id())
    for diag in result.diagnostics:
        click.echo(str(diag), err=True)
    if not result.ok:
        _refuse(f"{path}: configuration has errors; not starting")
    config = result.config
    if dump_conf:
        sys.stdout.buffer.write(dumps(config) + b"\n")
        sys.stdout.flush()

    if no_supervise:
        if vrrp == check:
            _refuse("--no-supervise runs one child in this process: give -P or -C")
        if namespace:
            _refuse("--no-supervise: run under `ip netns exec NAME` instead of -s")
        if not dont_fork:
            _daemonize()
        logs.configure("fastha_vrrp" if vrrp else "fastha_checker", console=log_console,
                       syslog=not no_syslog, detail=log_detail, facility=facility)  # fmt: skip
        sys.exit(_in_process(config, path, config_id, vrrp, pid_file,
                             vrrp_pid_file if vrrp else checkers_pid_file,
                             release=not (dont_release_vrrp if vrrp else dont_release_ipvs),
                             json_file=json_file, data_file=data_file,
                             stats_file=stats_file))  # fmt: skip

    from fastha.daemon.paths import default_paths
    from fastha.daemon.supervisor import SupervisorOptions, run_supervisor

    namespace = namespace or config.net_namespace or None
    paths = default_paths(namespace)
    if vrrp or check:
        want_vrrp, want_check = vrrp, check
    else:
        want_vrrp, want_check = _has_vrrp(config), bool(config.virtual_servers)
        if not (want_vrrp or want_check):
            click.echo("fastha daemon: the configuration has no VRRP instance and no "
                       "virtual server; running the VRRP child for later reloads", err=True)  # fmt: skip
            want_vrrp = True
    if umask is None:
        umask = config.global_defs.umask if config.global_defs.umask is not None else 0o022
    control = control_socket or paths.control_socket
    options = SupervisorOptions(
        config_file=os.path.abspath(path),
        config_id=config_id,
        vrrp=want_vrrp,
        check=want_check,
        respawn=not dont_respawn,
        pid_file=pid_file or paths.pid_file,
        vrrp_pid_file=vrrp_pid_file or paths.vrrp_pid_file,
        checkers_pid_file=checkers_pid_file or paths.checkers_pid_file,
        control_socket=control,
        run_dir=os.path.dirname(control) if control_socket else paths.run_dir,
        namespace=namespace,
        umask=umask,
        metrics_listen=metrics_listen,
        log_console=log_console,
        log_detail=log_detail,
        no_syslog=no_syslog,
        log_facility=log_facility,
        release_vrrp=not dont_release_vrrp,
        release_ipvs=not dont_release_ipvs,
        json_file=json_file,
        data_file=data_file,
        stats_file=stats_file,
    )
    if not dont_fork:
        _daemonize()
    logs.configure("fastha", console=log_console, syslog=not no_syslog, detail=log_detail,
                   facility=facility)  # fmt: skip
    sys.exit(run_supervisor(options, config))


def _in_process(
    config: Config,
    path: str,
    config_id: str | None,
    vrrp: bool,
    pid_file: str | None,
    child_pid_file: str | None,
    *,
    release: bool,
    json_file: str,
    data_file: str,
    stats_file: str,
) -> int:
    """--no-supervise: one runner in this process (no parent, no respawn, no control
    socket); SIGHUP still reloads."""
    from fastha.daemon import child_status
    from fastha.daemon.dumpfiles import check_data_file
    from fastha.daemon.supervisor import remove_pid_file, write_pid_file

    def reload_config() -> Config | None:
        return child_status.reload_config(path, config_id)  # type: ignore[no-any-return]

    for p in (pid_file, child_pid_file):
        if p:
            write_pid_file(p, os.getpid())
    try:
        if vrrp:
            from fastha.vrrp.runner import RunOptions, run_vrrp

            return run_vrrp(config, RunOptions(release_on_stop=release, json_file=json_file,
                                               reload_config=reload_config,
                                               data_file=data_file,
                                               stats_file=stats_file))  # fmt: skip
        from fastha.check.runner import CheckOptions, run_checker

        return run_checker(config, CheckOptions(release_on_stop=release,
                                                reload_config=reload_config,
                                                data_file=check_data_file(data_file)))  # fmt: skip
    finally:
        for p in (pid_file, child_pid_file):
            with contextlib.suppress(OSError):
                remove_pid_file(p)
