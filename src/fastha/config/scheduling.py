"""A child's process scheduling knobs, as keepalived's global_defs name them
(``vrrp_priority``, ``vrrp_rt_priority``, ``vrrp_rlimit_rttime``, ``vrrp_no_swap``,
``vrrp_cpu_affinity``): a value built from the configuration; ``fastha.drivers.sched``
makes the syscalls.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scheduling:
    nice: int | None = None  # vrrp_priority: -20..19
    rt_priority: int | None = None  # vrrp_rt_priority: 1..99 (SCHED_RR)
    rlimit_rttime_us: int | None = None  # vrrp_rlimit_rttime
    no_swap: bool = False  # vrrp_no_swap
    cpu_affinity: tuple[int, ...] = ()  # vrrp_cpu_affinity
