"""VRRP timer arithmetic, exactly as RFC 5798 §6.1 / RFC 3768 §6.1 and keepalived.

Units: advertisement intervals are integer centiseconds everywhere (VRRPv3 carries
centiseconds on the wire, §5.2.7; a VRRPv2 interval of N seconds is N * 100 cs).
Durations returned are integer nanoseconds.

Rounding follows keepalived (vrrp.h, VRRP_TIMER_SKEW_CALC), whose timer unit is the
microsecond and which truncates there:
  v3: skew_us = ((256 - prio) * master_adver_int_cs * 625) // 16   (== *10000/256)
  v2: skew_us = ((256 - prio) * 1_000_000) // 256                 (RFC 3768: seconds)
The RFC text computes Skew_Time in centiseconds; truncating at the centisecond
instead would make a fastha backup fire up to 10 ms earlier than a keepalived peer
with the same priority, so we keep keepalived's microsecond resolution.
"""

from __future__ import annotations

NS_PER_US = 1_000
NS_PER_CS = 10_000_000
NS_PER_S = 1_000_000_000

DOWN_TIMER_ADVERTS = 3  # RFC 5798 §6.1: Master_Down_Interval = 3 * interval + skew
V2_MAX_ADVER_INT_CS = 255 * 100  # 8-bit seconds field (RFC 3768 §5.3.7)
V3_MAX_ADVER_INT_CS = 4095  # 12-bit centiseconds field (RFC 5798 §5.2.7)


def adver_int_ns(adver_int_cs: int) -> int:
    return adver_int_cs * NS_PER_CS


def _skew_us(version: int, pri_val: int, master_adver_int_cs: int) -> int:
    if version == 3:
        return (pri_val * master_adver_int_cs * 625) // 16
    return (pri_val * 1_000_000) // 256


def skew_time_ns(version: int, priority: int, master_adver_int_cs: int) -> int:
    """Skew_Time: RFC 5798 §6.1 (v3, scales with the interval) / RFC 3768 §6.1 (v2)."""
    return _skew_us(version, 256 - priority, master_adver_int_cs) * NS_PER_US


def skew_time_min_ns(version: int, master_adver_int_cs: int) -> int:
    """keepalived VRRP_TIMER_SKEW_MIN: the skew of priority 255, used for `state MASTER`."""
    return _skew_us(version, 1, master_adver_int_cs) * NS_PER_US


def state_master_wait_ns(version: int, master_adver_int_cs: int) -> int:
    """keepalived vrrp_init_state: an instance configured `state MASTER` starts as a
    backup that waits one interval plus the minimum skew, so a running master is
    heard first."""
    return adver_int_ns(master_adver_int_cs) + skew_time_min_ns(version, master_adver_int_cs)


def master_down_interval_ns(
    version: int,
    priority: int,
    master_adver_int_cs: int,
    down_timer_adverts: int = DOWN_TIMER_ADVERTS,
) -> int:
    """Master_Down_Interval = N * Master_Adver_Interval + Skew_Time (RFC 5798 §6.1).

    N is 3 per the RFCs; keepalived's `down_timer_adverts` (1..100) replaces it.
    """
    return down_timer_adverts * adver_int_ns(master_adver_int_cs) + skew_time_ns(
        version, priority, master_adver_int_cs
    )
