"""Process titles that say what each process is: `fastha: parent`, `fastha: vrrp`,
`fastha: checker`, `fastha: bfd`, each followed by the arguments it was started with.

`ps`, `pgrep -f 'fastha: vrrp'`, `top` and monitoring agents see the title in
/proc/PID/cmdline; the role alone (`fastha: vrrp`, 15 bytes at most) is also the
process name in /proc/PID/comm, so `pgrep -x 'fastha: checker'` and `ps -o comm` work.
setproctitle rewrites argv in place, as keepalived's children appear under their own
command line.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys

ROLES = {
    "parent": "fastha: parent",
    "vrrp": "fastha: vrrp",
    "check": "fastha: checker",
    "bfd": "fastha: bfd",
}
_PR_SET_NAME = 15


def title_for(role: str, args: list[str]) -> str:
    return " ".join([ROLES[role], *args])


def set_title(role: str, args: list[str] | None = None) -> None:
    """`args`: what follows the role in the title (default: this process's arguments
    after the subcommand: `fastha daemon -n -f F` shows as `fastha: parent -n -f F`)."""
    if args is None:
        args = list(sys.argv[1:])
        if args and args[0] == "daemon":
            args = args[1:]
    title = title_for(role, args)
    try:
        import setproctitle
    except ImportError:  # a dependency; without it only the name below changes
        pass
    else:
        setproctitle.setproctitle(title)
    # comm as well, whatever setproctitle did with it (it is cut to 15 bytes).
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, ROLES[role].encode()[:15], 0, 0, 0)
