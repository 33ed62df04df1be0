"""The parent's answers: the control socket (`status`, `dump`, `reload`) and the opt-in
metrics endpoint, from the parent's own state and its children's answers (each asked
over its status socket, concurrently)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from fastha.daemon.children import ChildSlot
from fastha.runtime.control import ControlError, JsonServer, request

if TYPE_CHECKING:
    from fastha.daemon.supervisor import Supervisor


class ParentStatus:
    def __init__(self, parent: Supervisor) -> None:
        self.parent = parent
        self.control: JsonServer | None = None
        self.metrics: Any = None

    async def start(self) -> None:
        o = self.parent.options
        if o.control_socket:
            handlers = {"status": self.status, "dump": self.dump, "reload": self._reload_cmd}
            self.control = await JsonServer(o.control_socket, handlers).start()
        if o.metrics_listen:
            from fastha.daemon.metrics import MetricsServer

            host, _, port = o.metrics_listen.rpartition(":")
            self.metrics = await MetricsServer(
                host.strip("[]") or "127.0.0.1", int(port), self.metrics_status
            ).start()

    async def close(self) -> None:
        if self.control is not None:
            await self.control.close()
        if self.metrics is not None:
            await self.metrics.close()

    def parent_status(self) -> dict[str, Any]:
        p = self.parent
        r = p.reloader
        return {
            "pid": os.getpid(),
            "config_file": p.options.config_file,
            "started_at": p.started_at,
            "uptime_s": time.time() - p.started_at,
            "reloads": r.reloads,
            "refused_reloads": r.refused_reloads,
            "last_reload": r.last_reload,
            "children": {
                kind: {
                    "pid": slot.pid,
                    "running": slot.pid is not None,
                    "restarts": slot.restarts,
                    "last_exit_status": slot.last_status,
                }
                for kind, slot in p.children.slots.items()
            },
        }

    async def _ask(self, slot: ChildSlot, cmd: str) -> Any:
        if slot.pid is None:
            return {"error": "not running"}
        try:
            return await request(slot.socket_path, cmd, self.parent.options.child_query_timeout)
        except ControlError as exc:
            return {"error": str(exc)}

    async def gather(self, cmd: str) -> dict[str, Any]:
        """Each child's answer to `cmd`, asked concurrently, by child name."""
        slots = list(self.parent.children.slots.values())
        answers = await asyncio.gather(*(self._ask(s, cmd) for s in slots))
        return {s.kind: a for s, a in zip(slots, answers, strict=True)}

    async def status(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"parent": self.parent_status(), **(await self.gather("status"))}

    async def metrics_status(self) -> dict[str, Any]:
        """`status` with the children's metrics-only parts (fastha.daemon.metrics); a
        child that has no `metrics` command (a stub) is asked for its `status`."""
        answers = await self.gather("metrics")
        for kind, answer in answers.items():
            if isinstance(answer, dict) and "unknown command" in str(answer.get("error", "")):
                answers[kind] = await self._ask(self.parent.children.slots[kind], "status")
        return {"parent": self.parent_status(), **answers}

    async def dump(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        import orjson

        from fastha.config.dump import dumps

        return {"config": orjson.loads(dumps(self.parent.config)), **(await self.gather("dump"))}

    async def _reload_cmd(self, _request: dict[str, Any]) -> dict[str, Any]:
        return await self.parent.reloader.reload()
