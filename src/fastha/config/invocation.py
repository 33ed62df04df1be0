"""A script invocation: the command line to run, its time limit, who it runs as and its
name in logs. The configuration's scripts (``fastha.config.scripts.resolve``) become
these; the script runner (``fastha.drivers.scripts``) runs them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Script:
    argv: tuple[str, ...]
    timeout: float | None = None  # seconds; None = wait for ever
    user: str | None = None  # script_user <user> [<group>]
    group: str | None = None
    name: str = ""  # for logs: "VI_1 notify_master", "chk_haproxy"
    env: dict[str, str] | None = None
    # Resolved ids (fastha.config.scripts.resolve), keepalived's way: gid the only group.
    # They take the place of user/group.
    uid: int | None = None
    gid: int | None = None
