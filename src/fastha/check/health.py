"""Checker and virtual-server health: pure state machines (no sockets, clocks or asyncio).

The scheduler runs a probe and feeds its outcome here; this module decides whether the
checker changed state, whether the real servers using it changed, whether each virtual
server gained or lost quorum, and what the IPVS table should now hold. Semantics follow
keepalived 2.x (check_api.c update_svr_checker_state, ipwrapper.c perform_svr_state /
update_quorum_state / update_svr_wgt):

- A checker starts up, or down with `alpha`. While it is up (or has never run) a failure
  is retried `retry` times, `delay_before_retry` apart, before it goes down; a checker
  already down is not retried (next probe after `delay_loop`). One success brings it up
  and resets the retry count.
- A real server is alive when none of its checkers is down. Its IPVS weight is its
  configured weight, replaced by MISC_CHECK `misc_dynamic` (exit 2..255 -> code - 2),
  plus FILE_CHECK offsets; a dead server leaves the table, or stays at weight 0 with
  `inhibit_on_failure`.
- Quorum: the sum of the alive servers' weights. Lost when the sum is 0 or below
  quorum - hysteresis, gained when it reaches quorum + hysteresis. Without quorum the
  sorry server (if any) is the only server carrying traffic: the real servers leave
  (or go to weight 0 when inhibited); `sorry_server_inhibit` keeps the sorry server at
  weight 0 while quorum holds.
- One probe per distinct `Check` (spec.py): a checker's state is shared by every
  (virtual server, real server) using it, and its outcome fans out to all of them.

    h = Health(plan)
    actions = h.start()                        # initial quorum decisions, notifies
    step, actions = h.feed(cid, Outcome(ok=False))
    h.desired(vs_index)                        # {RsKey: weight} for the IPVS planner
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from fastha.check.spec import Check, Plan, RsKey, RsPlan, VsPlan
from fastha.config.model_lvs import NotifyScript

# ip_vs.h IPVS_WEIGHT_MAX (INT32_MAX): keepalived clamps there, and so does the kernel.
IPVS_WEIGHT_MAX = 2**31 - 1


class CheckState(IntEnum):
    PENDING_UP = 0  # not run yet, presumed up
    PENDING_DOWN = 1  # not run yet, presumed down (alpha)
    UP = 2
    DOWN = 3


TRANSITIONS: dict[CheckState, frozenset[CheckState]] = {
    CheckState.PENDING_UP: frozenset({CheckState.UP, CheckState.DOWN}),
    CheckState.PENDING_DOWN: frozenset({CheckState.UP, CheckState.DOWN}),
    CheckState.UP: frozenset({CheckState.DOWN}),
    CheckState.DOWN: frozenset({CheckState.UP}),
}

_UPISH = frozenset({CheckState.PENDING_UP, CheckState.UP})


class IllegalTransition(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    """One probe's result. `weight`: MISC_CHECK misc_dynamic's new weight (code - 2);
    `offset`: FILE_CHECK's contribution to the weight; `reason` for logs."""

    ok: bool
    reason: str = ""
    weight: int | None = None
    offset: int | None = None
    dynamic: bool = False  # misc_dynamic: `weight` None means the configured weight


@dataclass(frozen=True, slots=True)
class Step:
    """What the scheduler does next: `retrying` -> probe again after delay_before_retry,
    else after delay_loop. `edge`: the checker went up or down (is_up changed)."""

    retrying: bool
    edge: bool
    up: bool
    retry_it: int


@dataclass(slots=True)
class CheckerHealth:
    """A checker's up/down state machine with keepalived's retry counting."""

    retry: int = 1
    alpha: bool = False
    state: CheckState = field(init=False)
    retry_it: int = 0
    weight: int | None = None  # last misc_dynamic weight
    offset: int = 0  # FILE_CHECK offset
    failures: int = 0  # counters for status
    successes: int = 0

    def __post_init__(self) -> None:
        self.state = CheckState.PENDING_DOWN if self.alpha else CheckState.PENDING_UP

    @property
    def up(self) -> bool:
        return self.state in _UPISH

    @property
    def has_run(self) -> bool:
        return self.state in (CheckState.UP, CheckState.DOWN)

    def _go(self, new: CheckState) -> bool:
        """Move to `new`; True if is_up changed."""
        if new is self.state:
            return False
        if new not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.state.name} -> {new.name}")
        was = self.up
        self.state = new
        return was != self.up

    def feed(self, ok: bool) -> Step:
        if ok:
            self.successes += 1
            self.retry_it = 0
            edge = self._go(CheckState.UP)
            return Step(retrying=False, edge=edge, up=True, retry_it=0)
        self.failures += 1
        # keepalived retries only while the checker is up or has never run.
        if self.state is not CheckState.DOWN and self.retry_it < self.retry:
            self.retry_it += 1
            return Step(retrying=True, edge=False, up=self.up, retry_it=self.retry_it)
        tries = self.retry_it
        self.retry_it = 0
        edge = self._go(CheckState.DOWN)
        return Step(retrying=False, edge=edge, up=False, retry_it=tries)


# ---------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Log:
    """One line in keepalived's wording (operators grep for these)."""

    text: str


@dataclass(frozen=True, slots=True)
class Notify:
    """A real server or a virtual server's quorum went up or down: its notify_up /
    notify_down / quorum_up / quorum_down script runs (``script`` None: none is
    configured) and, as keepalived's do_rs_notifies / do_vs_notifies write them, the
    lvs FIFO gets a line."""

    script: NotifyScript | None
    event: str  # "notify_up", "notify_down", "quorum_up", "quorum_down"
    vs: int
    rs: RsKey | None = None

    @property
    def up(self) -> bool:
        return self.event in ("notify_up", "quorum_up")


@dataclass(frozen=True, slots=True)
class Changed:
    """The virtual server's desired IPVS destinations changed: reconcile it."""

    vs: int


Action = Log | Notify | Changed


# ---------------------------------------------------------------- servers


@dataclass(slots=True)
class RsHealth:
    plan: RsPlan
    failed: int = 0  # checkers currently down
    alive: bool = False
    weight: int = 0  # effective weight (configured or dynamic, plus file offsets)

    @property
    def key(self) -> RsKey:
        return self.plan.key


@dataclass(slots=True)
class VsHealth:
    plan: VsPlan
    servers: list[RsHealth]
    quorum_up: bool = True
    sorry_active: bool = False  # the sorry server carries the traffic

    def weight_sum(self) -> int:
        return sum(r.weight for r in self.servers if r.alive)


def _fmt_rs(vs: VsPlan, key: RsKey) -> str:
    return f"[{key.address}]:{vs.protocol}:{key.port}"


fmt_rs = _fmt_rs  # keepalived's FMT_RS, for the runtime's own log lines


class Health:
    """Every checker and virtual server of a Plan; `feed` applies one probe outcome."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.checkers = [CheckerHealth(retry=c.retry, alpha=c.alpha) for c in plan.checks]
        self.vss = [
            VsHealth(v, [RsHealth(r) for r in v.real_servers]) for v in plan.virtual_servers
        ]
        # Fan-out: check id -> every (virtual server, real server) using it.
        self.users: list[list[tuple[int, int]]] = [[] for _ in plan.checks]
        for vi, v in enumerate(self.vss):
            for ri, r in enumerate(v.servers):
                for cid in r.plan.checks:
                    self.users[cid].append((vi, ri))
                r.failed = sum(not self.checkers[c].up for c in r.plan.checks)
                r.alive = r.failed == 0
                r.weight = self._weight(r)

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.plan.checks

    # ------------------------------------------------------------ queries

    def desired(self, vi: int) -> dict[RsKey, int]:
        """The destinations the IPVS table should hold for virtual server `vi`, with
        their weights (0: present but inhibited). Absent keys must not be there."""
        v = self.vss[vi]
        out: dict[RsKey, int] = {}
        for r in v.servers:
            if r.alive and not v.sorry_active:
                out[r.key] = r.weight
            elif r.plan.inhibit_on_failure:
                out[r.key] = 0
        ss = v.plan.sorry_server
        if ss is not None:
            if v.sorry_active:
                out[ss] = 1
            elif v.plan.sorry_server_inhibit:
                out.setdefault(ss, 0)
        return out

    def alive(self, vi: int, key: RsKey) -> bool:
        return next(r.alive for r in self.vss[vi].servers if r.key == key)

    # ------------------------------------------------------------ transitions

    def _weight(self, r: RsHealth) -> int:
        base = r.plan.weight
        offsets = 0
        for cid in r.plan.checks:
            c = self.checkers[cid]
            if c.weight is not None:
                base = c.weight
            offsets += c.offset
        return max(0, min(IPVS_WEIGHT_MAX, base + offsets))

    def start(self) -> list[Action]:
        """Initial quorum evaluation (keepalived init_service_vs -> update_quorum_state)."""
        out: list[Action] = []
        for vi in range(len(self.vss)):
            self.init_quorum(vi, out)
            out.append(Changed(vi))
        return out

    def init_quorum(self, vi: int, out: list[Action]) -> None:
        """A virtual server's first quorum evaluation. keepalived starts every virtual
        server without quorum (set_quorum_states runs before any real server is alive),
        so at start it *gains* quorum: "Gained quorum", quorum_up and the FIFO's
        "VS ... UP"; short of quorum + hysteresis it stays down, and only a sorry server
        makes that an event ("Starting with quorum down")."""
        self.vss[vi].quorum_up = False
        self._quorum(vi, out, init=True)

    def activation_lines(self, suspended: set[int] | frozenset[int] = frozenset()) -> list[str]:
        """keepalived register_checkers_thread: one line per checker at start."""
        out = []
        for cid, users in enumerate(self.users):
            word = "Deactivating" if cid in suspended else "Activating"
            for vi, ri in users:
                v = self.vss[vi]
                key = v.servers[ri].key
                out.append(
                    f"{word} healthchecker for service {_fmt_rs(v.plan, key)} for VS {v.plan.name}"
                )
        return out

    def shutdown_lines(self) -> list[str]:
        """keepalived clear_service_rs(stopping): one line per real server at stop."""
        out = []
        for v in self.vss:
            for r in v.servers:
                inhibited = "(inhibited) " if r.plan.inhibit_on_failure and not r.alive else ""
                out.append(
                    f"Shutting down {inhibited}service {_fmt_rs(v.plan, r.key)} "
                    f"from VS {v.plan.name}"
                )
        return out

    def feed(self, cid: int, outcome: Outcome) -> tuple[Step, list[Action]]:
        c = self.checkers[cid]
        first = not c.has_run
        step = c.feed(outcome.ok)
        weight_changed = False
        if outcome.dynamic and not outcome.ok:
            if c.weight is not None:
                # keepalived check_misc.c: a failure drops the dynamic weight (cur_weight
                # = 0) without an IPVS edit; the server is going down anyway.
                c.weight = None
                for vi, ri in self.users[cid]:
                    r = self.vss[vi].servers[ri]
                    r.weight = self._weight(r)
        elif outcome.dynamic and outcome.weight != c.weight:
            c.weight = outcome.weight  # None: exit 0, the configured weight again
            weight_changed = True
        elif outcome.ok and outcome.weight is not None and outcome.weight != c.weight:
            c.weight = outcome.weight
            weight_changed = True
        if outcome.offset is not None and outcome.offset != c.offset:
            c.offset = outcome.offset
            weight_changed = True
        out: list[Action] = []
        if first and c.has_run and c.alpha and not step.up:
            # keepalived update_svr_checker_state: an alpha checker's first verdict
            # confirms the down it started with, and the real server's down notifiers
            # run (notify_down, the FIFO's "RS ... DOWN").
            for vi, ri in self.users[cid]:
                r = self.vss[vi].servers[ri]
                if not r.alive:
                    out.append(Notify(r.plan.notify_down, "notify_down", vi, r.key))
        if not step.edge and not weight_changed:
            return step, out
        for vi, ri in self.users[cid]:
            v = self.vss[vi]
            r = v.servers[ri]
            if weight_changed:
                self._set_weight(vi, r, out)
            if step.edge:
                r.failed += -1 if step.up else 1
                self._server(vi, r, r.failed == 0, out)
        return step, out

    def _set_weight(self, vi: int, r: RsHealth, out: list[Action]) -> None:
        v = self.vss[vi]
        new = self._weight(r)
        if new == r.weight:
            return
        active = "" if r.alive else "in"
        out.append(
            Log(
                f"Changing weight from {r.weight} to {new} for {active}active service "
                f"{_fmt_rs(v.plan, r.key)} of VS {v.plan.name}"
            )
        )
        r.weight = new
        if r.alive:
            out.append(Changed(vi))
            self._quorum(vi, out)

    def _server(self, vi: int, r: RsHealth, alive: bool, out: list[Action]) -> None:
        """keepalived perform_svr_state."""
        if r.alive == alive:
            return
        v = self.vss[vi]
        inhibit = r.plan.inhibit_on_failure
        if alive:
            verb, prep = ("Enabling" if inhibit else "Adding"), "to"
        else:
            verb, prep = ("Disabling" if inhibit else "Removing"), "from"
        out.append(Log(f"{verb} service {_fmt_rs(v.plan, r.key)} {prep} VS {v.plan.name}"))
        r.alive = alive
        if not v.sorry_active:
            out.append(Changed(vi))
        script = r.plan.notify_up if alive else r.plan.notify_down
        out.append(Notify(script, "notify_up" if alive else "notify_down", vi, r.key))
        self._quorum(vi, out)

    def _quorum(self, vi: int, out: list[Action], *, init: bool = False) -> None:
        """keepalived update_quorum_state."""
        v = self.vss[vi]
        p = v.plan
        total = v.weight_sum()
        threshold = p.quorum + (-1 if v.quorum_up else 1) * p.hysteresis
        if not v.quorum_up and total >= threshold:
            v.quorum_up = True
            out.append(
                Log(
                    f"Gained quorum {p.quorum}+{p.hysteresis}={threshold} <= {total} "
                    f"for VS {p.name}"
                )
            )
            if v.sorry_active:
                assert p.sorry_server is not None
                verb = "Disabling" if p.sorry_server_inhibit else "Removing"
                out.append(
                    Log(f"{verb} sorry server {_fmt_rs(p, p.sorry_server)} from VS {p.name}")
                )
                v.sorry_active = False
                out.append(Changed(vi))
            out.append(Notify(p.quorum_up, "quorum_up", vi))
        elif (v.quorum_up and (total == 0 or total < threshold)) or (
            init and not v.quorum_up and p.sorry_server is not None and not v.sorry_active
        ):
            v.quorum_up = False
            word = "Starting with quorum down" if init else "Lost quorum"
            out.append(
                Log(f"{word} {p.quorum}-{p.hysteresis}={threshold} > {total} for VS {p.name}")
            )
            if p.sorry_server is not None and not v.sorry_active:
                verb = "Enabling" if p.sorry_server_inhibit else "Adding"
                out.append(Log(f"{verb} sorry server {_fmt_rs(p, p.sorry_server)} to VS {p.name}"))
                v.sorry_active = True
                out.append(Changed(vi))
            out.append(Notify(p.quorum_down, "quorum_down", vi))

    def removed(self, vi: int) -> list[Action]:
        """A virtual server a reload drops (keepalived clear_service_vs, not stopping):
        the down notifiers of its live real servers and, if it held quorum, its
        quorum_down, omega or not."""
        v = self.vss[vi]
        out: list[Action] = [
            Notify(r.plan.notify_down, "notify_down", vi, r.key) for r in v.servers if r.alive
        ]
        if v.quorum_up:
            out.append(Notify(v.plan.quorum_down, "quorum_down", vi))
        return out

    def stop(self) -> list[Action]:
        """Shutdown: with `omega`, the down notifiers of alive servers and the quorum_down
        of a virtual server that held quorum run (keepalived clear_services)."""
        out: list[Action] = []
        for vi, v in enumerate(self.vss):
            if not v.plan.omega:
                continue
            for r in v.servers:
                if r.alive:
                    out.append(Notify(r.plan.notify_down, "notify_down", vi, r.key))
            out.append(Notify(v.plan.quorum_down, "quorum_down", vi))
        return out
