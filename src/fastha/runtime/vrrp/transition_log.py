"""An instance's transition in keepalived 2.2.7's words, after the line keepalived logs
for its cause (vrrp.c, vrrp_scheduler.c)."""

from __future__ import annotations

import logging

from fastha.runtime.vrrp.notify import STATE_NAMES
from fastha.vrrp.actions import Notify, NotifyKind, StateChanged
from fastha.vrrp.events import AdvertReceived, Event
from fastha.vrrp.machine_view import MachineView
from fastha.vrrp.states import State

log = logging.getLogger("fastha.vrrp")


def log_transition(
    name: str,
    action: StateChanged,
    event: Event | None,
    ours: int,
    track_reason: str,
    sent_prio0: bool,
) -> None:
    """`event` is the one that caused it, `ours` the effective priority, `track_reason`
    the last TrackFault's, `sent_prio0` whether a priority 0 advert went out since the
    last transition."""
    new = action.new
    if action.reason == "higher priority advert" and type(event) is AdvertReceived:
        if event.priority == ours:
            log.info(
                "(%s) Master received advert from %s with same priority %d but "
                "higher IP address than ours",
                name,
                event.src,
                event.priority,
            )
        else:
            log.info(
                "(%s) Master received advert from %s with higher priority %d, ours %d",
                name,
                event.src,
                event.priority,
                ours,
            )
    elif new == State.MASTER and action.reason == "master down timer expired":
        log.debug("(%s) Receive advertisement timeout", name)
    pending_init = all(r.endswith(" init") for r in track_reason.split("; "))
    if action.old == State.INIT and new == State.FAULT and pending_init:
        # keepalived waits for its track scripts' first result without a line.
        log.debug("(%s) waiting for the first result of %s", name, track_reason)
    elif new in STATE_NAMES:
        init = " (init)" if action.old == State.INIT and new != State.MASTER else ""
        log.info("(%s) Entering %s STATE%s", name, STATE_NAMES[new], init)
    elif new == State.STOP:
        log.debug("(%s) Stopped", name)  # keepalived has no line for it
    if sent_prio0:
        log.debug("(%s) sent 0 priority", name)  # keepalived: with -D
    log.debug("(%s) %s -> %s: %s", name, action.old.name, new.name, action.reason)


def log_lower_discarded(name: str, event: Event, was: State, m: MachineView) -> None:
    """keepalived's line for a lower-priority advert a preempting BACKUP discards
    (vrrp.c vrrp_state_backup)."""
    if type(event) is AdvertReceived and was == State.BACKUP and m.lower_advert_ignored:
        log.info(
            "(%s) received lower priority (%d) advert from %s - discarding",
            name,
            event.priority,
            event.src,
        )


def log_master_rx_lower(name: str, event: Event | None, m: MachineView, notify: Notify) -> None:
    """keepalived's line for a lower-priority advert a MASTER re-asserts against
    (vrrp_state_master_rx, before its advert and GARPs: here at the MASTER_RX_LOWER_PRI
    notify, which comes with them)."""
    if notify.kind is NotifyKind.MASTER_RX_LOWER_PRI and type(event) is AdvertReceived:
        log.info(
            "(%s) Received advert from %s with lower priority %d, ours %d%s",
            name,
            event.src,
            event.priority,
            m.effective_priority,
            "" if m.params.lower_prio_no_advert else ", forcing new election",
        )
