"""Why a VRRP instance is down (keepalived's FAULT state): its interface, a weightless
tracked item, or its sync group holding it while another member is down. Pure: an
immutable value `fsm.Machine` replaces on each LinkChanged / TrackFault / SyncFault.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastha.vrrp.events import LinkChanged, SyncFault, TrackFault


@dataclass(frozen=True, slots=True)
class Faults:
    link_up: bool = True
    track_fault: bool = False
    sync_fault: bool = False

    def own_up(self, dont_track_primary: bool) -> bool:
        """Up by its own interface and trackers (ignoring its sync group)."""
        return (self.link_up or dont_track_primary) and not self.track_fault

    def after(self, ev: LinkChanged | TrackFault | SyncFault) -> tuple[Faults, str]:
        """The faults after `ev`, and the reason a state change it causes gives."""
        match ev:
            case LinkChanged():
                return replace(self, link_up=ev.up), "interface up" if ev.up else "interface down"
            case TrackFault():
                return replace(self, track_fault=ev.fault), ev.reason or "tracking"
            case SyncFault():
                return replace(self, sync_fault=ev.fault), "sync group"
