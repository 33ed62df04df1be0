"""Where the daemon keeps its files when the command line does not say.

keepalived's defaults are /run/keepalived.pid, /run/vrrp.pid, /run/checkers.pid and
/run/bfd.pid; with
`-s NAME` (network namespace) they move under /run/keepalived/NAME/, so daemons in
different namespaces never share a pid file. fastha does the same, and also when it is
started *inside* a named namespace (`ip netns exec NAME fastha daemon ...`): the
namespace is recognised by comparing /proc/self/ns/net with the files under
/run/netns. The control socket and the children's status sockets follow the same rule
(/run/fastha/ or /run/fastha/NAME/), so `ip netns exec NAME fastha status` finds the
daemon of that namespace without options.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

NETNS_DIR = "/run/netns"
RUN_DIR = "/run"
DEFAULT_CONTROL_SOCKET = f"{RUN_DIR}/fastha/control.sock"  # in the initial namespace


def current_namespace(netns_dir: str = NETNS_DIR) -> str | None:
    """The name (under /run/netns) of the network namespace this process is in; None
    for the initial namespace or an unnamed one."""
    try:
        own = os.stat("/proc/self/ns/net")
    except OSError:
        return None
    # (/proc/1/ns/net is not always readable, even by root in a container: no shortcut
    # for the initial namespace; it has no entry under /run/netns anyway.)
    try:
        names = sorted(os.listdir(netns_dir))
    except OSError:
        return None
    for name in names:
        try:
            st = os.stat(os.path.join(netns_dir, name))
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino):
            return name
    return None


@dataclass(frozen=True, slots=True)
class Paths:
    pid_file: str
    vrrp_pid_file: str
    checkers_pid_file: str
    run_dir: str  # the control socket and the children's status sockets
    bfd_pid_file: str = ""

    @property
    def control_socket(self) -> str:
        return f"{self.run_dir}/control.sock"


def default_paths(namespace: str | None = None, run_dir: str = RUN_DIR) -> Paths:
    """keepalived's paths for `namespace` (the current one when None)."""
    ns = namespace if namespace is not None else current_namespace()
    if ns:
        pid_dir = f"{run_dir}/keepalived/{ns}"
        return Paths(
            f"{pid_dir}/keepalived.pid",
            f"{pid_dir}/vrrp.pid",
            f"{pid_dir}/checkers.pid",
            f"{run_dir}/fastha/{ns}",
            f"{pid_dir}/bfd.pid",
        )
    return Paths(
        f"{run_dir}/keepalived.pid",
        f"{run_dir}/vrrp.pid",
        f"{run_dir}/checkers.pid",
        f"{run_dir}/fastha",
        f"{run_dir}/bfd.pid",
    )


def default_control_socket() -> str:
    return default_paths().control_socket
