"""The parent's reload (SIGHUP or `fastha reload`).

The new file is parsed and validated off to the side; with errors, every error is
logged with file:line and the children are not told (they keep the old config); else
the validated model is written to the snapshot in the run dir
(child_status.write_snapshot) and each child gets SIGHUP, loads that snapshot -- never
the file, which may have changed again -- and applies the difference itself. A
respawned child starts from the snapshot too.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastha.daemon.supervisor import Supervisor

log = logging.getLogger("fastha.daemon")


class ParentReload:
    def __init__(self, parent: Supervisor) -> None:
        self.parent = parent
        self.reloads = 0
        self.refused_reloads = 0
        self.last_reload: dict[str, Any] | None = None
        self._lock: asyncio.Lock | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    def open(self) -> None:
        """On the parent's loop, before the first SIGHUP."""
        self._lock = asyncio.Lock()

    def on_hup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload")
        self._pending.add(task)  # referenced until done
        task.add_done_callback(self._pending.discard)

    async def reload(self) -> dict[str, Any]:
        """Validate the file off to the side; only a clean one reaches the children."""
        from fastha.config.diagnostics import Severity
        from fastha.config.loader import load
        from fastha.config.preprocess import default_config_id

        p = self.parent
        options, notify = p.options, p.notify
        assert self._lock is not None
        async with self._lock:
            if p.stopping:
                return {"accepted": False, "errors": ["stopping"]}
            path = options.config_file
            notify.reloading()
            log.info("Reloading: validating %s", path)
            # In a thread: a big (or hostile, bounded) file must not stop the loop that
            # answers status and respawns children.
            result = await asyncio.to_thread(
                load,
                path,
                options.config_id or default_config_id(),
                all_config=options.all_config,
            )
            errors = [str(d) if d.where else f"{path}: {d}" for d in result.errors]
            warnings = [
                str(d) if d.where else f"{path}: {d}"
                for d in result.diagnostics
                if d.severity is Severity.WARNING
            ]
            for text in warnings:
                log.warning("%s", text)
            if not result.ok:
                for text in errors:
                    log.error("%s", text)
                # The children's wording for the same outcome (operators grep for it).
                log.error(
                    "Reload failed: configuration has errors; keeping the running one "
                    "(%s: %d error(s); the children were not signalled)",
                    path,
                    len(errors),
                )
                self.refused_reloads += 1
                outcome: dict[str, Any] = {"accepted": False, "errors": errors}
                notify.ready(f"running; reload refused ({len(errors)} errors)")
            else:
                try:
                    # The children load this, never the file: it may change again.
                    p.write_snapshot(result.config)
                except (OSError, pickle.PicklingError) as exc:
                    log.error(
                        "Reload failed: cannot write %s: %s; keeping the running "
                        "configuration (the children were not signalled)",
                        p.snapshot_path,
                        exc,
                    )
                    self.refused_reloads += 1
                    outcome = {"accepted": False, "errors": [str(exc)]}
                    self.last_reload = {"at": time.time(), **outcome}
                    notify.ready("running; reload refused (snapshot not written)")
                    return outcome
                p.config = result.config
                signalled = p.children.signal(signal.SIGHUP)
                # keepalived's propagate_signal: a child the new file needs is started.
                started = []
                if result.config.bfd_instances and await p.children.start_bfd():
                    started.append("bfd")
                self.reloads += 1
                log.info("Reload: %s accepted, children signalled: %s", path, signalled)
                outcome = {"accepted": True, "warnings": warnings, "signalled": signalled}
                if started:
                    outcome["started"] = started
                notify.ready("running; reloaded")
            self.last_reload = {"at": time.time(), **outcome}
            return outcome
