"""Per-instance parameters the state machine runs with.

The application builds an `InstanceParams` from the parsed keepalived.conf; the
protocol layer does not import the config model. `normalised()` applies the fix-ups
keepalived makes in vrrp_complete_instance (vrrp.c) and returns its warnings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from fastha.vrrp.states import State
from fastha.vrrp.timing import (
    DOWN_TIMER_ADVERTS,
    NS_PER_S,
    V2_MAX_ADVER_INT_CS,
    V3_MAX_ADVER_INT_CS,
)

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
    lower_prio_no_advert: bool | None = None  # None: keepalived default (strict)
    higher_prio_send_advert: bool = False
    garp_master_delay_ns: int = 5 * NS_PER_S  # VRRP_GARP_DELAY
    garp_master_repeat: int = 5  # VRRP_GARP_REP
    garp_master_refresh_ns: int = 0  # VRRP_GARP_REFRESH (0 = none)
    garp_master_refresh_repeat: int = 1  # VRRP_GARP_REFRESH_REP
    garp_lower_prio_delay_ns: int | None = None  # None: garp_master_delay
    garp_lower_prio_repeat: int | None = None  # None: garp_master_repeat

    @property
    def is_owner(self) -> bool:
        return self.priority == PRIO_OWNER

    @property
    def accept_mode(self) -> bool:
        # RFC 5798 §6.1: the owner always accepts; keepalived defaults accept to
        # !strict_mode and strict v2 cannot accept (RFC 3768 has no Accept_Mode).
        if self.is_owner:
            return True
        if self.accept is None:
            return not self.strict
        if self.accept and self.strict and self.version == 2:
            return False
        return self.accept

    def normalised(self) -> tuple[InstanceParams, tuple[str, ...]]:
        """keepalived's vrrp_complete_instance fix-ups, with its wording."""
        warn: list[str] = []
        p = self
        n = p.name
        if not 1 <= p.priority <= PRIO_OWNER:
            warn.append(f"({n}) priority {p.priority} out of range - using {PRIO_DEFAULT}")
            p = replace(p, priority=PRIO_DEFAULT)
        if p.version == 2:
            if p.adver_int_cs >= V2_MAX_ADVER_INT_CS + 100:
                warn.append(f"({n}) VRRPv2 advertisement interval out of range - setting to 255s")
                p = replace(p, adver_int_cs=V2_MAX_ADVER_INT_CS)
            elif p.adver_int_cs % 100:
                warn.append(f"({n}) VRRPv2 advertisement interval must be an integer - rounding")
                p = replace(p, adver_int_cs=max(100, (p.adver_int_cs + 50) // 100 * 100))
        elif p.adver_int_cs > V3_MAX_ADVER_INT_CS:
            warn.append(f"({n}) VRRPv3 advertisement interval out of range - setting to 40.95s")
            p = replace(p, adver_int_cs=V3_MAX_ADVER_INT_CS)
        if p.adver_int_cs <= 0:
            p = replace(p, adver_int_cs=100)
        if p.strict and p.initial_state == State.MASTER and not p.is_owner:
            warn.append(f"({n}) Cannot start in MASTER state if not address owner")
            p = replace(p, initial_state=State.BACKUP)
        if p.is_owner:
            if p.nopreempt:
                warn.append(
                    f"({n}) nopreempt is incompatible with priority 255 - resetting nopreempt"
                )
                p = replace(p, nopreempt=False)
            # RFC 5798 §6.4.1: the owner becomes Master at once.
            p = replace(p, initial_state=State.MASTER)
        if p.initial_state == State.MASTER:
            if p.nopreempt:
                warn.append(
                    f"({n}) Warning - nopreempt will not work with initial state MASTER - clearing"
                )
                p = replace(p, nopreempt=False)
            if p.preempt_delay_ns:
                warn.append(
                    f"({n}) Warning - preempt delay will not work with initial state MASTER - clearing"
                )
                p = replace(p, preempt_delay_ns=0)
        if p.preempt_delay_ns and p.strict:
            warn.append(f"({n}) preempt_delay is incompatible with strict mode - resetting")
            p = replace(p, preempt_delay_ns=0)
        if p.preempt_delay_ns and p.nopreempt:
            warn.append(f"({n}) preempt_delay is incompatible with nopreempt mode - resetting")
            p = replace(p, preempt_delay_ns=0)
        if not 1 <= p.down_timer_adverts <= 100:
            warn.append(f"({n}) Invalid down_timer_adverts [1:100] - using {DOWN_TIMER_ADVERTS}")
            p = replace(p, down_timer_adverts=DOWN_TIMER_ADVERTS)
        if p.down_timer_adverts != DOWN_TIMER_ADVERTS and p.strict:
            warn.append(f"({n}) down_timer_adverts is incompatible with strict mode - resetting")
            p = replace(p, down_timer_adverts=DOWN_TIMER_ADVERTS)
        # Defaults that depend on strict mode, and the values strict mode resets
        # (vrrp_complete_instance; the config check already said "... resetting").
        if p.lower_prio_no_advert is None or p.strict:
            p = replace(p, lower_prio_no_advert=p.lower_prio_no_advert or p.strict)
        if p.garp_lower_prio_repeat is None or p.strict:
            p = replace(p, garp_lower_prio_repeat=0 if p.strict else p.garp_master_repeat)
        if p.garp_lower_prio_delay_ns is None or p.strict:
            p = replace(p, garp_lower_prio_delay_ns=0 if p.strict else p.garp_master_delay_ns)
        if p.strict and p.higher_prio_send_advert:
            p = replace(p, higher_prio_send_advert=False)
        return p, tuple(warn)
