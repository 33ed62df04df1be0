"""The BFD session's variables (RFC 5880 §6.8.1, keepalived's bfd_t state) and their
read-only view. Only `fastha.bfd.session.Session`, a subclass, writes them."""

from __future__ import annotations

from collections.abc import Callable

from fastha.bfd.inputs import TimerKind
from fastha.bfd.params import SessionParams
from fastha.bfd.states import Diag, State


class SessionView:
    """Intervals and detection times in microseconds, as keepalived keeps them."""

    def __init__(self, params: SessionParams, new_discr: Callable[[], int]) -> None:
        self._p = params
        self._new_discr = new_discr
        self._timers: dict[TimerKind, int] = {}
        self._init_state()

    def _init_state(self) -> None:
        """keepalived's bfd_init_state: every variable initialised, a new discriminator."""
        self._state = State.DOWN
        self._remote_state = State.DOWN
        self._local_discr = self._new_discr()
        self._remote_discr = 0
        self._local_diag = Diag.NO_DIAG
        self._remote_diag = 0
        self._remote_min_tx = 0
        self._remote_min_rx = 0
        self._remote_demand = False
        self._remote_mult = 0
        self._poll = False
        self._final = False
        self._local_tx = self._p.idle_tx_us
        self._remote_tx = 0
        self._detect = 0
        self._remote_detect = 0
        self._last_seen_ns = 0

    # ---- read-only view ----
    @property
    def params(self) -> SessionParams:
        return self._p

    @property
    def state(self) -> State:
        return self._state

    @property
    def remote_state(self) -> State:
        return self._remote_state

    @property
    def local_discr(self) -> int:
        return self._local_discr

    @property
    def remote_discr(self) -> int:
        return self._remote_discr

    @property
    def local_diag(self) -> Diag:
        return self._local_diag

    @property
    def remote_diag(self) -> int:
        return self._remote_diag

    @property
    def poll(self) -> bool:
        return self._poll

    @property
    def final(self) -> bool:
        return self._final

    @property
    def local_tx_us(self) -> int:
        return self._local_tx

    @property
    def remote_tx_us(self) -> int:
        return self._remote_tx

    @property
    def detect_time_us(self) -> int:
        return self._detect

    @property
    def remote_detect_time_us(self) -> int:
        return self._remote_detect

    @property
    def remote_min_tx_us(self) -> int:
        return self._remote_min_tx

    @property
    def remote_min_rx_us(self) -> int:
        return self._remote_min_rx

    @property
    def remote_detect_mult(self) -> int:
        return self._remote_mult

    @property
    def last_seen_ns(self) -> int:
        return self._last_seen_ns

    def timers(self) -> dict[TimerKind, int]:
        """The armed timers: kind -> deadline_ns."""
        return dict(self._timers)

    def snapshot(self) -> dict[str, object]:
        """The state keepalived's dump_bfd writes, for status and dumps."""
        return {
            "name": self._p.name,
            "local_state": self._state.text,
            "remote_state": State(self._remote_state).text,
            "local_discr": self._local_discr,
            "remote_discr": self._remote_discr,
            "local_diag": int(self._local_diag),
            "remote_diag": self._remote_diag,
            "remote_min_tx_us": self._remote_min_tx,
            "remote_min_rx_us": self._remote_min_rx,
            "remote_demand": self._remote_demand,
            "remote_detect_mult": self._remote_mult,
            "poll": self._poll,
            "final": self._final,
            "local_tx_us": self._local_tx,
            "remote_tx_us": self._remote_tx,
            "detect_time_us": self._detect,
            "remote_detect_time_us": self._remote_detect,
            "last_seen_ns": self._last_seen_ns,
        }
