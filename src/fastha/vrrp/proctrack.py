"""vrrp_track_process, sans-I/O: which processes match, and when a tracked process
set has quorum.

keepalived's rules (vrrp_track_process.c, keepalived.conf(5)):
- `process NAME` alone matches the process name (/proc/PID/comm, as pgrep without -f),
  exactly: `ssh` does not match `sshd`.
- `full_command`, parameters after the name, or `param_match` match the command line
  instead: argv[0] equal to NAME, then the parameters: all of them (exact, the default),
  the first n (`partial`), or the first n with the last one a prefix (`initial`).
- Quorum: `quorum <= count <= quorum_max`. A change of status caused by a fork waits
  `fork_delay`, one caused by an exit waits `terminate_delay`; a change back within the
  delay cancels it, so a reload that forks a new process and ends the old one does not
  move the priority. Any other change (exec, a renamed process, a scan) is immediate.

The driver (drivers/procwatch) reads /proc and the kernel's process events and feeds
what it saw here; times are CLOCK_MONOTONIC nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class ParamMatch(Enum):
    NONE = "none"  # the name only
    EXACT = "exact"
    PARTIAL = "partial"  # the first n parameters, more may follow
    INITIAL = "initial"  # as partial, the last configured one a prefix


class Cause(Enum):
    FORK = "fork"
    EXIT = "exit"
    OTHER = "other"  # exec, comm change, a scan of /proc


@dataclass(frozen=True, slots=True)
class ProcessMatch:
    """What one vrrp_track_process looks for."""

    name: str
    path: str  # the process name, or argv[0] when matching the command line
    params: tuple[str, ...] = ()
    param_match: ParamMatch = ParamMatch.NONE
    full_command: bool = False

    @classmethod
    def from_words(
        cls, name: str, words: tuple[str, ...], param_match: str | None, full_command: bool
    ) -> ProcessMatch:
        """keepalived's parse: parameters imply an exact match of the command line."""
        path, params = (words[0], tuple(words[1:])) if words else ("", ())
        pm = ParamMatch(param_match) if param_match else ParamMatch.NONE
        if params and pm is ParamMatch.NONE:
            pm = ParamMatch.EXACT
        return cls(name, path, params, pm, full_command or pm is not ParamMatch.NONE)

    def matches(self, comm: str, argv: tuple[str, ...] | None) -> bool:
        """`comm` from /proc/PID/comm; `argv` from /proc/PID/cmdline (None if not read)."""
        if not self.full_command:
            return comm == self.path
        if not argv or argv[0] != self.path:
            return False
        return self.params_match(argv[1:])

    def params_match(self, args: tuple[str, ...]) -> bool:
        want, n = self.params, len(self.params)
        pm = self.param_match
        if pm is ParamMatch.NONE:
            return True
        if pm is ParamMatch.EXACT:
            return args == want
        if len(args) < n:
            return False
        if pm is ParamMatch.PARTIAL or n == 0:
            return args[:n] == want
        return args[: n - 1] == want[:-1] and args[n - 1].startswith(want[-1])


@dataclass(slots=True, eq=False)  # shared by identity, as the other trackers
class ProcessTracker:
    """One vrrp_track_process's count of matching processes and its quorum status.

    `ok` is what instances see; `deadline_ns` is set while a delayed change waits (the
    driver calls `expire` then).
    """

    name: str
    weight: int = 0
    reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None  # None: no upper bound
    fork_delay_ns: int = 0
    terminate_delay_ns: int = 0
    count: int = 0
    ok: bool = False
    deadline_ns: int | None = field(default=None)

    def __post_init__(self) -> None:
        if self.quorum_max == 0:
            self.quorum = 0  # keepalived: "fail if the process runs at all"

    def wants(self) -> bool:
        top = self.quorum_max
        return self.count >= self.quorum and (top is None or self.count <= top)

    def start(self, count: int) -> None:
        """The first scan: the status is what it finds, with no delay."""
        self.count = count
        self.ok = self.wants()
        self.deadline_ns = None

    def set_count(self, count: int, cause: Cause, now_ns: int) -> bool:
        """A new count of matching processes; True if `ok` changed now."""
        self.count = count
        want = self.wants()
        if want == self.ok:
            self.deadline_ns = None  # back where it was: a pending change is void
            return False
        delay = {Cause.FORK: self.fork_delay_ns, Cause.EXIT: self.terminate_delay_ns}.get(cause, 0)
        if delay > 0:
            if self.deadline_ns is None:
                self.deadline_ns = now_ns + delay
            return False
        self.ok, self.deadline_ns = want, None
        return True

    def expire(self, now_ns: int) -> bool:
        """The delay ran out (or not yet: False); True if `ok` changed."""
        if self.deadline_ns is None or now_ns < self.deadline_ns:
            return False
        self.deadline_ns = None
        want = self.wants()
        changed = want != self.ok
        self.ok = want
        return changed


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """A vrrp_track_process, resolved: a reload compares these to keep a tracker."""

    match: ProcessMatch
    weight: int = 0
    reverse: bool = False
    quorum: int = 1
    quorum_max: int | None = None
    fork_delay_ns: int = 0
    terminate_delay_ns: int = 0

    def tracker(self) -> ProcessTracker:
        return ProcessTracker(
            self.match.name,
            self.weight,
            self.reverse,
            self.quorum,
            self.quorum_max,
            self.fork_delay_ns,
            self.terminate_delay_ns,
        )
