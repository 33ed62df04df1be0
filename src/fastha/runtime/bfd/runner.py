"""The BFD child: every `bfd_instance` as a session on one uvloop loop.

As keepalived 2.2.7's BFD process (bfd_daemon.c, bfd_scheduler.c): one listening socket
for all sessions (drivers/bfd_socket; a second on 4784 only for `multihop` sessions),
one sending socket per session, the sessions' timers on the child's precise timer
(timerfd, as the VRRP child's adverts), their Up / Down relayed to the VRRP and checker
children down the parent's pipes. Signals: SIGHUP reloads (the parent's snapshot:
sessions kept by name keep their state, changed intervals start a Poll, new ones start,
removed ones go silent), SIGTERM / SIGINT stop (silent, as keepalived and FRR stop: each
peer's detection time takes it Down, see session.stop), SIGUSR1 logs keepalived's line and writes the sessions to the data file. The
child socket answers `status`, `dump` and `replay` (every session's state down the
pipes again: the parent asks after it respawned a consumer). The `bfd_*` process knobs
(priority, rt priority, rlimit_rttime, no_swap, cpu affinity) apply once started.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastha.config.model import Config
from fastha.drivers import sched
from fastha.drivers.bfd_socket import BFD_MULTIHOP_PORT, BFD_PORT, BfdListener
from fastha.drivers.rxbudget import RxBudget
from fastha.runtime import child_status
from fastha.runtime.bfd.from_config import BfdSpec, bfd_spec
from fastha.runtime.bfd.relay import EventRelay
from fastha.runtime.bfd.sessions import Sessions
from fastha.wire.bfd import BfdDropReason
from fastha.wire.timer import PreciseTimer, monotonic_ns, set_timer_slack_ns

log = logging.getLogger("fastha.bfd")

DATA_FILE = "keepalived_bfd.data"  # keepalived's SIGUSR1 file, in $TMPDIR or /tmp


@dataclass(slots=True)
class BfdOptions:
    # SIGHUP: the new configuration, or None (errors logged; the running one stays).
    reload_config: Callable[[], Config | None] | None = None


class BfdRunner:
    def __init__(self, config: Config, options: BfdOptions) -> None:
        self.spec: BfdSpec = bfd_spec(config)
        self.options = options
        self.stopping = asyncio.Event()
        self.started_at = time.time()
        self.reloads = 0
        self.listeners: dict[int, BfdListener] = {}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        set_timer_slack_ns(1)  # timerfd expiry may otherwise be deferred by 50 µs
        self.timer = timer = PreciseTimer(loop)
        timer.start()
        self.relay = EventRelay.from_env()
        self.budget = RxBudget(loop)
        self.sessions = Sessions(timer, self.relay)
        try:
            self._open_listeners()
        except OSError as exc:
            log.error("bind() error %s (%s)", exc.errno, exc.strerror or exc)
            log.error("Unable to open listening socket")
            timer.close()
            return 1  # keepalived exits EXIT_FAILURE: the parent respawns
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stopping.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        loop.add_signal_handler(signal.SIGUSR1, self.write_data)
        server = None
        try:
            server = await child_status.serve_from_env(
                {"status": self.status, "dump": self.dump, "replay": self.replay}
            )
            for spec in self.spec.sessions:
                self.sessions.add(spec).start()
            # Start-up garbage out of future collections, then real-time (a long GC pass
            # under SCHED_RR would trip RLIMIT_RTTIME), as the VRRP child.
            gc.collect()
            gc.freeze()
            s = self.spec.sched
            sched.apply(s, "BFD child")
            if s.rt_priority is not None:
                self.budget.set_rttime(s.rlimit_rttime_us)
            await self.stopping.wait()
            self.budget.disable()
            sched.leave_realtime()
            log.info("Stopping")
            for sio in self.sessions:
                sio.stop()
        finally:
            await child_status.close(server)
            for sio in self.sessions:
                sio.close()
            for listener in self.listeners.values():
                listener.close()
            self.budget.close()
            timer.close()
        return 0

    # ---- sockets

    def _open_listeners(self) -> None:
        """3784 always (keepalived keeps it open even without sessions, and across
        reloads); 4784 while a multihop session exists."""
        loop = asyncio.get_running_loop()
        wanted = {BFD_PORT} | (
            {BFD_MULTIHOP_PORT} if any(s.multihop for s in self.spec.sessions) else set()
        )
        for port in wanted - set(self.listeners):
            multihop = port == BFD_MULTIHOP_PORT

            def on_packet(
                payload: memoryview,
                src: str,
                sport: int,
                dst: str,
                ttl: int,
                multihop: bool = multihop,
            ) -> None:
                self.sessions.on_packet(payload, src, sport, dst, ttl, monotonic_ns(), multihop)

            listener = BfdListener(on_packet, port)
            listener.attach(loop, self.budget)
            self.listeners[port] = listener
        for port in set(self.listeners) - wanted:
            self.listeners.pop(port).close()

    # ---- reload

    def reload(self) -> None:
        """SIGHUP: keepalived's reload_bfd_thread + bfd_complete_init."""
        if self.stopping.is_set() or self.options.reload_config is None:
            return
        started = time.monotonic_ns()
        log.info("Reloading")
        config = self.options.reload_config()
        if config is None:
            log.error("Reload failed: configuration has errors; keeping the running one")
            return
        sched.leave_realtime()  # keepalived: standard scheduling while reloading
        new = bfd_spec(config)
        old = {s.name: s for s in self.spec.sessions}
        self.spec = new
        try:
            self._open_listeners()
        except OSError as exc:
            log.error("Unable to open listening socket (%s)", exc.strerror or exc)
        wanted = {s.name for s in new.sessions}
        for name in [n for n in self.sessions.by_name if n not in wanted]:
            sio = self.sessions.remove(name)
            if sio is not None:
                sio.stop()
        for spec in new.sessions:
            sio = self.sessions.by_name.get(spec.name)
            # (a session still waiting for its socket starts afresh)
            if sio is not None and sio.sender is not None and spec.same_peer(old[spec.name]):
                sio.reconfigure(spec)
                continue
            if sio is not None:  # another neighbour or source: another session
                self.sessions.remove(spec.name)
                sio.stop()
            self.sessions.add(spec).start()
        s = new.sched
        sched.apply(s, "BFD child")
        if s.rt_priority is not None:
            self.budget.set_rttime(s.rlimit_rttime_us)
        self.reloads += 1
        log.info("Reload finished in %d usec", (time.monotonic_ns() - started) // 1000)

    # ---- answers

    def replay(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        """Every session's state down the pipes again (a consumer was respawned)."""
        now = monotonic_ns()
        for sio in self.sessions:
            self.relay.send(sio.spec, sio.state_event(now))
        return {"replayed": len(self.sessions)}

    def status(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "role": "bfd",
            "pid": os.getpid(),
            "started_at": self.started_at,
            "reloads": self.reloads,
            "sessions": [sio.status() for sio in self.sessions],
            "timer": child_status.timer_status(self.timer),
            # every reason, zeros included: what the metrics export
            "dropped": {r.name: self.sessions.dropped[r.name] for r in BfdDropReason},
            "events": {"sent": self.relay.sent, "failed": self.relay.failed},
            "listeners": {
                str(port): {
                    "received": lst.stats.received,
                    "truncated": lst.stats.truncated,
                    "recv_errors": lst.stats.recv_errors,
                }
                for port, lst in self.listeners.items()
            },
        }

    def dump(self, _request: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.status()

    def write_data(self) -> None:
        """SIGUSR1, keepalived's sigdump_bfd: its log line, then the sessions."""
        from fastha.runtime.dumpfiles import write_text

        log.info("Printing BFD data for process(%d) on signal", os.getpid())
        tmp = os.environ.get("TMPDIR") or ""
        path = os.path.join(tmp if tmp.startswith("/") else "/tmp", DATA_FILE)
        lines = ["------< BFD Topology >------"]
        for st in (sio.status() for sio in self.sessions):
            lines.append(f" BFD Instance = {st['name']}")
            lines += [f"   {k} = {v}" for k, v in st.items() if k != "name"]
        write_text(path, "\n".join(lines) + "\n")


def run_bfd(
    config: Config,
    options: BfdOptions,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    """Run the BFD side in this process until SIGTERM/SIGINT."""
    import uvloop

    runner = BfdRunner(config, options)
    with asyncio.Runner(loop_factory=loop_factory or uvloop.new_event_loop) as r:
        return r.run(runner.run())
