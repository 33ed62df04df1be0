"""What the parent is told to do: the daemon's command line, resolved (cli/daemon.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from fastha.daemon.paths import DEFAULT_CONTROL_SOCKET

DEFAULT_RUN_DIR = "/run/fastha"

# Resolved against the directory the daemon was started from before it moves to "/".
PATH_OPTIONS = (
    "config_file",
    "pid_file",
    "vrrp_pid_file",
    "checkers_pid_file",
    "bfd_pid_file",
    "control_socket",
    "run_dir",
    "data_file",
    "stats_file",
    "json_file",
)


@dataclass(slots=True)
class SupervisorOptions:
    config_file: str
    config_id: str | None = None
    vrrp: bool = True  # -C alone turns it off
    check: bool = True  # -P alone turns it off
    bfd: bool = False  # the BFD child: the config has a bfd_instance (or --all), and no -B
    respawn: bool = True  # -R turns it off
    pid_file: str | None = None  # -p
    vrrp_pid_file: str | None = None  # -r
    checkers_pid_file: str | None = None  # -c
    bfd_pid_file: str | None = None  # -b
    control_socket: str | None = DEFAULT_CONTROL_SOCKET
    run_dir: str = DEFAULT_RUN_DIR  # the children's status sockets
    namespace: str | None = None  # -s
    umask: int | None = 0o022
    metrics_listen: str | None = None  # "HOST:PORT", opt-in
    log_console: bool = False  # -l, passed on to the children
    log_detail: bool = False  # -D
    no_syslog: bool = False  # -G
    log_facility: str | None = None  # -S
    data_file: str | None = None  # SIGUSR1 (the checker's gets _check)
    stats_file: str | None = None  # SIGUSR2
    release_vrrp: bool = True  # -V turns it off
    release_ipvs: bool = True  # -I turns it off
    json_file: str | None = None
    all_config: bool = False  # -e: every include must be there (at reload too)
    stop_timeout: float = 10.0  # seconds between SIGTERM and SIGKILL of a child
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0
    child_query_timeout: float = 2.0
    # Tests only: spawn `fastha.runtime.child sleep` (obeys signals, nothing else) for
    # the VRRP and checker children (the BFD child stays real: its events are what a
    # stub lists).
    stub_children: bool = False
    stub_args: tuple[str, ...] = ()

    def anchor_paths(self) -> None:
        """Make every path option absolute (the daemon runs from "/")."""
        for name in PATH_OPTIONS:
            if getattr(self, name):
                setattr(self, name, os.path.abspath(getattr(self, name)))
