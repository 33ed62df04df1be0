"""Logging for the parent and the children, with keepalived's options.

- syslog by default (facility `daemon`, or `-S N` -> local0..local7 as keepalived, or a
  facility name); identity `Keepalived`, `Keepalived_vrrp`, `Keepalived_healthcheckers`
  in keepalived; here `fastha`, `fastha_vrrp`, `fastha_checker`.
- `-l`: the console (stderr) instead of syslog.
- `-G`: no syslog (with neither -l: silent, as keepalived -G alone). Without a syslog
  socket (a container), lines go to stderr rather than nowhere.
- `-D`: debug detail from fastha's own loggers (keepalived's LOG_DETAIL lines, such as
  `(VI_1) Receive advertisement timeout`, are logged at debug here, so `-D` shows them
  as it does in keepalived).
- `--syslog-ident keepalived` (CLI; `/etc/default/fastha` in a package install): log
  under keepalived's idents, `Keepalived`, `Keepalived_vrrp`, `Keepalived_healthcheckers`,
  so existing rsyslog/journald filters (`:programname, isequal, "Keepalived_vrrp"`,
  `journalctl -t Keepalived_vrrp`) keep working. A command-line option, not a
  global_defs keyword: keepalived.conf stays a file keepalived itself accepts unchanged
  (a new keyword would be "unknown" to keepalived on a mixed cluster), and the ident is
  about the host's log plumbing, not the virtual router. The parent passes the choice to
  its children in the environment (FASTHA_SYSLOG_IDENT), so they need no new argument.

The syslog socket is opened in non-blocking datagram mode by the standard handler; a
full /dev/log queue drops a line instead of stalling the VRRP loop.
"""

from __future__ import annotations

import logging
import os
import socket
from logging.handlers import SysLogHandler

FACILITIES = {
    "kern": SysLogHandler.LOG_KERN,
    "user": SysLogHandler.LOG_USER,
    "daemon": SysLogHandler.LOG_DAEMON,
    "syslog": SysLogHandler.LOG_SYSLOG,
    **{f"local{i}": SysLogHandler.LOG_LOCAL0 + i for i in range(8)},
}
DEV_LOG = "/dev/log"
IDENT_ENV = "FASTHA_SYSLOG_IDENT"
# Our process names -> keepalived's syslog idents (keepalived's main.c, vrrp_daemon.c,
# check_daemon.c: PROG, PROG_VRRP, PROG_CHECK).
KEEPALIVED_IDENTS = {
    "fastha": "Keepalived",
    "fastha_vrrp": "Keepalived_vrrp",
    "fastha_checker": "Keepalived_healthcheckers",
    "fastha_bfd": "Keepalived_bfd",  # bfd_daemon.c PROG_BFD
}
IDENT_STYLES = ("fastha", "keepalived")


def set_ident_style(style: str) -> None:
    """Choose the idents for this process and the children it starts."""
    if style not in IDENT_STYLES:
        raise ValueError(f"syslog ident style {style!r}: expected one of {IDENT_STYLES}")
    os.environ[IDENT_ENV] = style


def ident(name: str) -> str:
    """The ident a process called `name` logs under, as the environment chooses."""
    if os.environ.get(IDENT_ENV) == "keepalived":
        return KEEPALIVED_IDENTS.get(name, name)
    return name


def parse_facility(text: str | None) -> int:
    """keepalived -S: 0..7 mean local0..local7; a name is accepted too."""
    if text is None or text == "":
        return SysLogHandler.LOG_DAEMON
    t = text.strip().lower()
    if t.isdigit() and 0 <= int(t) <= 7:
        return SysLogHandler.LOG_LOCAL0 + int(t)
    if t.startswith("log_"):
        t = t[4:]
    if t in FACILITIES:
        return FACILITIES[t]
    raise ValueError(f"invalid log facility {text!r} (0-7, local0-local7, daemon, user)")


class _NonBlockingSysLog(SysLogHandler):
    """SysLogHandler whose datagram socket never blocks the loop: a line that does not
    fit the socket's queue is dropped (counted), never waited for."""

    dropped = 0
    socket: socket.socket  # set by SysLogHandler; typeshed does not declare it

    def _connect_unixsocket(self, address: str) -> None:
        # CPython's private helper (absent from typeshed), also called on reconnect.
        super()._connect_unixsocket(address)  # type: ignore[misc]
        self.socket.setblocking(False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            super().emit(record)
        except BlockingIOError:
            type(self).dropped += 1

    def handleError(self, record: logging.LogRecord) -> None:
        # BlockingIOError arrives here through SysLogHandler.emit's own except.
        type(self).dropped += 1


def configure(
    name: str,
    *,
    console: bool,
    syslog: bool = True,
    detail: bool = False,
    facility: int = SysLogHandler.LOG_DAEMON,
) -> None:
    """Route every log line of this process (root logger) as the options say."""
    name = ident(name)
    handlers: list[logging.Handler] = []
    if console:
        h: logging.Handler = logging.StreamHandler()
        h.setFormatter(logging.Formatter(f"%(asctime)s {name}[{os.getpid()}]: %(message)s"))
        handlers.append(h)
    elif syslog:
        try:
            sh: logging.Handler = _NonBlockingSysLog(
                address=DEV_LOG, facility=facility, socktype=socket.SOCK_DGRAM
            )
            sh.setFormatter(logging.Formatter(f"{name}[{os.getpid()}]: %(message)s"))
        except OSError:  # no syslog daemon (a container): stderr rather than nothing
            sh = logging.StreamHandler()
            sh.setFormatter(logging.Formatter(f"%(asctime)s {name}[{os.getpid()}]: %(message)s"))
        handlers.append(sh)
    if not handlers:
        handlers.append(logging.NullHandler())
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(logging.INFO)
    logging.getLogger("fastha").setLevel(logging.DEBUG if detail else logging.INFO)
    # -D is about our own detail; pyroute2's debug output would drown it.
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
