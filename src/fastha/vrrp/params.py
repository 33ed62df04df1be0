"""Per-instance parameters the state machine runs with.

The application builds an `InstanceParams` from the parsed keepalived.conf, with
keepalived's fix-ups made (fastha.config.normalise_vrrp); the protocol layer does not
import the config model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastha.vrrp.states import State
from fastha.vrrp.timing import DOWN_TIMER_ADVERTS, NS_PER_S

PRIO_OWNER = 255
PRIO_DEFAULT = 100


@dataclass(frozen=True, slots=True)
class InstanceParams:
    name: str
    vrid: int = 1
    version: int = 2  # keepalived's default vrrp_version
    priority: int = PRIO_DEFAULT
    adver_int_cs: int = 100  # centiseconds; v2 must be whole seconds
    initial_state: State = State.BACKUP  # `state MASTER|BACKUP`: a hint only
    primary_address: str | None = None  # our source address, for the §6.4.3 tie-break
    nopreempt: bool = False
    preempt_delay_ns: int = 0
    down_timer_adverts: int = DOWN_TIMER_ADVERTS
    strict: bool = False  # vrrp_strict / strict_mode
    accept: bool | None = None  # None: keepalived default (not strict)
    dont_track_primary: bool = False
    skip_check_adv_addr: bool = False  # for the driver's validation
    check_unicast_src: bool = False  # for the driver's validation
    lower_prio_no_advert: bool = False
    higher_prio_send_advert: bool = False
    garp_master_delay_ns: int = 5 * NS_PER_S  # VRRP_GARP_DELAY
    garp_master_repeat: int = 5  # VRRP_GARP_REP
    garp_master_refresh_ns: int = 0  # VRRP_GARP_REFRESH (0 = none)
    garp_master_refresh_repeat: int = 1  # VRRP_GARP_REFRESH_REP
    garp_lower_prio_delay_ns: int = 5 * NS_PER_S  # keepalived: garp_master_delay's
    garp_lower_prio_repeat: int = 5  # keepalived: garp_master_repeat's

    @property
    def is_owner(self) -> bool:
        return self.priority == PRIO_OWNER

    @property
    def accept_mode(self) -> bool:
        # RFC 5798 §6.1: the owner always accepts; unset, keepalived's default is
        # !strict_mode (fastha.config.normalise_vrrp.accept resolves a configured one).
        if self.is_owner:
            return True
        if self.accept is None:
            return not self.strict
        return self.accept

    def normalised(self) -> tuple[InstanceParams, tuple[str, ...]]:
        """The protocol's own rule on top of the values given: RFC 5798 §6.4.1, the
        address owner starts as Master, so with no preempt delay. keepalived's fix-ups
        of the configured values (ranges, rounding, strict mode...) are made, and said,
        once, where the configuration becomes these values
        (fastha.config.normalise_vrrp); nothing is left to say here."""
        if self.is_owner and (self.initial_state != State.MASTER or self.preempt_delay_ns):
            return replace(self, initial_state=State.MASTER, preempt_delay_ns=0), ()
        return self, ()
