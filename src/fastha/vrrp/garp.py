"""When a master announces its VIPs with gratuitous ARP / unsolicited NA, beyond the
burst it sends on becoming master (keepalived garp_master_delay, garp_master_refresh,
garp_lower_prio_delay and their repeats). Pure: `fsm.Machine` arms the timers and
emits the `SendGratuitous` bursts.
"""

from __future__ import annotations

from fastha.vrrp.events import TimerKind
from fastha.vrrp.params import InstanceParams


def master_timers(p: InstanceParams) -> tuple[tuple[TimerKind, int, int], ...]:
    """The announcement timers a new master arms: (kind, delay_ns, interval_ns; 0 =
    one-shot). garp_master_delay sends a second burst; garp_master_refresh repeats."""
    timers: list[tuple[TimerKind, int, int]] = []
    if p.garp_master_delay_ns:
        timers.append((TimerKind.GARP_DELAY, p.garp_master_delay_ns, 0))
    if p.garp_master_refresh_ns:
        timers.append((TimerKind.GARP_REFRESH, p.garp_master_refresh_ns, p.garp_master_refresh_ns))
    return tuple(timers)


def burst(p: InstanceParams, kind: TimerKind) -> int:
    """How many frames the burst of an announcement timer sends."""
    if kind == TimerKind.GARP_REFRESH:
        return p.garp_master_refresh_repeat
    if kind == TimerKind.GARP_LOWER_PRIO:
        return p.garp_lower_prio_repeat or 0
    return p.garp_master_repeat  # GARP_DELAY, GARP_DEFEND
