"""The state of one VRRP instance, as everyone else sees it: read-only.

`MachineView` holds the fields (private slots) and reads them out; its subclass
`fsm.Machine` is their only writer, through events. Assigning a field from outside
raises AttributeError (a property without a setter), and `tests/unit/test_vrrp_fsm_owner.py`
holds every other module off the private names.
"""

from __future__ import annotations

from collections.abc import Callable

from fastha.vrrp.counters import Counters
from fastha.vrrp.defence import Defence
from fastha.vrrp.election import KnownMaster
from fastha.vrrp.events import TimerKind
from fastha.vrrp.faults import Faults
from fastha.vrrp.params import InstanceParams
from fastha.vrrp.states import State
from fastha.vrrp.timers import TimerBook
from fastha.vrrp.timing import master_down_interval_ns, skew_time_ns


class MachineView:
    __slots__ = (
        "_base_priority",
        "_counters",
        "_defence",
        "_effective_priority",
        "_faults",
        "_gate",
        "_lower_ignored",
        "_master",
        "_params",
        "_started",
        "_state",
        "_timers",
        "_vips_set",
        "_wantstate",
        "_warnings",
    )

    def __init__(self, params: InstanceParams) -> None:
        p, warnings = params.normalised()
        self._params = p
        self._warnings = warnings
        self._state = State.INIT
        # keepalived's wantstate: where we would be disregarding any sync group.
        self._wantstate = p.initial_state
        self._base_priority = p.priority
        self._effective_priority = p.priority
        self._master = KnownMaster(p.adver_int_cs)
        self._counters = Counters()
        self._vips_set = False
        self._timers = TimerBook()
        self._defence = Defence()
        self._started = False
        self._faults = Faults()
        # Set by a sync group (JoinSyncGroup): may this member become master now?
        self._gate: Callable[[MachineView], bool] | None = None
        self._lower_ignored = False

    @property
    def params(self) -> InstanceParams:
        """The parameters it runs with, after keepalived's fix-ups."""
        return self._params

    @property
    def warnings(self) -> tuple[str, ...]:
        """keepalived's warnings for the fix-ups of the last parameters taken."""
        return self._warnings

    @property
    def state(self) -> State:
        return self._state

    @property
    def wantstate(self) -> State:
        return self._wantstate

    @property
    def base_priority(self) -> int:
        return self._base_priority

    @property
    def effective_priority(self) -> int:
        return self._effective_priority

    @property
    def master_adver_int_cs(self) -> int:
        return self._master.adver_int_cs

    @property
    def master_address(self) -> str | None:
        return self._master.address

    @property
    def master_priority(self) -> int:
        return self._master.priority

    @property
    def counters(self) -> Counters:
        """The instance's statistics (the driver counts its drops there too)."""
        return self._counters

    @property
    def vips_set(self) -> bool:
        return self._vips_set

    @property
    def lower_advert_ignored(self) -> bool:
        """The last advert a BACKUP was fed had a lower priority and was discarded, the
        backup preempting (keepalived logs "received lower priority (N) advert from X
        - discarding"); read right after feeding it."""
        return self._lower_ignored

    @property
    def armed_timers(self) -> dict[TimerKind, tuple[int, int]]:
        return self._timers.snapshot()

    @property
    def own_up(self) -> bool:
        """Up by the instance's own interface and trackers (ignoring its sync group)."""
        return self._faults.own_up(self._params.dont_track_primary)

    @property
    def sync_fault(self) -> bool:
        """Held in FAULT by its sync group (another member is down)."""
        return self._faults.sync_fault

    @property
    def is_up(self) -> bool:
        return self.own_up and not self._faults.sync_fault

    @property
    def down_interval_ns(self) -> int:
        p = self._params
        return master_down_interval_ns(
            p.version, self._effective_priority, self._master.adver_int_cs, p.down_timer_adverts
        )

    def _gate_open(self) -> bool:
        return self._gate is None or self._gate(self)

    @property
    def skew_ns(self) -> int:
        return skew_time_ns(
            self._params.version, self._effective_priority, self._master.adver_int_cs
        )
