"""Notify and track scripts spawned without blocking the loop.

Each script runs in its own session (so a timeout can kill the whole process group a
shell script leaves behind), with stdin/stdout/stderr on /dev/null (MBs of output cost
nothing and never block), optionally as another user/group (keepalived's
``script_user``), and at normal scheduling priority even when the VRRP child is
real-time (keepalived resets it the same way: a busy script must not starve the loop).
A spawner thread starts it (vfork, never a fork of this process on the loop thread)
and the loop waits for its pidfd. A semaphore caps how many run at once: a flapping
link must not fork-bomb the VRRP child.

Containment. A process group is not enough: a script that double-forks and calls
``setsid`` leaves it, and keepalived then loses track of it. So each run also gets its
own cgroup (``<our cgroup>/fastha-scripts.<pid>/s<n>``), joined before the script's exec:

- cgroup v2 (wherever ``cgroup2`` is mounted): membership cannot be left without root;
  a timeout SIGTERMs every member, then writes ``cgroup.kill`` (SIGKILL to all, atomic
  against forks; on kernels before 5.14 the members are SIGKILLed one by one until none
  is left).
- the ``pids`` controller (v2 if it can be enabled below our cgroup, else the v1
  hierarchy): ``pids.max`` = ``max_tasks`` per run, so a fork bomb stops at the limit
  instead of exhausting the pid space. RLIMIT_NPROC would not do: it counts every
  process of the user and root is exempt from it.

A script that exits by itself keeps keepalived's behaviour: whatever it started in the
background (``/etc/init.d/haproxy start``) lives on; it is moved back to our own
cgroup, out of the task limit, and the run's cgroup is removed. Only a timeout (or
``close()``) kills descendants. A daemon started by ``ip netns exec`` sees an empty
/sys/fs/cgroup (it remounts /sys in a private mount namespace): the runner mounts the
hierarchies back there, visible in that namespace only. Without a writable hierarchy
(a read-only /sys/fs/cgroup in a container) scripts still run, process-group kill
only; the runner logs that once.

    runner = ScriptRunner(max_running=32)
    result = await runner.run(Script(("/etc/ka/notify.sh", "INSTANCE", "VI_1", "MASTER"),
                                     timeout=5.0, user="nobody"))
    runner.spawn(script, callback=on_done)   # fire and forget, result to a callback
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import errno
import grp
import logging
import os
import pwd
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastha.config.invocation import Script

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScriptResult:
    """``returncode`` as from ``Popen``: negative for a signal. ``timed_out`` when we
    killed it; ``error`` when it could not start (returncode is then 127/126)."""

    returncode: int
    timed_out: bool = False
    error: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _credentials(script: Script) -> tuple[int, int, list[int]] | None:
    """Resolved in the parent: the child only makes three syscalls before exec. None
    when they are ours already (``script_user root`` under root): a change of user
    makes Popen fork instead of vfork."""
    if script.uid is not None:
        gid = script.gid if script.gid is not None else script.uid
        if (script.uid, gid) == (os.geteuid(), os.getegid()):
            return None
        return script.uid, gid, [gid]
    user, group = script.user, script.group
    if user is None and group is None:
        return None
    pw = pwd.getpwnam(user) if user is not None else pwd.getpwuid(os.getuid())
    gid = grp.getgrnam(group).gr_gid if group is not None else pw.pw_gid
    groups = os.getgrouplist(pw.pw_name, gid)
    # The primary group counts as a member whether or not it is in the list.
    if (pw.pw_uid, gid) == (os.geteuid(), os.getegid()) and set(groups) | {gid} == set(
        os.getgroups()
    ) | {gid}:
        return None
    return pw.pw_uid, gid, groups


def describe(result: ScriptResult) -> str:
    """keepalived's words for how a script ended."""
    if result.error is not None:
        return f"could not be run ({result.error})"
    if result.timed_out:
        return "timed out"
    if result.returncode < 0:
        try:
            sig = signal.Signals(-result.returncode).name
        except ValueError:
            sig = str(-result.returncode)
        return f"killed by signal {sig}"
    return f"exited with status {result.returncode}"


# The run's cgroup(s) joined by the process itself ("0" is the writer), as root, then the
# script exec'd in its place (through setpriv when it runs as another user: the join
# must come before the drop, the cgroup files are root's). $1 is how many cgroup.procs
# paths follow, then the script's argv. A join that fails leaves the script unconfined
# rather than not run, and names the file on the shell's stdout (a pipe the runner
# reads and logs); the script's own stdout is /dev/null.
_JOIN = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do { echo 0 >"$1"; } 2>/dev/null || echo "$1"; '
    'shift; n=$((n - 1)); done; exec "$@" >/dev/null'
)


def _setpriv() -> str | None:
    """util-linux's setpriv, root's own copy: what drops privileges after the join."""
    for d in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        path = os.path.join(d, "setpriv")
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if st.st_uid == 0 and not st.st_mode & 0o022 and os.access(path, os.X_OK):
                return path
    return None


SETPRIV = _setpriv()


def _resolve(exe: str, env: dict[str, str] | None) -> str | None:
    """What execvp would run, checked before the /bin/sh that joins the cgroup, so a
    missing script is still "failed to start" and not the shell's status 127."""
    path = (env if env is not None else os.environ).get("PATH", os.defpath)
    return shutil.which(exe, path=path)


def _wake(f: asyncio.Future[None]) -> None:
    if not f.done():
        f.set_result(None)


async def _exited(proc: subprocess.Popen[bytes]) -> int:
    """The script's exit status, waited for on the loop: its pidfd turns readable when
    it exits (uvloop reaps only the children it spawned itself)."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:  # before Linux 5.3: a thread waits instead
        return await loop.run_in_executor(None, proc.wait)
    try:
        while proc.poll() is None:
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _wake, readable)
            try:
                await readable
            finally:
                loop.remove_reader(fd)
    finally:
        os.close(fd)
    return proc.returncode


# -- containment: one cgroup per run ------------------------------------------------


def _cgroup_mounts() -> tuple[str | None, str | None]:
    """Paths of our own cgroup in the v2 hierarchy and in the v1 ``pids`` one."""
    own2 = own1 = None
    with open("/proc/self/cgroup") as fh:
        for line in fh:
            hier, ctrls, path = line.rstrip("\n").split(":", 2)
            if hier == "0" and ctrls == "":
                own2 = path
            elif "pids" in ctrls.split(","):
                own1 = path
    v2 = v1 = None
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            root, mnt = fields[3], fields[4]
            fstype, opts = rfields[0], rfields[2] if len(rfields) > 2 else ""

            def under(own: str | None, root: str = root, mnt: str = mnt) -> str | None:
                # A bind mount of a subtree (containers) shows the cgroups below `root`.
                if own is None or not (own + "/").startswith(root.rstrip("/") + "/"):
                    return None
                return mnt + own[len(root.rstrip("/")) :]

            if fstype == "cgroup2" and v2 is None:
                v2 = under(own2)
            elif fstype == "cgroup" and "pids" in opts.split(",") and v1 is None:
                v1 = under(own1)
    return v2, v1


CGROUP_ROOT = "/sys/fs/cgroup"


def _mount(source: str, target: str, fstype: str, data: str = "") -> None:
    # The libc already loaded, not ctypes.util.find_library("c"): that runs
    # `ldconfig -p`, and where it fails (it segfaults in the UML guest) gcc, ld and
    # objdump, on the loop thread: the first script's start stalled 2-14 s there.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(source.encode(), target.encode(), fstype.encode(), 0, data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def _pids_on_v1() -> bool:
    """Whether the pids controller is bound to a v1 hierarchy (/proc/cgroups)."""
    with open("/proc/cgroups") as fh:
        for line in fh:
            f = line.split()
            if f and f[0] == "pids":
                return f[1] != "0" and f[3] == "1"
    return False


def _mount_cgroups() -> bool:
    """``ip netns exec`` remounts /sys in its own mount namespace, so a daemon started
    that way sees an empty /sys/fs/cgroup. Mount the hierarchies back there, the host's
    layout (cgroup2, plus the v1 pids hierarchy where the controller lives on v1): the
    same kernel hierarchies, seen only inside that namespace. Never over anything."""
    if os.geteuid() != 0 or not os.path.isdir(CGROUP_ROOT) or os.listdir(CGROUP_ROOT):
        return False
    try:
        if not _pids_on_v1():
            _mount("cgroup2", CGROUP_ROOT, "cgroup2")
            return True
        _mount("tmpfs", CGROUP_ROOT, "tmpfs", "mode=755")
        for sub, fstype, data in (("unified", "cgroup2", ""), ("pids", "cgroup", "pids")):
            os.mkdir(os.path.join(CGROUP_ROOT, sub))
            _mount("cgroup", os.path.join(CGROUP_ROOT, sub), fstype, data)
    except OSError as exc:
        log.warning("scripts: cannot mount the cgroup hierarchies on %s: %s", CGROUP_ROOT, exc)
        return False
    log.info("scripts: mounted the cgroup hierarchies on %s for script containment", CGROUP_ROOT)
    return True


def _read_pids(path: str) -> list[int]:
    try:
        with open(path) as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def _write(path: str, data: str) -> None:
    with open(path, "w") as fh:
        fh.write(data)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(slots=True)
class RunCgroup:
    """One run's cgroup directories (v2 and/or v1 pids); the first one is authoritative
    for membership."""

    dirs: list[str]
    home: list[str]  # our own cgroup.procs in the same hierarchies, for release()
    procs: list[str]  # <dir>/cgroup.procs, written by the script's process itself
    name: str = ""  # the script's, for logs
    report: int = -1  # read end of the pipe where the joining shell names a failed join

    def unjoined(self) -> list[str]:
        """The cgroup.procs the script's process could not join (read once)."""
        if self.report < 0:
            return []
        try:
            data = os.read(self.report, 65536)
        except BlockingIOError:
            data = b""
        finally:
            os.close(self.report)
            self.report = -1
        return data.decode(errors="replace").split()

    def members(self) -> list[int]:
        return _read_pids(os.path.join(self.dirs[0], "cgroup.procs"))

    def signal(self, sig: int) -> None:
        for pid in self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def kill(self) -> None:
        """SIGKILL every member, forks racing with it included."""
        kill_file = os.path.join(self.dirs[0], "cgroup.kill")
        try:
            _write(kill_file, "1")
            return
        except OSError:
            pass  # cgroup v1, or a kernel before 5.14
        for _ in range(100):  # each pass kills what forked during the last one
            left = self.members()
            if not left:
                return
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def release(self) -> int:
        """Move whatever the script left running back to our own cgroup(s)."""
        moved = 0
        for home, d in zip(self.home, self.dirs, strict=True):
            for _ in range(10):  # a member may fork while it is being moved
                left = _read_pids(os.path.join(d, "cgroup.procs"))
                if not left:
                    break
                for pid in left:
                    with contextlib.suppress(OSError):
                        _write(home, str(pid))
                        moved += d is self.dirs[0]
        return moved

    def remove(self) -> bool:
        done = True
        for d in self.dirs:
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError:
                done = False
        return done


class ScriptCgroups:
    """Creates a cgroup per script run below ``fastha-scripts.<pid>`` in our own
    cgroup. ``open()`` returns None where no hierarchy is writable."""

    PREFIX = "fastha-scripts."

    def __init__(self, v2: str | None, v1pids: str | None, max_tasks: int) -> None:
        self.max_tasks = max_tasks
        self.bases: list[str] = []
        self.homes: list[str] = []
        self.pids_base: str | None = None  # where pids.max goes
        self.serial = 0
        for v1, own in ((False, v2), (True, v1pids)):
            if own is None or (v1 and self.pids_base is not None):
                continue  # v2 already limits tasks: the v1 pids hierarchy adds nothing
            self._prune(own)
            base = os.path.join(own, f"{self.PREFIX}{os.getpid()}")
            try:
                os.makedirs(base, exist_ok=True)
            except OSError as exc:
                log.debug("no script cgroups under %s: %s", own, exc)
                continue
            self.bases.append(base)
            self.homes.append(os.path.join(own, "cgroup.procs"))
            if v1:
                self.pids_base = base
                continue
            with contextlib.suppress(OSError), open(os.path.join(base, "cgroup.controllers")) as f:
                if "pids" in f.read().split():
                    _write(os.path.join(base, "cgroup.subtree_control"), "+pids")
                    self.pids_base = base

    @classmethod
    def open(cls, max_tasks: int) -> ScriptCgroups | None:
        try:
            v2, v1 = _cgroup_mounts()
            if v2 is None and v1 is None and _mount_cgroups():
                v2, v1 = _cgroup_mounts()
        except OSError:
            return None
        cg = cls(v2, v1, max_tasks)
        return cg if cg.bases else None

    @classmethod
    def _prune(cls, own: str) -> None:
        """Empty leftovers of runners that died without close() (kill -9)."""
        with contextlib.suppress(OSError):
            for name in os.listdir(own):
                if not name.startswith(cls.PREFIX):
                    continue
                pid = name[len(cls.PREFIX) :]
                if not pid.isdigit() or _alive(int(pid)):
                    continue
                base = os.path.join(own, name)
                with contextlib.suppress(OSError):
                    for leaf in os.listdir(base):
                        if os.path.isdir(os.path.join(base, leaf)):
                            os.rmdir(os.path.join(base, leaf))
                    os.rmdir(base)

    @property
    def limits_tasks(self) -> bool:
        return self.pids_base is not None

    def new(self) -> RunCgroup | None:
        self.serial += 1
        dirs: list[str] = []
        for base in self.bases:
            d = os.path.join(base, f"s{self.serial}")
            try:
                os.mkdir(d)
                if base == self.pids_base:
                    _write(os.path.join(d, "pids.max"), str(self.max_tasks))
            except OSError as exc:
                log.warning("cannot create script cgroup %s: %s", d, exc)
                with contextlib.suppress(OSError):
                    os.rmdir(d)
                for made in dirs:
                    with contextlib.suppress(OSError):
                        os.rmdir(made)
                return None
            dirs.append(d)
        return RunCgroup(
            dirs,
            list(self.homes),
            [os.path.join(d, "cgroup.procs") for d in dirs],
        )

    def close(self) -> None:
        for base in self.bases:
            with contextlib.suppress(OSError):
                os.rmdir(base)


def start_process(
    script: Script, cgs: ScriptCgroups | None
) -> tuple[subprocess.Popen[bytes], RunCgroup | None]:
    """In the spawner thread. A fork on the loop thread stalled it for as long as
    the kernel takes to copy our page tables (3-6 ms here), and a cgroup join
    between fork and exec for an RCU grace period on top (10-40 ms): adverts went
    out that late at every run of a vrrp_script. Here, without a ``preexec_fn`` or
    a change of user, Popen uses vfork (no page tables copied; this thread waits
    for the exec, the loop does not), and the run's cgroup is joined by a two-line
    /bin/sh that then execs the script (in its own process: its wait is nobody else's)."""
    argv = list(script.argv)
    if _resolve(argv[0], script.env) is None:
        raise FileNotFoundError(errno.ENOENT, "no such executable", argv[0])
    creds = _credentials(script)
    cg = cgs.new() if cgs is not None else None
    if cg is not None and creds is not None and SETPRIV is None:
        log.warning(
            "script %s: no setpriv to drop to uid %d after joining its cgroup; "
            "it runs without containment (no task limit, no cgroup kill)",
            script.name or argv[0],
            creds[0],
        )
        cg.remove()
        cg = None
    stdout: int = subprocess.DEVNULL
    if cg is not None:
        if creds is not None:
            assert SETPRIV is not None
            uid, gid, groups = creds
            argv = [
                SETPRIV,
                f"--reuid={uid}",
                f"--regid={gid}",
                f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
                "--",
                *argv,
            ]
            creds = None  # the shell joins as root, setpriv drops
        argv = ["/bin/sh", "-c", _JOIN, "fastha-script", str(len(cg.procs)), *cg.procs, *argv]
        cg.name = script.name or script.argv[0]
        cg.report, stdout = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    # Where the kernel does not reset it for us (SCHED_RESET_ON_FORK, which
    # sched.apply sets), a real-time policy is dropped in the child: this one
    # case forks.
    policy = os.sched_getscheduler(0)
    preexec = None
    if policy in (os.SCHED_RR, os.SCHED_FIFO):

        def preexec() -> None:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))

    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, killed as one
            preexec_fn=preexec,
            env=script.env,
            close_fds=True,
            user=creds[0] if creds else None,
            group=creds[1] if creds else None,
            extra_groups=creds[2] if creds else None,
        )
    except BaseException:
        if cg is not None:
            cg.unjoined()
            cg.remove()
        raise
    finally:
        if stdout != subprocess.DEVNULL:
            os.close(stdout)
    return proc, cg


class ScriptRunner:
    # The process start runs in the spawner thread (see start_process).
    _start = staticmethod(start_process)

    def __init__(
        self,
        *,
        max_running: int = 32,
        kill_grace: float = 2.0,
        max_tasks: int = 1024,
        cgroups: bool = True,
    ) -> None:
        self._sem = asyncio.Semaphore(max_running)
        self.kill_grace = kill_grace  # seconds between SIGTERM and SIGKILL
        self.max_tasks = max_tasks  # pids.max of each run's cgroup
        self._tasks: set[asyncio.Task[ScriptResult]] = set()
        self._want_cgroups = cgroups
        self._cgroups: ScriptCgroups | None = None  # opened on first use
        self._cgroups_opened = False
        self._stale: list[RunCgroup] = []  # not yet removable (members still exiting)
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, "fastha-spawn")
        self._last: dict[str, str] = {}  # name -> how it last ended, for change logs
        self.running = 0
        self.started = 0
        self.timeouts = 0
        self.escaped_killed = 0  # members outside the script's process group, killed
        self.uncontained = 0  # runs whose process could not join their cgroup

    @property
    def cgroups(self) -> ScriptCgroups | None:
        if not self._cgroups_opened:
            self._cgroups_opened = True
            cg = ScriptCgroups.open(self.max_tasks) if self._want_cgroups else None
            if cg is None and self._want_cgroups:
                log.warning(
                    "scripts: no writable cgroup hierarchy; a timed-out script's "
                    "descendants that left its session survive, and there is no per-script "
                    "task limit"
                )
            elif cg is not None and not cg.limits_tasks:
                log.warning("scripts: no pids cgroup controller; no per-script task limit")
            self._cgroups = cg
        return self._cgroups

    async def run(self, script: Script) -> ScriptResult:
        """Run one script to completion (waiting for a free slot first)."""
        async with self._sem:
            result = await self._run(script)
        self._log_outcome(script, result)
        return result

    def spawn(
        self, script: Script, callback: Callable[[Script, ScriptResult], None] | None = None
    ) -> asyncio.Task[ScriptResult]:
        """Start a script in the background; ``callback(script, result)`` when it ends.
        The task is kept referenced until it finishes, so it is never collected early."""
        task = asyncio.get_running_loop().create_task(self.run(script))
        self._tasks.add(task)

        def done(t: asyncio.Task[ScriptResult]) -> None:
            self._tasks.discard(t)
            if callback is not None and not t.cancelled() and t.exception() is None:
                callback(script, t.result())

        task.add_done_callback(done)
        return task

    def _log_outcome(self, script: Script, result: ScriptResult) -> None:
        """One line when a script's outcome changes (a failing check run every second
        logs once, as keepalived does), always for a signal death."""
        name = script.name or script.argv[0]
        how = describe(result)
        if self._last.get(name) != how or (result.returncode < 0 and not result.timed_out):
            self._last[name] = how
            level = logging.INFO if result.returncode >= 0 else logging.WARNING
            log.log(level, "Script %s %s", name, how)

    async def _run(self, script: Script) -> ScriptResult:
        name = script.name or script.argv[0]
        cgs = self.cgroups
        self._retry_stale()
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        # The spawner thread forks, so the loop never waits for it (see start_process).
        started = loop.run_in_executor(self._spawner, self._start, script, cgs)
        try:
            proc, cg = await asyncio.shield(started)
        except asyncio.CancelledError:
            with contextlib.suppress(OSError, subprocess.SubprocessError, KeyError):
                proc, cg = await started
                await self._kill(proc, cg)
            raise
        except (OSError, subprocess.SubprocessError, KeyError) as exc:
            rc = 126 if isinstance(exc, PermissionError) else 127
            log.warning("script %s failed to start: %s", name, exc)
            return ScriptResult(rc, error=str(exc))
        self.started += 1
        self.running += 1
        try:
            try:
                rc = await asyncio.wait_for(_exited(proc), script.timeout)
            except TimeoutError:
                self.timeouts += 1
                log.warning(
                    "script %s timed out after %ss, killing its process group and cgroup",
                    name,
                    script.timeout,
                )
                rc = await self._kill(proc, cg)
                return ScriptResult(rc, timed_out=True, duration=time.monotonic() - t0)
            except asyncio.CancelledError:
                await self._kill(proc, cg)
                raise
        finally:
            self.running -= 1
        if cg is not None:
            moved = cg.release()
            if moved:
                log.debug("script %s left %d processes running", name, moved)
            self._drop(cg)
        log.debug("script %s exited rc=%d", name, rc)
        return ScriptResult(rc, duration=time.monotonic() - t0)

    async def _kill(self, proc: subprocess.Popen[bytes], cg: RunCgroup | None) -> int:
        # The session leader's pid is the process group id (start_new_session).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        if cg is not None:
            escaped = [p for p in cg.members() if _pgid(p) != proc.pid]
            self.escaped_killed += len(escaped)
            cg.signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(_exited(proc), self.kill_grace)
        except TimeoutError:
            pass
        finally:
            # Whatever the group left behind (children that ignore SIGTERM) goes too,
            # and with a cgroup every descendant, those that called setsid included.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if cg is not None:
                cg.kill()
                await self._wait_empty(cg)
                self._drop(cg)
        return await _exited(proc)

    async def _wait_empty(self, cg: RunCgroup, limit: float = 2.0) -> None:
        """SIGKILLed members leave the cgroup as they exit: a few ms."""
        deadline = time.monotonic() + limit
        while cg.members() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def _drop(self, cg: RunCgroup) -> None:
        missed = cg.unjoined()
        if missed:
            self.uncontained += 1
            log.warning(
                "script %s ran without containment: it could not join %s",
                cg.name,
                " ".join(missed),
            )
        if not cg.remove():
            self._stale.append(cg)

    def _retry_stale(self) -> None:
        self._stale = [cg for cg in self._stale if not cg.remove()]

    async def drain(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for the scripts already started to end (close() then
        kills what is left)."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)

    async def close(self) -> None:
        """Cancel (and kill) every script still running."""
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self._cgroups is not None:
            for cg in self._stale:
                cg.kill()
                await self._wait_empty(cg)
            self._retry_stale()
            self._cgroups.close()
        self._spawner.shutdown(wait=False)


def _pgid(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except OSError:
        return -1
