"""The loops that feed the trackers: one per tracked vrrp_script, one for the track
files (inotify, polled as a fallback), and the /proc watch for track_process."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from fastha.drivers.files import read_small
from fastha.drivers.inotify import DirWatch
from fastha.drivers.procwatch import ProcWatch
from fastha.drivers.scripts import ScriptRunner
from fastha.runtime.vrrp.current import Current
from fastha.runtime.vrrp.tracking import Trackers
from fastha.vrrp.trackers import ScriptTracker

log = logging.getLogger("fastha.vrrp")

FILE_POLL_S = 1.0


class TrackerPolls:
    def __init__(self, scripts: ScriptRunner, current: Current, trackers: Trackers) -> None:
        self.scripts = scripts
        self.current = current
        self.trackers = trackers
        self.script_tasks: dict[str, tuple[asyncio.Task[None], ScriptTracker]] = {}
        self.file_task: asyncio.Task[None] | None = None
        self.procwatch: ProcWatch | None = None
        self.script_runs: dict[str, dict[str, int]] = {}  # vrrp_script -> result -> runs

    def sync_tasks(self) -> None:
        """One loop per tracked vrrp_script (restarted when its tracker was replaced)
        and one for the track files."""
        loop = asyncio.get_running_loop()
        tracking = self.trackers.now
        for name, (task, tracker) in list(self.script_tasks.items()):
            if tracking.scripts.get(name) is not tracker:
                task.cancel()
                del self.script_tasks[name]
        for name, tracker in tracking.scripts.items():
            if name not in self.script_tasks:
                task = loop.create_task(self._script_loop(name, tracker), name=f"script-{name}")
                self.script_tasks[name] = (task, tracker)
        if tracking.files and self.file_task is None:
            self.file_task = loop.create_task(self._file_loop(), name="track-files")

    def sync_procwatch(self, fresh: set[str]) -> None:
        """The process watch follows the tracked processes: rebuilt (and /proc read
        again) when what it looks for changed; `fresh` trackers start from that scan."""
        loop = asyncio.get_running_loop()
        tracked = {
            name: (self.current.spec.track_processes[name].match, tracker)
            for name, tracker in self.trackers.now.processes.items()
        }
        old = self.procwatch
        if old is not None and not fresh and old.tracked == tracked:
            return
        if old is not None:
            old.close()
        self.procwatch = None
        if tracked:
            self.procwatch = ProcWatch(tracked, lambda name: self.trackers.changed(f"proc:{name}"))
            self.procwatch.start(loop, fresh)

    def stop(self) -> None:
        self.close()
        for task, _ in self.script_tasks.values():
            task.cancel()
        if self.file_task is not None:
            self.file_task.cancel()

    def close(self) -> None:
        if self.procwatch is not None:
            self.procwatch.close()

    async def _script_loop(self, name: str, tracker: ScriptTracker) -> None:
        s = self.current.spec.scripts[name]  # a reload that changes it restarts this loop
        while True:
            result = await self.scripts.run(s.script)
            ok = result.returncode == 0 and not result.timed_out and result.error is None
            how = "succeeded" if ok else "timed_out" if result.timed_out else "failed"
            runs = self.script_runs.setdefault(name, {})
            runs[how] = runs.get(how, 0) + 1
            if tracker.feed(ok):
                log.info("VRRP_Script(%s) %s", name, _script_outcome(result, tracker.ok))
                self.trackers.changed(f"script:{name}")
            await asyncio.sleep(s.interval_s)

    async def _file_loop(self) -> None:
        # keepalived watches each track file's directory with inotify and reacts as the
        # file is written; the poll stays as the fallback (no inotify, a directory that
        # cannot be watched).
        watch: DirWatch | None = None
        try:
            watch = DirWatch()
        except OSError as exc:
            log.warning("inotify unavailable (%s): track files are polled", exc)
        try:
            while True:
                track_files = self.current.spec.track_files
                for name in list(self.trackers.now.files):
                    if name in track_files and watch is not None:
                        path = track_files[name][0]
                        watch.watch(os.path.dirname(os.path.abspath(path)))
                self._read_files()
                if watch is not None:
                    await watch.wait(FILE_POLL_S)
                else:
                    await asyncio.sleep(FILE_POLL_S)
        finally:
            if watch is not None:
                watch.close()

    def _read_files(self) -> None:
        track_files = self.current.spec.track_files
        for name, tracker in list(self.trackers.now.files.items()):
            if name not in track_files:
                continue  # removed by a reload in progress
            path = track_files[name][0]
            # Non-blocking, no symlink, regular files only: a FIFO put in its place
            # would block open() and every advert with it (keepalived: O_NONBLOCK).
            try:
                text = read_small(path, 64).decode(errors="replace")
            except OSError:
                text = "0"
            if tracker.set_text(text):
                log.info("VRRP_Track_File(%s) value now %d", name, tracker.value)
                self.trackers.changed(f"file:{name}")


def _script_outcome(result: Any, ok: bool) -> str:
    """keepalived 2.2.7's words after `VRRP_Script(NAME) ` (vrrp_scheduler.c
    vrrp_script_child_thread): `succeeded`, `timed_out`, `failed (exited with status N)`,
    `failed (due to signal N)`."""
    if ok:
        return "succeeded"
    if result.timed_out:
        return "timed_out"
    if result.error is None and result.returncode < 0:
        return f"failed (due to signal {-result.returncode})"
    if result.error is None:
        return f"failed (exited with status {result.returncode})"
    return "failed"
