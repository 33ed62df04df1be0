"""One `bfd_instance` at work: its session machine (fastha.bfd.session), its sending
socket, its timers on the child's precise timer, and what its actions say to the logs
and to the consumers.

The machine decides everything; this carries its actions out, in order: a packet goes
out from inside the timer callback (no await), a timer is armed on the timerfd grid
(one handle per kind, moved rather than re-created), a state change is logged in
keepalived 2.2.7's words and its Up / Down relayed down the pipes.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

from fastha.bfd import actions as A
from fastha.bfd.events import BfdStateChange
from fastha.bfd.inputs import Event, Received, Reconfigure, Start, TimerExpired, TimerKind
from fastha.bfd.session import Session
from fastha.bfd.states import State, diag_text
from fastha.drivers.bfd_socket import BfdSender
from fastha.runtime.bfd.from_config import SessionSpec
from fastha.runtime.bfd.relay import EventRelay
from fastha.wire.bfd import BfdControl, BfdDropReason
from fastha.wire.timer import PreciseTimer, TimerHandle, monotonic_ns

log = logging.getLogger("fastha.bfd")

RETRY_OPEN_NS = 60_000_000_000  # keepalived's bfd_open_fd_out_thread: every 60 s


class SessionIO:
    def __init__(
        self,
        spec: SessionSpec,
        machine: Session,
        timer: PreciseTimer,
        relay: EventRelay,
        open_sender: Callable[[SessionSpec], BfdSender],
    ) -> None:
        self.spec = spec
        self.machine = machine
        self.timer = timer
        self.relay = relay
        self._open_sender = open_sender
        self.sender: BfdSender | None = None
        self.handles: dict[TimerKind, TimerHandle] = {}
        self.send_error = False
        self.received = 0
        self.drops: Counter[str] = Counter()
        self.last_event: BfdStateChange | None = None
        self._retry: TimerHandle | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    # ---- events in

    def start(self) -> None:
        """Open the socket and start; keepalived's bfd_open_fds: a socket that cannot be
        opened (a `source_ip` not on the host yet) leaves the session disabled, tried
        again every 60 s, and the consumers told it is Down."""
        now = monotonic_ns()
        try:
            self.sender = self._open_sender(self.spec)
        except OSError as exc:
            log.error("(%s) bind() error (%s)", self.name, exc.strerror or exc)
            log.error("(%s) Unable to open output socket, disabling instance", self.name)
            self.relay.send(self.spec, BfdStateChange(self.name, False, now, 0))
            self._retry = self.timer.call_at(now + RETRY_OPEN_NS, self._retry_open)
            return
        self.handle(Start(now))

    def _retry_open(self, _deadline_ns: int, now_ns: int) -> None:
        try:
            self.sender = self._open_sender(self.spec)
        except OSError:
            assert self._retry is not None
            self._retry.reschedule(now_ns + RETRY_OPEN_NS)
            return
        self._retry = None
        self.handle(Start(now_ns))

    def receive(self, packet: BfdControl, ttl: int, now_ns: int) -> None:
        self.received += 1
        self.handle(Received(packet, ttl, now_ns))

    def reconfigure(self, spec: SessionSpec) -> None:
        """A reload kept this session: new parameters (a Poll if min_rx/min_tx changed),
        a new socket if its TTL changed, the consumers told the state again."""
        old, self.spec = self.spec, spec
        if old.params.ttl != spec.params.ttl and self.sender is not None:
            try:
                new = self._open_sender(spec)
            except OSError as exc:
                log.error("(%s) socket() error (%s)", self.name, exc.strerror or exc)
            else:
                self.sender.close()
                self.sender = new
        self.handle(Reconfigure(spec.params, monotonic_ns()))

    def stop(self) -> None:
        """Go silent, as keepalived 2.2.7 and FRR 8.4 stop: no AdminDown packet. A peer
        told AdminDown goes Down without telling its track_bfd / BFD_CHECK (RFC 5882
        §3.2, and keepalived does so), so a stopped director would look alive to them;
        silence lets the peer's detection time say it is gone, as with keepalived here."""
        self.close()

    def close(self) -> None:
        for handle in self.handles.values():
            handle.cancel()
        self.handles.clear()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self.sender is not None:
            self.sender.close()
            self.sender = None

    def _on_timer(self, deadline_ns: int, now_ns: int, kind: TimerKind) -> None:
        self.handle(TimerExpired(kind, deadline_ns, now_ns))

    # ---- actions out

    def handle(self, ev: Event) -> None:
        for action in self.machine.handle(ev):
            # The per-packet pair first: a packet out, the next timer.
            if isinstance(action, A.SendControl):
                self._send(action.payload)
            elif isinstance(action, A.ArmTimer):
                handle = self.handles.get(action.kind)
                if handle is None:
                    self.handles[action.kind] = self.timer.call_at(
                        action.deadline_ns, self._on_timer, action.kind
                    )
                else:
                    handle.reschedule(action.deadline_ns)
            else:
                self._do(action)

    def _do(self, action: Any) -> None:
        """Every action but the per-packet pair `handle` takes itself."""
        name = self.spec.params.name
        if isinstance(action, A.CancelTimer):
            handle = self.handles.get(action.kind)
            if handle is not None:
                handle.cancel()
        elif isinstance(action, BfdStateChange):
            self.last_event = action
            self.relay.send(self.spec, action)
        elif isinstance(action, A.StateChanged):
            self._log_state(action)
        elif isinstance(action, A.Expired):
            level = logging.WARNING if action.was_up else logging.DEBUG
            log.log(
                level,
                "(%s) Expired after %d ms (%d usec overdue)",
                name,
                action.after_ns // 1_000_000,
                action.overdue_ns // 1_000,
            )
        elif isinstance(action, A.DetectTimeChanged):
            log.info(
                "%*s Detection time is %d us (was %d us)",
                len(name) + 2,
                "",
                action.detect_us,
                action.was_us,
            )
        elif isinstance(action, A.PollStarted):
            log.debug("(%s) Starting poll sequence", name)
        elif isinstance(action, A.Dropped):
            self.drops[action.reason.name] += 1

    def _send(self, payload: bytes) -> None:
        if self.sender is None:
            return
        if self.sender.send(payload):
            self.send_error = False
        elif not self.send_error:
            # keepalived's bfd_sender_thread: once, until a send succeeds again.
            log.error("(%s) Error sending packet", self.name)
            self.send_error = True

    def _log_state(self, ch: A.StateChanged) -> None:
        """keepalived's bfd_state_down / _admindown / _rise wording and levels: Up and
        the fall from Up are logged, Init and Down from Init at extra detail only."""
        name = self.name
        if ch.new == State.ADMIN_DOWN:
            log.warning("(%s) Entering %s state", name, ch.new.text)
        elif ch.new == State.DOWN:
            log.log(
                logging.WARNING if ch.old == State.UP else logging.DEBUG,
                "(%s) Entering %s state (Local diagnostic - %s, Remote diagnostic - %s)",
                name,
                ch.new.text,
                diag_text(ch.local_diag),
                diag_text(ch.remote_diag),
            )
        else:
            log.log(
                logging.INFO if ch.new == State.UP else logging.DEBUG,
                "(%s) Entering %s state",
                name,
                ch.new.text,
            )

    # ---- what status and replay read

    def state_event(self, now_ns: int) -> BfdStateChange:
        """The session's state as a consumer record (a respawned consumer's replay)."""
        m = self.machine
        return BfdStateChange(self.name, m.state == State.UP, now_ns, int(m.local_diag))

    def status(self) -> dict[str, Any]:
        m, spec = self.machine, self.spec
        return {
            "name": self.name,
            "neighbor": spec.neighbor,
            "source": spec.source,
            "source_port": self.sender.source_port if self.sender is not None else None,
            "multihop": spec.multihop,
            "state": m.state.text,
            "remote_state": m.remote_state.text,
            "local_diag": diag_text(m.local_diag),
            "remote_diag": diag_text(m.remote_diag),
            "local_discr": m.local_discr,
            "remote_discr": m.remote_discr,
            "tx_interval_us": m.local_tx_us,
            "detect_time_us": m.detect_time_us,
            "min_rx_us": spec.params.min_rx_us,
            "min_tx_us": spec.params.min_tx_us,
            "idle_tx_us": spec.params.idle_tx_us,
            "multiplier": spec.params.multiplier,
            "passive": spec.params.passive,
            "ttl": spec.params.ttl,
            "max_hops": spec.params.max_hops,
            "events_to": [
                k for k, v in (("vrrp", spec.to_vrrp), ("checker", spec.to_checker)) if v
            ],
            "sent": self.sender.sent if self.sender is not None else 0,
            "send_errors": self.sender.errors if self.sender is not None else 0,
            "received": self.received,
            "dropped": {r.name: self.drops[r.name] for r in BfdDropReason},
        }
