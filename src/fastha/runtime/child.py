"""The children's entry point: `python -m fastha.runtime.child vrrp|check|bfd|sleep ...`.

The parent (fastha.daemon.supervisor) spawns `vrrp`, `check` and (a `bfd_instance`
configured, no -B) `bfd`; each loads the
configuration the parent validated (its snapshot, $FASTHA_CONFIG_SNAPSHOT; the file only
when run without a parent) and runs its runner until SIGTERM. `sleep` is the stand-in the supervisor's tests use while the real children are
built elsewhere: a child that does nothing but obey signals (it appends each signal's
name to `--record FILE`, stops on SIGTERM/SIGINT, and answers `status` on its socket)
and, given a BFD event pipe, lists in `status` every record that came down it
(`[name, up, diag, sent_ns, received_ns]`: the relay's delay is the difference).

Every child asks the kernel for SIGKILL when the parent dies (PR_SET_PDEATHSIG): a
`kill -9` of the parent is a crash of the whole daemon, as `kill -9` of keepalived's
process group is. No orphan is left, and none says goodbye either (a VRRP master that
sent priority 0 on its parent's death would turn a crash into a clean handover, which
is not what happened and not what a failover measurement may see). The parent's SIGTERM
is the clean stop. Each child loads the parent's new snapshot on SIGHUP
(child_status.reload_config) and answers `status`/`dump` on $FASTHA_CHILD_SOCKET.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import types
from typing import Any, NoReturn

log = logging.getLogger("fastha.daemon")

# keepalived's KEEPALIVED_EXIT_FATAL: the parent gives up instead of respawning.
EXIT_FATAL = 3
ENV_PARENT_PID = "FASTHA_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL) -> None:
    """`signum` when the parent goes; exit at once if it already went (the race between
    fork and prctl)."""
    import ctypes  # here: the parent imports this module for its constants only

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
    expected = os.environ.get(ENV_PARENT_PID)
    if expected is not None and os.getppid() != int(expected):
        sys.exit(0)


def _logging(args: types.SimpleNamespace, name: str) -> None:
    from fastha.runtime import logs

    logs.configure(
        name,
        console=args.log_console,
        syslog=not args.no_syslog,
        detail=args.log_detail,
        facility=logs.parse_facility(args.log_facility),
    )


def _reloader(args: types.SimpleNamespace) -> Any:
    from fastha.runtime import child_status

    return lambda: child_status.reload_config(args.file, args.config_id)


def _load(args: types.SimpleNamespace, *, vrrp: bool) -> Any:
    from fastha.runtime import child_status

    snapshot = os.environ.get(child_status.ENV_SNAPSHOT)
    if snapshot:
        # What the parent validated, whatever the file holds now (it may be mid-edit).
        try:
            return child_status.read_snapshot(snapshot)
        except child_status.SnapshotError as exc:
            log.error("%s; child not starting", exc)
            sys.exit(EXIT_FATAL)
    # Here: with its parent's snapshot, a child never loads the parser (~1 MB of RSS).
    from fastha.config.loader import load
    from fastha.config.preprocess import default_config_id

    result = load(args.file, args.config_id or default_config_id())
    for diag in result.errors:
        log.error("%s", diag)
    # As the parent: run with keepalived's fallbacks, stop only where keepalived does.
    if not result.starts(vrrp=vrrp):
        log.error("%s: configuration has errors keepalived stops on; child not starting", args.file)
        sys.exit(EXIT_FATAL)
    return result.config


def _vrrp(args: types.SimpleNamespace) -> int:
    _logging(args, "fastha_vrrp")
    config = _load(args, vrrp=True)
    from fastha.runtime.vrrp.runner import RunOptions, run_vrrp

    options = RunOptions(release_on_stop=not args.dont_release, reload_config=_reloader(args))
    if args.json_file:
        options.json_file = args.json_file
    if args.data_file:
        options.data_file = args.data_file
    if args.stats_file:
        options.stats_file = args.stats_file
    return run_vrrp(config, options)


def _check(args: types.SimpleNamespace) -> int:
    _logging(args, "fastha_checker")
    config = _load(args, vrrp=False)
    from fastha.runtime.check.runner import CheckOptions, run_checker
    from fastha.runtime.dumpfiles import check_data_file

    options = CheckOptions(release_on_stop=not args.dont_release, reload_config=_reloader(args))
    if args.data_file:
        options.data_file = check_data_file(args.data_file)
    return int(run_checker(config, options))


def _bfd(args: types.SimpleNamespace) -> int:
    _logging(args, "fastha_bfd")
    # A VRRP child's reasons to stop (a missing interface...) are not the BFD child's.
    config = _load(args, vrrp=False)
    from fastha.runtime.bfd.runner import BfdOptions, run_bfd

    return run_bfd(config, BfdOptions(reload_config=_reloader(args)))


async def _obey_signals(args: types.SimpleNamespace) -> int:
    """The stub: record signals, stop on TERM/INT, answer `status`."""
    import asyncio

    from fastha.runtime import child_status

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    seen: list[str] = []
    # Like the real children: the parent's snapshot at start (fatal if unreadable) and
    # on SIGHUP, so the tests can see which configuration a child runs.
    snapshot = os.environ.get(child_status.ENV_SNAPSHOT)
    config: Any = None
    if snapshot:
        try:
            config = child_status.read_snapshot(snapshot)
        except child_status.SnapshotError as exc:
            log.error("%s; child not starting", exc)
            return EXIT_FATAL

    def on_signal(signum: signal.Signals) -> None:
        nonlocal config
        seen.append(signum.name)
        if signum == signal.SIGHUP and snapshot:
            config = child_status.reload_config() or config
        if args.record:
            with open(args.record, "a") as fh:
                fh.write(f"{os.getpid()} {signum.name}\n")
        if signum in (signal.SIGTERM, signal.SIGINT) and not args.ignore_term:
            stop.set()

    for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGUSR2):
        loop.add_signal_handler(signum, on_signal, signum)

    from fastha.drivers import bfd_channel

    bfd_events: list[list[object]] = []
    fd = bfd_channel.env_fd(bfd_channel.ENV_READ)
    if fd is not None:
        bfd_channel.EventReader(
            fd,
            lambda ev: bfd_events.append(
                [ev.name, ev.up, ev.diag, ev.sent_ns, time.monotonic_ns()]
            ),
        )

    def status(_request: dict[str, Any]) -> dict[str, Any]:
        return {
            "role": args.role,
            "pid": os.getpid(),
            "stub": True,
            "signals": seen,
            "netns": os.stat("/proc/self/ns/net").st_ino,
            "router_id": None if config is None else config.global_defs.router_id,
            "bfd_events": bfd_events,
        }

    server = await child_status.serve_from_env({"status": status, "dump": status})
    await stop.wait()
    await child_status.close(server)
    return 0


# The command line the parent writes (daemon/children.py): kind, then options. getopt
# and not argparse: argparse with gettext and locale cost each child ~0.3 MB of RSS.
KINDS = ("vrrp", "check", "bfd", "sleep")
# option -> (attribute, takes a value); -f is required for every kind but `sleep`.
_OPTIONS = {
    "-f": ("file", True), "--use-file": ("file", True),
    "-i": ("config_id", True), "--config-id": ("config_id", True),
    "-l": ("log_console", False), "--log-console": ("log_console", False),
    "-D": ("log_detail", False), "--log-detail": ("log_detail", False),
    "-G": ("no_syslog", False), "--no-syslog": ("no_syslog", False),
    "-S": ("log_facility", True), "--log-facility": ("log_facility", True),
    # -V for the VRRP child, -I for the checker: leave what we installed on stop.
    "--dont-release": ("dont_release", False),
    "--json-file": ("json_file", True),
    "--data-file": ("data_file", True),  # SIGUSR1 (the checker: *_check)
    "--stats-file": ("stats_file", True),  # SIGUSR2
}  # fmt: skip  # an option and its long form on one line
# `sleep`: the test stand-in that does nothing but obey signals: --record FILE appends
# each signal received there, --ignore-term tests the kill -9 path.
_SLEEP_OPTIONS = {
    "--role": ("role", True), "--record": ("record", True),
    "--ignore-term": ("ignore_term", False),
}  # fmt: skip  # as _OPTIONS
USAGE = (
    "usage: python -m fastha.runtime.child {vrrp,check,bfd} -f FILE [-i ID] [-l] [-D] [-G]"
    " [-S FACILITY] [--dont-release] [--json-file F] [--data-file F] [--stats-file F]\n"
    "       python -m fastha.runtime.child sleep [--role ROLE] [--record FILE] [--ignore-term]"
)


def parse_args(argv: list[str]) -> types.SimpleNamespace:
    """The child's command line; exit 2 with the usage on a bad one (as argparse)."""
    import getopt

    def bad(why: str) -> NoReturn:
        print(f"{USAGE}\npython -m fastha.runtime.child: error: {why}", file=sys.stderr)
        sys.exit(2)

    if not argv or argv[0] not in KINDS:
        bad(f"the first argument is one of {', '.join(KINDS)}")
    kind, table = argv[0], _SLEEP_OPTIONS if argv[0] == "sleep" else _OPTIONS
    args = types.SimpleNamespace(kind=kind, role="vrrp")
    for name, takes in table.values():
        if name != "role":
            setattr(args, name, None if takes else False)
    shorts = "".join(o[1] + (":" if v else "") for o, (_n, v) in table.items() if len(o) == 2)
    longs = [o[2:] + ("=" if v else "") for o, (_n, v) in table.items() if len(o) > 2]
    try:
        options, rest = getopt.gnu_getopt(argv[1:], shorts, longs)
    except getopt.GetoptError as exc:
        bad(str(exc))
    if rest:
        bad(f"unrecognized arguments: {' '.join(rest)}")
    for option, given in options:
        name, takes = table[option]
        setattr(args, name, given if takes else True)
    if kind != "sleep" and args.file is None:
        bad("the following arguments are required: -f/--use-file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)

    die_with_parent()
    # Before anything imports asyncio: no child's loop speaks TLS (fastha.runtime.notls);
    # the checker's SSL_GET loads the real ssl at its first check (probes.http).
    from fastha.runtime.notls import import_loops

    import_loops(uvloop=args.kind != "sleep")
    if args.kind in ("vrrp", "check", "bfd"):
        from fastha.runtime.proctitle import set_title

        set_title(args.kind, (argv if argv is not None else sys.argv[1:])[1:])
    if args.kind == "vrrp":
        return _vrrp(args)
    if args.kind == "check":
        return _check(args)
    if args.kind == "bfd":
        return _bfd(args)
    import asyncio

    return asyncio.run(_obey_signals(args))


if __name__ == "__main__":
    sys.exit(main())
