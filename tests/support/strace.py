"""A child process traced by strace from a chosen moment on (its start-up not counted).

The child prints one line when it is ready (what the caller may need, say an fd), then
waits for a line on stdin; strace attaches to it meanwhile, and once strace says it is
attached the child is told to go:

    with traced([sys.executable, script], ["-c", "-o", str(report)]) as (child, first):
        out = child.stdout.read()
        assert child.wait(120) == 0

On leaving, strace is given `timeout` to write its report after the child ended; either
process still running then is killed (by pid: only these two).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence

from tests.support.prereq import need_tool


@contextlib.contextmanager
def traced(
    argv: Sequence[str], strace_args: Sequence[str], timeout: float = 30.0
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """(the child, its first line), traced by ``strace <strace_args> -p <pid>``."""
    strace = need_tool("strace")
    child = subprocess.Popen(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    tracer: subprocess.Popen[str] | None = None
    try:
        assert child.stdout is not None and child.stdin is not None
        first = child.stdout.readline().strip()
        tracer = subprocess.Popen(
            [strace, *strace_args, "-p", str(child.pid)], stderr=subprocess.PIPE, text=True
        )
        assert tracer.stderr is not None
        assert "attached" in tracer.stderr.readline()
        child.stdin.write("go\n")
        child.stdin.flush()
        yield child, first
        tracer.wait(timeout)
    finally:
        for p in (child, tracer):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
