"""The BFD session state machine (RFC 5880 §6.8), sans-I/O, as keepalived 2.2.7 runs it.

Events in (`fastha.bfd.inputs`), actions out (`fastha.bfd.actions`); the machine is the
only writer of its state. It follows keepalived's bfd/bfd_scheduler.c
(`bfd_handle_packet`, `bfd_state_*`, the sender / expire / reset threads) and bfd.c:

- Asynchronous mode only; we never set Demand, and, as keepalived, stop periodic
  packets while both sides are Up and the peer sets D.
- Transmit interval (§6.8.2-3): max(our Desired Min TX, the peer's Required Min RX),
  with `idle_tx` in place of `min_tx` while not Up (and advertised as Desired Min TX
  while not Up). It is recalculated on every packet while not Up and, once Up, only on
  a packet with P or F, so a change takes effect through a Poll sequence.
- Each periodic packet is jittered (§6.8.7) down by tx/10..tx/4, keepalived's range,
  drawn from the `rand(lo, hi)` source the owner passes in (inclusive bounds).
- Detection Time (§6.8.4): the peer's Detect Mult x max(our Required Min RX, the peer's
  Desired Min TX). Armed when entering Init or Up, pushed back by each packet while Up.
- Entering Up with idle_tx != min_tx starts a Poll sequence; a changed min_rx/min_tx on
  reload does too. A packet with P is answered at once with F.
- `passive`: no packets until the peer's first one; back to silence on Down.
- On Down from Up, a new local discriminator (keepalived); a Detection Time after Down
  the peer's variables are forgotten (the reset thread).
- The consumers hear Up on entering Up and Down on leaving Up, except when the peer
  said AdminDown (RFC 5880 §6.8.16: not a path failure); and the current state on
  Start and on Reconfigure (keepalived's bfd_register_workers).
- `Stop`: AdminDown (diag 7), one AdminDown packet, all timers cancelled; packets are
  then dropped (ADMIN_DOWN) until `Start`.
"""

from __future__ import annotations

from collections.abc import Callable

from fastha.bfd import actions as A
from fastha.bfd.events import BfdStateChange
from fastha.bfd.inputs import (
    ControlPacket,
    Event,
    Received,
    Reconfigure,
    Start,
    Stop,
    TimerExpired,
    TimerKind,
)
from fastha.bfd.params import MAX_HOPS_NO_CHECK, SessionParams
from fastha.bfd.session_view import SessionView
from fastha.bfd.states import Diag, State
from fastha.wire.bfd import BfdDropReason, encode_bfd


def ttl_ok(ttl: int, params: SessionParams) -> bool:
    """keepalived's GTSM check (bfd_check_packet_ttl), extended by max_hops; a TTL of 0
    (none reported) passes, and max_hops 255 disables it."""
    return params.max_hops == MAX_HOPS_NO_CHECK or not ttl or params.max_hops + ttl >= params.ttl


class Session(SessionView):
    """One `bfd_instance`'s session. Read its state through SessionView's properties."""

    def __init__(
        self,
        params: SessionParams,
        *,
        rand: Callable[[int, int], int],
        new_discr: Callable[[], int],
    ) -> None:
        super().__init__(params, new_discr)
        self._rand = rand
        self._out: list[A.Action] = []
        self._now = 0

    # ---- events ----
    def handle(self, ev: Event) -> list[A.Action]:
        out: list[A.Action] = []
        self._out = out
        self._now = ev.now_ns
        if isinstance(ev, TimerExpired):
            if self._timers.get(ev.kind) == ev.deadline_ns:
                del self._timers[ev.kind]
                self._fire(ev.kind)
        elif isinstance(ev, Received):
            self._receive(ev.packet, ev.ttl)
        elif isinstance(ev, Start):
            self._start()
        elif isinstance(ev, Reconfigure):
            self._reconfigure(ev.params)
        elif isinstance(ev, Stop):
            self._stop()
        return out

    def _fire(self, kind: TimerKind) -> None:
        if kind is TimerKind.TX:
            self._send()
            self._tx_schedule()
        elif kind is TimerKind.DETECT:
            after = self._now - self._last_seen_ns
            self._out.append(A.Expired(after, after - self._detect * 1000, self._state == State.UP))
            self._remote_discr = 0
            self._down(Diag.EXPIRED)
        else:  # RESET: keepalived's bfd_reset_state
            self._remote_state = State.DOWN
            self._remote_discr = 0
            self._remote_diag = 0
            self._remote_demand = False
            self._poll = self._final = False
            self._idle_tx()

    def _start(self) -> None:
        if self._state == State.ADMIN_DOWN:
            self._state = State.DOWN
        if not self._p.passive:
            self._tx_schedule()
        self._notify(self._state == State.UP)
        if not self._p.passive:
            self._send()

    def _reconfigure(self, params: SessionParams) -> None:
        old, self._p = self._p, params
        if old.timers_differ(params):
            self._set_poll()
        if self._state != State.ADMIN_DOWN:
            if params.passive and self._state != State.UP:
                self._cancel(TimerKind.TX)
            elif not params.passive and TimerKind.TX not in self._timers:
                self._tx_schedule()
        self._notify(self._state == State.UP)

    def _stop(self) -> None:
        old = self._state
        self._state = State.ADMIN_DOWN
        self._local_diag = Diag.ADMIN_DOWN
        for kind in list(self._timers):
            self._cancel(kind)
        self._idle_tx()
        if old != State.ADMIN_DOWN:
            self._out.append(
                A.StateChanged(old, State.ADMIN_DOWN, self._local_diag, self._remote_diag)
            )
            self._send()

    def _receive(self, pkt: ControlPacket, ttl: int) -> None:
        """keepalived's bfd_handle_packet after its session lookup."""
        if not ttl_ok(ttl, self._p):
            self._out.append(A.Dropped(BfdDropReason.TTL))
            return
        if self._state == State.ADMIN_DOWN:
            self._out.append(A.Dropped(BfdDropReason.ADMIN_DOWN))
            return
        old_tx, old_detect = self._local_tx, self._detect
        self._remote_discr = pkt.my_discr
        self._remote_state = State(pkt.state)
        self._remote_diag = pkt.diag
        self._remote_min_rx = pkt.required_min_rx_us
        self._remote_min_tx = pkt.desired_min_tx_us
        self._remote_demand = pkt.demand
        self._remote_mult = pkt.detect_mult
        if pkt.final:
            self._poll = False
        if self._state != State.UP or pkt.poll or pkt.final:
            if self._remote_state == State.UP and self._state in (State.INIT, State.UP):
                self._local_tx = max(self._p.min_tx_us, self._remote_min_rx)
            else:
                self._idle_tx()
            self._remote_tx = max(self._p.min_rx_us, self._remote_min_tx)
        self._detect = self._remote_mult * self._remote_tx
        self._remote_detect = self._p.multiplier * self._local_tx
        if self._local_tx < old_tx and TimerKind.TX in self._timers:
            self._tx_schedule()
        if self._detect != old_detect:
            self._out.append(A.DetectTimeChanged(self._detect, old_detect))
        self._transition()
        both_up = self._state == State.UP and self._remote_state == State.UP
        if self._remote_demand and both_up:
            self._cancel(TimerKind.TX)
        elif TimerKind.TX not in self._timers:
            self._tx_schedule()
        if pkt.poll:
            self._final = True
            self._send()
        self._last_seen_ns = self._now
        if self._state == State.UP and TimerKind.DETECT in self._timers:
            self._arm(TimerKind.DETECT, self._now + self._detect * 1000)

    def _transition(self) -> None:
        local, remote = self._state, self._remote_state
        if remote == State.ADMIN_DOWN:
            if local != State.DOWN:
                self._down(Diag.NBR_SIGNALLED_DOWN)
        elif local == State.DOWN:
            if remote == State.DOWN:
                self._init()
            elif remote == State.INIT:
                self._up()
        elif local == State.INIT:
            if remote in (State.INIT, State.UP):
                self._up()
        elif local == State.UP and remote == State.DOWN:
            self._down(Diag.NBR_SIGNALLED_DOWN)

    # ---- state changes (keepalived's bfd_state_down / _fall / _rise / _up / _init) ----
    def _down(self, diag: Diag) -> None:
        old = self._state
        if old == State.UP:
            self._local_discr = self._new_discr()
        self._out.append(A.StateChanged(old, State.DOWN, diag, self._remote_diag))
        self._state = State.DOWN
        self._local_diag = diag
        self._arm(TimerKind.RESET, self._now + self._detect * 1000)
        if self._p.passive:
            self._cancel(TimerKind.TX)
        self._idle_tx()
        self._cancel(TimerKind.DETECT)
        if old == State.UP and self._remote_state != State.ADMIN_DOWN:
            self._notify(False)

    def _rise(self, new: State) -> None:
        old, self._state = self._state, new
        self._local_diag = Diag.NO_DIAG
        self._out.append(A.StateChanged(old, new, self._local_diag, self._remote_diag))
        self._cancel(TimerKind.RESET)
        if TimerKind.DETECT not in self._timers:
            self._arm(TimerKind.DETECT, self._now + self._detect * 1000)

    def _up(self) -> None:
        self._rise(State.UP)
        if self._p.idle_tx_us != self._p.min_tx_us:
            self._set_poll()
        self._notify(True)

    def _init(self) -> None:
        self._rise(State.INIT)
        if self._p.passive and TimerKind.TX not in self._timers:
            self._tx_schedule()

    # ---- helpers ----
    def _idle_tx(self) -> None:
        self._local_tx = max(self._p.idle_tx_us, self._remote_min_rx)

    def _set_poll(self) -> None:
        self._out.append(A.PollStarted())
        if not self._final:
            self._poll = True

    def _notify(self, up: bool) -> None:
        diag = 0 if up else int(self._local_diag)
        self._out.append(BfdStateChange(self._p.name, up, self._now, diag))

    def _send(self) -> None:
        """keepalived's bfd_build_packet + the sender's reset of F."""
        if self._poll and self._final:
            self._poll = False
        p = self._p
        self._out.append(
            A.SendControl(
                encode_bfd(
                    self._state,
                    self._local_diag,
                    p.multiplier,
                    self._local_discr,
                    self._remote_discr,
                    p.min_tx_us if self._state == State.UP else p.idle_tx_us,
                    p.min_rx_us,
                    self._poll,
                    self._final,
                )
            )
        )
        self._final = False

    def _tx_schedule(self) -> None:
        tx = self._local_tx
        jitter = self._rand(tx // 10, tx // 4)
        self._arm(TimerKind.TX, self._now + (tx - jitter) * 1000)

    def _arm(self, kind: TimerKind, deadline_ns: int) -> None:
        self._timers[kind] = deadline_ns
        self._out.append(A.ArmTimer(kind, deadline_ns))

    def _cancel(self, kind: TimerKind) -> None:
        if self._timers.pop(kind, None) is not None:
            self._out.append(A.CancelTimer(kind))
