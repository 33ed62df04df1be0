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
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from fastha.config.model import Config

DEFAULT_CONF = "/etc/keepalived/keepalived.conf"

# keepalived's exit codes (lib/scheduler.h, 2.2.7) for a daemon that cannot start: a bad
# command line exits 1; a configuration file that cannot be read, KEEPALIVED_EXIT_NO_CONFIG;
# one with errors, KEEPALIVED_EXIT_CONFIG (keepalived's child exits with it and the parent
# passes it on; fastha's parent finds the errors before it spawns anything).
EXIT_BAD_OPTION = 1
EXIT_CONFIG = 2
EXIT_NO_CONFIG = 6

# keepalived flags fastha does not implement: refused by name, never ignored.
# key: (short, long, takes a value, why)
REFUSED: dict[str, tuple[str | None, str, bool, str]] = {
    "snmp": ("-x", "--snmp", False, "SNMP is not supported; use --metrics HOST:PORT (Prometheus)"),
    "snmp_agent_socket": ("-A", "--snmp-agent-socket", True, "SNMP is not supported"),
    "core_dump": ("-m", "--core-dump", False, "core dumps are the system's business (ulimit -c)"),
    "core_dump_pattern": ("-M", "--core-dump-pattern", True, "set kernel.core_pattern instead"),
    "log_file": ("-g", "--log-file", True, "log to syslog (default) or the console (-l)"),
    "address_monitoring": ("-a", "--address-monitoring", False, "not supported"),
    "release_vips": ("-X", "--release-vips", False, "not supported"),
    "genhash": ("-T", "--genhash", False, "fastha has no genhash mode; use keepalived's genhash"),
    "config_fd": (None, "--config-fd", True, "keepalived-internal (between its processes)"),
}

# keepalived's getopt string (core/main.c, 2.2.7, every subsystem built): the short
# options that take a value (`f:`) or an optional one attached (`t::`), by long name.
_SHORT_VALUE = {
    "f": "use-file",
    "S": "log-facility",
    "u": "umask",
    "p": "pid",
    "r": "vrrp_pid",
    "c": "checkers_pid",
    "b": "bfd_pid",
    "s": "namespace",
    "i": "config-id",
    "A": "snmp-agent-socket",
}
_SHORT_OPTIONAL = {"t": "config-test", "g": "log-file", "M": "core-dump-pattern"}
_LONG_OPTIONAL = frozenset(_SHORT_OPTIONAL.values())


def getopt_args(args: list[str]) -> list[str]:
    """keepalived's command line, parsed as getopt_long() parses it, as click reads it.

    Clusters (`-nlP`), values attached or not (`-fFILE`, `-f FILE`), and the options
    whose value is optional and only ever attached (`-t`, `-tFILE`, `--config-test=FILE`;
    `-t FILE` leaves FILE as an argument, as keepalived does) all become `-x` flags and
    `--long=VALUE` options, so click never takes the next word for an optional value.
    """
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            out += args[i - 1 :]
            break
        if arg.startswith("--"):
            name, eq, _value = arg[2:].partition("=")
            out.append(f"{arg}=" if name in _LONG_OPTIONAL and not eq else arg)
            continue
        if not arg.startswith("-") or arg == "-":
            out.append(arg)
            continue
        for j in range(1, len(arg)):
            c, rest = arg[j], arg[j + 1 :]
            if c in _SHORT_OPTIONAL:
                out.append(f"--{_SHORT_OPTIONAL[c]}={rest}")
                break
            if c in _SHORT_VALUE:
                if not rest and i < len(args):
                    rest = args[i]
                    i += 1
                elif not rest:
                    out.append(f"-{c}")  # click says the value is missing
                    break
                out.append(f"--{_SHORT_VALUE[c]}={rest}")
                break
            out.append(f"-{c}")
    return out


class KeepalivedCommand(click.Command):
    """keepalived's getopt parsing; a bad command line exits 1, as keepalived's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, getopt_args(args))
        except click.UsageError as exc:
            # click types exit_code as a ClassVar; this one error exits as keepalived's.
            exc.exit_code = EXIT_BAD_OPTION  # type: ignore[misc]
            raise


def signum(name: str) -> int | None:
    """keepalived's --signum (lib/signals.c get_signum): the signal for each function."""
    from fastha.drivers.signals import SIGNUMS

    value = SIGNUMS.get(name)
    return None if value is None else int(value)


def version_text() -> str:
    """`-v` in keepalived's layout (first line `NAME vVERSION (...)`, on stderr), so the
    tools that read keepalived's version read ours the same way."""
    import platform

    from fastha import __version__

    uname = os.uname()
    distro = ""
    with contextlib.suppress(OSError):
        release = platform.freedesktop_os_release()
        distro = f"Distro: {release.get('PRETTY_NAME', release.get('NAME', ''))}\n"
    return (
        f"fastha v{__version__} (keepalived v2.2.7 compatible)\n\n"
        "Copyright(C) the fastha authors; after keepalived, Copyright(C) 2001-2022 "
        "Alexandre Cassen\n\n"
        f"Running on {uname.sysname} {uname.release} {uname.version}\n"
        f"{distro}\n"
        f"Python {platform.python_version()} ({sys.executable})\n\n"
        "Config options:  NFTABLES LVS VRRP VRRP_AUTH JSON INIT=systemd SYSTEMD_NOTIFY\n"
    )


def _refuse(message: str, code: int = EXIT_BAD_OPTION) -> NoReturn:
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
    """keepalived's -u: strtoll(base 0), so 022 is octal, 0x12 hex and 18 decimal."""
    if text is None:
        return None
    try:
        value = (
            int(text, 0)
            if not (len(text) > 1 and text.startswith("0") and text[1:].isdigit())
            else int(text, 8)
        )
    except ValueError:
        _refuse(f"-u/--umask: invalid value {text!r} (numeric: 022, 0x12 or 18)")
    if not 0 <= value <= 0o777:
        _refuse(f"-u/--umask: {text} is out of range")
    return value


def _namespace_interfaces(name: str) -> frozenset[str] | None:
    """The interfaces of network namespace NAME (`ip -n NAME -o link`), or None."""
    import subprocess

    try:
        out = subprocess.run(
            ["ip", "-n", name, "-o", "link", "show"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    # "2: eth0@if5: <BROADCAST,...": the name, without its "@peer".
    return frozenset(
        line.split(": ", 2)[1].split("@", 1)[0] for line in out.splitlines() if ": " in line
    )


def _has_vrrp(config: Config) -> bool:
    return bool(
        config.vrrp_instances
        or config.static_ipaddresses
        or config.static_routes
        or config.static_rules
    )


def _refused_options(fn: Any) -> Any:
    for key, (short, long, takes_value, _why) in REFUSED.items():
        names = [n for n in (short, long) if n]
        if takes_value:
            fn = click.option(*names, key, default=None, hidden=True)(fn)
        else:
            fn = click.option(*names, key, is_flag=True, default=None, hidden=True)(fn)
    return fn


def _config_test(path: str, config_id: str | None, log_file: str, all_config: bool) -> NoReturn:
    """keepalived -t[=FILE]: check and exit with -t's codes; with FILE, stderr is appended
    to it (created 0644, never through a symlink), as keepalived does."""
    from fastha.cli.check_config import run_check

    if log_file:
        try:
            fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            click.echo(
                f"Unable to open config-test log file {log_file} {exc.errno} - {exc.strerror}",
                err=True,
            )
            sys.exit(1)
        sys.stderr.flush()
        os.dup2(fd, 2)
        os.close(fd)
    # keepalived -t ignores its logging/foreground flags; so do we.
    sys.exit(run_check(path, config_id, dump=False, all_config=all_config))


@click.command(
    "daemon",
    cls=KeepalivedCommand,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "-f",
    "--use-file",
    "path",
    default=DEFAULT_CONF,
    show_default=True,
    help="the configuration file",
)
@click.option("-P", "--vrrp", is_flag=True, help="run the VRRP child (alone unless -C)")
@click.option("-C", "--check", is_flag=True, help="run the checker child (alone unless -P)")
@click.option(
    "-B", "--no_bfd", is_flag=True, help="don't run the BFD child (bfd_instance sessions)"
)
@click.option(
    "--all",
    "run_all",
    is_flag=True,
    help="run every child even if the file configures nothing for it",
)
@click.option("-l", "--log-console", is_flag=True, help="log to the console, not syslog")
@click.option("-D", "--log-detail", is_flag=True, help="detailed log messages")
@click.option(
    "-S",
    "--log-facility",
    default=None,
    help="syslog facility: 0-7, local0-7, user or daemon (default)",
)
@click.option(
    "-e",
    "--all-config",
    is_flag=True,
    help="error if any configuration file is missing (every include as includea)",
)
@click.option("-G", "--no-syslog", is_flag=True, help="don't log via syslog")
@click.option(
    "-u",
    "--umask",
    "umask_text",
    default=None,
    help="umask for file creation (numeric: 022, 0x12, 18)",
)
@click.option("-V", "--dont-release-vrrp", is_flag=True, help="keep VIPs/routes on stop")
@click.option("-I", "--dont-release-ipvs", is_flag=True, help="keep IPVS entries on stop")
@click.option("-R", "--dont-respawn", is_flag=True, help="don't respawn children")
@click.option(
    "--syslog-ident",
    type=click.Choice(["fastha", "keepalived"]),
    default="fastha",
    show_default=True,
    help="log as fastha[_vrrp|_checker] or under keepalived's "
    "idents (Keepalived, Keepalived_vrrp, Keepalived_healthcheckers)",
)
@click.option("-n", "--dont-fork", is_flag=True, help="stay in the foreground")
@click.option("-d", "--dump-conf", is_flag=True, help="dump the configuration (JSON)")
@click.option("-p", "--pid", "pid_file", default=None, help="parent pid file")
@click.option("-r", "--vrrp_pid", "vrrp_pid_file", default=None, help="VRRP child pid file")
@click.option(
    "-c", "--checkers_pid", "checkers_pid_file", default=None, help="checker child pid file"
)
@click.option(
    "-b",
    "--bfd_pid",
    "bfd_pid_file",
    default=None,
    help="BFD child pid file",
)
@click.option("-s", "--namespace", default=None, help="run in this network namespace")
@click.option("-i", "--config-id", default=None, help="select @id conditional lines")
@click.option(
    "--signum",
    "sigfunc",
    default=None,
    metavar="SIGFUNC",
    help="print the signal number for STOP, RELOAD, DATA, STATS, STATS_CLEAR or JSON and exit",
)
@click.option(
    "-t",
    "--config-test",
    default=None,
    metavar="[=LOG_FILE]",
    help="check the configuration and exit (output to stderr, or appended to "
    "LOG_FILE: -tFILE or --config-test=FILE)",
)
@click.option(
    "-v",
    "--version",
    "show_version",
    is_flag=True,
    help="print the version (keepalived's layout, on stderr)",
)
@click.option(
    "--json-file",
    default=None,
    help="where the JSON signal (SIGRTMIN+2, as keepalived) writes state and counters "
    "[default: $TMPDIR/keepalived.json, /tmp without TMPDIR, as keepalived]",
)
@click.option(
    "--data-file",
    default=None,
    help="SIGUSR1's file (the checker writes NAME_check.data beside it) "
    "[default: $TMPDIR/keepalived.data]",
)
@click.option(
    "--stats-file", default=None, help="SIGUSR2's file [default: $TMPDIR/keepalived.stats]"
)
@click.option(
    "--metrics",
    "metrics_listen",
    default=None,
    metavar="HOST:PORT",
    help="serve Prometheus metrics here (off by default)",
)
@click.option(
    "--control-socket",
    default=None,
    metavar="PATH",
    envvar="FASTHA_CONTROL_SOCKET",
    help="the control socket (default /run/fastha/control.sock, or "
    "/run/fastha/NETNS/control.sock in a named network namespace; "
    "$FASTHA_CONTROL_SOCKET, which fastha status/reload/dump read too)",
)
@click.option(
    "--no-supervise",
    is_flag=True,
    hidden=True,
    help="debugging: run the one child (-P or -C) in this process",
)
@_refused_options
def command(
    path: str,
    vrrp: bool,
    check: bool,
    no_bfd: bool,
    run_all: bool,
    log_console: bool,
    log_detail: bool,
    log_facility: str | None,
    all_config: bool,
    no_syslog: bool,
    umask_text: str | None,
    dont_release_vrrp: bool,
    dont_release_ipvs: bool,
    dont_respawn: bool,
    syslog_ident: str,
    dont_fork: bool,
    dump_conf: bool,
    pid_file: str | None,
    vrrp_pid_file: str | None,
    checkers_pid_file: str | None,
    bfd_pid_file: str | None,
    namespace: str | None,
    config_id: str | None,
    sigfunc: str | None,
    config_test: str | None,
    show_version: bool,
    json_file: str | None,
    data_file: str | None,
    stats_file: str | None,
    metrics_listen: str | None,
    control_socket: str | None,
    no_supervise: bool,
    **refused: Any,
) -> None:
    """Run as keepalived would, from an unmodified keepalived.conf.

    Every keepalived 2.2.7 option means what it means to keepalived, or is refused by
    name (SNMP, genhash, core dumps, log files, address monitoring, --release-vips).
    Exit codes: 0 on a clean stop, 1 for a bad command line, 6 when the configuration
    file cannot be read, 2 when it has errors; -t exits as `fastha check-config`.
    """
    for key, given in refused.items():
        if given is not None and given is not False:
            short, long, _value, why = REFUSED[key]
            name = f"{short}/{long}" if short else long
            _refuse(f"keepalived's {name} is not supported by fastha: {why}")
    if show_version:
        click.echo(version_text(), err=True, nl=False)
        sys.exit(0)
    if sigfunc is not None:
        number = signum(sigfunc)
        if number is None:
            click.echo(f"Unknown sigfunc {sigfunc}", err=True)
            sys.exit(1)
        click.echo(str(number))
        sys.exit(0)
    # keepalived's set_tmp_dir(): $TMPDIR when it is an absolute path, else /tmp.
    tmp = os.environ.get("TMPDIR") or ""
    tmp = tmp if tmp.startswith("/") else "/tmp"
    json_file = json_file or f"{tmp}/keepalived.json"
    data_file = data_file or f"{tmp}/keepalived.data"
    stats_file = stats_file or f"{tmp}/keepalived.stats"
    if config_test is not None:
        _config_test(path, config_id, config_test, all_config)
    if not no_supervise:
        # Before anything imports asyncio: the parent never speaks TLS (runtime/notls).
        from fastha.runtime.notls import import_loops

        import_loops(uvloop=False)

    from fastha.runtime import logs

    logs.set_ident_style(syslog_ident)  # the children inherit it
    try:
        facility = logs.parse_facility(log_facility)
    except ValueError as exc:
        _refuse(f"-S: {exc}")
    umask = _umask(umask_text)
    if metrics_listen is not None:
        _host, sep, port = metrics_listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            _refuse(f"--metrics: expected HOST:PORT, got {metrics_listen!r}")

    from fastha.config.diagnostics import ExitCode
    from fastha.config.loader import load
    from fastha.config.preprocess import default_config_id

    cid = config_id if config_id is not None else default_config_id()
    result = load(path, cid, all_config=all_config)
    netns = namespace or (result.config.net_namespace if result.config else None)
    if netns:
        # keepalived enters the namespace before it looks interfaces up: so do we, for
        # the interface checks (a missing one stops keepalived's VRRP child).
        from fastha.config.validate import Host

        names = _namespace_interfaces(netns)
        host = Host(interfaces=names) if names is not None else Host(check_interfaces=False)
        result = load(path, cid, host=host, all_config=all_config)
    for diag in result.diagnostics:
        click.echo(str(diag) if diag.where is not None else f"{path}: {diag}", err=True)
    if result.config is None or any(
        d.exit_code in (ExitCode.FATAL, ExitCode.NO_CONFIG) for d in result.errors
    ):
        _refuse(f"{path}: cannot read the configuration; not starting", EXIT_NO_CONFIG)
    # Only where keepalived itself does not run (see Diagnostic.stops: the VRRP child's
    # problems not with -C alone); on any other error it starts with its fallback, which
    # the model already holds.
    runs_vrrp = vrrp or not check
    if not result.starts(vrrp=runs_vrrp):
        stops = result.stoppers(vrrp=runs_vrrp)
        # keepalived's parent exits KEEPALIVED_EXIT_CONFIG (2) when its VRRP child stops
        # on its configuration, as on a missing parameter.
        _refuse(
            f"{path}: configuration has errors keepalived does not run with either "
            f"({stops[0]}); not starting",
            EXIT_CONFIG,
        )
    if result.errors:
        click.echo(
            f"fastha daemon: {path}: {len(result.errors)} configuration errors; "
            "starting as keepalived does, with its fallback for each",
            err=True,
        )
    config = result.config
    if dump_conf:
        from fastha.config.dump import dumps  # (orjson: the parent has no other use for it)

        sys.stdout.buffer.write(dumps(config) + b"\n")
        sys.stdout.flush()

    if no_supervise:
        if vrrp == check:
            _refuse("--no-supervise runs one child in this process: give -P or -C")
        if namespace:
            _refuse("--no-supervise: run under `ip netns exec NAME` instead of -s")
        if not dont_fork:
            _daemonize()
        from fastha.runtime import proctitle

        proctitle.set_title("vrrp" if vrrp else "check")
        logs.configure(
            "fastha_vrrp" if vrrp else "fastha_checker",
            console=log_console,
            syslog=not no_syslog,
            detail=log_detail,
            facility=facility,
        )
        sys.exit(
            _in_process(
                config,
                path,
                config_id,
                vrrp,
                pid_file,
                vrrp_pid_file if vrrp else checkers_pid_file,
                release=not (dont_release_vrrp if vrrp else dont_release_ipvs),
                json_file=json_file,
                data_file=data_file,
                stats_file=stats_file,
            )
        )

    from fastha.daemon.options import SupervisorOptions
    from fastha.daemon.paths import default_paths
    from fastha.daemon.supervisor import run_supervisor
    from fastha.runtime import proctitle

    namespace = namespace or config.net_namespace or None
    paths = default_paths(namespace)
    # keepalived's running_bfd(): -P / -C leave it alone; -B turns it off.
    want_bfd = not no_bfd and (run_all or bool(config.bfd_instances))
    if run_all:
        want_vrrp = want_check = True
    elif vrrp or check:
        want_vrrp, want_check = vrrp, check
    else:
        want_vrrp, want_check = _has_vrrp(config), bool(config.virtual_servers)
        if not (want_vrrp or want_check or want_bfd):
            click.echo(
                "fastha daemon: the configuration has no VRRP instance, no virtual "
                "server and no BFD instance; running the VRRP child for later reloads",
                err=True,
            )
            want_vrrp = True
    if umask is None:
        umask = config.global_defs.umask if config.global_defs.umask is not None else 0o022
    control = control_socket or paths.control_socket
    options = SupervisorOptions(
        config_file=os.path.abspath(path),
        config_id=config_id,
        vrrp=want_vrrp,
        check=want_check,
        bfd=want_bfd,
        no_bfd=no_bfd,
        respawn=not dont_respawn,
        pid_file=pid_file or paths.pid_file,
        vrrp_pid_file=vrrp_pid_file or paths.vrrp_pid_file,
        checkers_pid_file=checkers_pid_file or paths.checkers_pid_file,
        bfd_pid_file=bfd_pid_file or paths.bfd_pid_file,
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
        all_config=all_config,
    )
    if not dont_fork:
        _daemonize()
    proctitle.set_title("parent")
    logs.configure(
        "fastha", console=log_console, syslog=not no_syslog, detail=log_detail, facility=facility
    )
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
    from fastha.daemon.pidfile import remove_pid_file, write_pid_file
    from fastha.runtime import child_status
    from fastha.runtime.dumpfiles import check_data_file

    def reload_config() -> Config | None:
        return child_status.reload_config(path, config_id)

    for p in (pid_file, child_pid_file):
        if p:
            write_pid_file(p, os.getpid())
    try:
        if vrrp:
            from fastha.runtime.vrrp.runner import RunOptions, run_vrrp

            return run_vrrp(
                config,
                RunOptions(
                    release_on_stop=release,
                    json_file=json_file,
                    reload_config=reload_config,
                    data_file=data_file,
                    stats_file=stats_file,
                ),
            )
        from fastha.runtime.check.runner import CheckOptions, run_checker

        return run_checker(
            config,
            CheckOptions(
                release_on_stop=release,
                reload_config=reload_config,
                data_file=check_data_file(data_file),
            ),
        )
    finally:
        for p in (pid_file, child_pid_file):
            with contextlib.suppress(OSError):
                remove_pid_file(p)
