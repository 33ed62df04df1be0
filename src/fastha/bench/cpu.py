"""CPU time and memory of a set of processes, in nanoseconds, read from /proc.

The benches' CPU figures come from here. /proc/PID/stat counts CPU in clock ticks
(10 ms at USER_HZ 100): a 10 s window of a daemon using 0.3% of a core holds 3 ticks,
and the ratio between two such figures is noise. /proc/PID/task/TID/schedstat's first
field is the time the scheduler ran that thread, in nanoseconds (CONFIG_SCHEDSTATS
is not needed: it comes with CONFIG_SCHED_INFO, on in Debian's kernels and the UML one).

A process's figure is the sum over its live threads; a thread that exited inside a
window takes its time with it (fastha's and keepalived's threads live as long as their
process). ``tree`` adds the descendants of a pid, for daemons that fork children.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")


def threads(pid: int) -> dict[int, tuple[int, int]]:
    """tid -> (ns on a CPU, ns waiting on a run queue) of every live thread of ``pid``
    (schedstat's first two fields); empty when it is gone."""
    out: dict[int, tuple[int, int]] = {}
    try:
        tids = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return out
    for tid in tids:
        try:
            fields = (PROC / str(pid) / "task" / tid / "schedstat").read_text().split()
        except OSError:
            continue  # the thread exited between listdir and read
        out[int(tid)] = (int(fields[0]), int(fields[1]))
    return out


def thread_ns(pid: int) -> int:
    """Nanoseconds of CPU of every live thread of ``pid``; 0 when it is gone."""
    return sum(run for run, _ in threads(pid).values())


def cpu_ns(pids: Iterable[int]) -> int:
    """Nanoseconds of CPU of ``pids`` (each summed over its threads)."""
    return sum(thread_ns(p) for p in set(pids))


def parents() -> dict[int, int]:
    """pid -> parent pid of every process (/proc/PID/stat field 4)."""
    out: dict[int, int] = {}
    for name in os.listdir(PROC):
        if not name.isdigit():
            continue
        try:
            stat = (PROC / name / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: split after its last ')'
        out[int(name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    return out


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for child, parent in parents().items():
        children.setdefault(parent, []).append(child)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS of /proc/PID/status); 0 when gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
