"""Run a shell command inside a User-Mode-Linux guest whose kernel has ip_vs.

This machine's kernel has no IPVS; Debian's ``user-mode-linux`` kernel does, as modules.
The guest boots as an ordinary process with the host's root filesystem mounted read-only
over hostfs (so the project's venv, ipvsadm and this tree are all there), takes a writable
overlayfs snapshot of it, loads ip_vs and its schedulers, brings ``lo`` up, runs the
command from the checkout and writes its exit code and output into a job directory shared
read-write over hostfs; then it powers itself off (sysrq ``o``). See ``init.sh``.

Used by tests/ipvs/conftest.py (one boot per test session, running tests/ipvs/inside)
and by benchmarks/bench_ipvs.py. From a shell:
``python -m tests.ipvs.uml 'ipvsadm -Ln'``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.ipvs import seccomp_xstate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
KERNEL = "/usr/bin/linux.uml"
INIT = HERE / "init.sh"


class UmlError(RuntimeError):
    """The guest did not boot, or did not report an exit code before the timeout."""


@dataclass(frozen=True, slots=True)
class Result:
    rc: int
    out: str  # the command's stdout + stderr
    console: str  # the kernel's console (boot messages, init's complaints)
    job: Path  # the job dir, for files the command wrote there (inside: /job)


def kernel() -> str:
    if not os.access(KERNEL, os.X_OK):
        raise UmlError(f"{KERNEL} missing: apt-get install user-mode-linux")
    return KERNEL


def run(
    command: str,
    *,
    timeout: float = 300.0,
    mem: str = "768M",
    keep: bool = False,
    files: dict[str, str] | None = None,
    cpu: int | None = None,
) -> Result:
    """Boot a guest, run ``command`` (sh syntax, cwd the checkout) in it, return its result.

    ``files`` are written into the job dir first (visible inside as /job/<name>). A guest
    that outlives ``timeout`` is killed and ``UmlError`` raised with its console.
    ``cpu``: the host CPU the guest (every host thread of it) is pinned to.
    """
    job = Path(tempfile.mkdtemp(prefix="fastha-uml-", dir="/dev/shm"))
    try:
        (job / "cmd").write_text(command + "\n")
        (job / "seed").write_bytes(os.urandom(512))  # see kmod.add_entropy
        for name, text in (files or {}).items():
            (job / name).write_text(text)
        umid = job.name
        argv = [
            kernel(), f"mem={mem}", "rootfstype=hostfs", "rootflags=/", "ro",
            f"init={INIT}", f"FASTHA_JOB={job}", f"FASTHA_ROOT={ROOT}", f"umid={umid}",
            f"uml_dir={job}",
            "con=null", "ssl=null", "con0=null,fd:1", "quiet",
        ]  # fmt: skip
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TMPDIR": "/dev/shm",
            "HOME": str(job),
        }  # make_umid crashes without $HOME
        with open(job / "console", "wb") as console:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=console,
                                    stderr=subprocess.STDOUT, env=env, cwd=job,
                                    start_new_session=True,
                                    preexec_fn=_preexec(cpu))  # fmt: skip
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # UML forks helper processes
                proc.wait()
                raise UmlError(
                    f"UML timed out after {timeout}s:\n{_tail(job / 'console')}"
                ) from None
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        console_text = (job / "console").read_text(errors="replace")
        if not (job / "rc").exists():
            raise UmlError(f"UML exited without a result:\n{_tail(job / 'console')}")
        return Result(
            rc=int((job / "rc").read_text().strip()),
            out=(job / "out").read_text(errors="replace") if (job / "out").exists() else "",
            console=console_text,
            job=job,
        )
    finally:
        if not keep:
            shutil.rmtree(job, ignore_errors=True)


def last_cpu() -> int:
    """The host CPU to pin a guest to (``run(cpu=...)``): the last one we may use. UML
    runs each guest process as a host process it switches to over ptrace; unpinned,
    every switch may cross CPUs and a guest syscall costs up to 10x (issue 19)."""
    return max(os.sched_getaffinity(0))


def _preexec(cpu: int | None) -> Callable[[], None]:
    def setup() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        seccomp_xstate.install()

    return setup


def python(args: str, **kw: object) -> Result:
    """Run the project's venv Python inside the guest: ``python('-m pytest ...')``."""
    return run(f"{ROOT}/.venv/bin/python {args}", **kw)  # type: ignore[arg-type]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no console)"


if __name__ == "__main__":
    res = run(" ".join(shlex.quote(a) for a in sys.argv[1:]) if len(sys.argv) > 2
              else sys.argv[1])  # fmt: skip
    sys.stdout.write(res.out)
    sys.exit(res.rc)
