"""VRRP instance states and the legal transitions between them.

RFC 5798 §6.4 defines Initialize, Backup and Master; keepalived adds FAULT (an
interface or a weightless tracker is down) and STOP (the instance was shut down).
The table is data and every state change is checked against it.
"""

from __future__ import annotations

from enum import IntEnum


class State(IntEnum):
    # Values follow keepalived's VRRP_STATE_* (vrrp.h) so dumps and SNMP line up.
    INIT = 0
    BACKUP = 1
    MASTER = 2
    FAULT = 3
    STOP = 98


# keepalived's VRRP_STATE_DELETED (vrrp.h): not a state of the machine, but a number
# keepalived's SNMP and metrics report for an instance being removed.
DELETED = 97

# The one table of keepalived's state numbers by name, in number order, as the dumps,
# the JSON status, the metrics and `fastha status` write them.
STATE_NAMES: dict[int, str] = dict(
    sorted({**{int(s): s.name for s in State}, DELETED: "DELETED"}.items())
)


TRANSITIONS: dict[State, frozenset[State]] = {
    # RFC 5798 §6.4.1: Initialize goes to Master (owner) or Backup; keepalived may
    # start in FAULT when a tracked item is already down.
    State.INIT: frozenset({State.BACKUP, State.MASTER, State.FAULT, State.STOP}),
    # §6.4.2: Backup -> Master on Master_Down_Timer expiry; keepalived: -> FAULT.
    State.BACKUP: frozenset({State.MASTER, State.FAULT, State.STOP}),
    # §6.4.3: Master -> Backup on a higher-priority advert; keepalived: -> FAULT.
    State.MASTER: frozenset({State.BACKUP, State.FAULT, State.STOP}),
    # keepalived vrrp_state_leave_fault: back to BACKUP, or MASTER for the owner.
    State.FAULT: frozenset({State.BACKUP, State.MASTER, State.STOP}),
    # Terminal: a reload builds a new machine.
    State.STOP: frozenset(),
}


class IllegalTransition(Exception):
    """A state change (or an event) the transition table does not allow."""

    def __init__(self, old: State, new: State | None, why: str = "") -> None:
        self.old = old
        self.new = new
        target = new.name if new is not None else "-"
        super().__init__(
            f"illegal VRRP transition {old.name} -> {target}{': ' + why if why else ''}"
        )


def check_transition(old: State, new: State) -> None:
    """Raise IllegalTransition unless `old -> new` is in TRANSITIONS."""
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(old, new)
