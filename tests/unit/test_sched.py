"""Scheduling knobs really change the process (run in a child so the suite is untouched)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from tests.support.prereq import need_root

CHILD = """
import os, resource, sys
from fastha.config.scheduling import Scheduling
from fastha.drivers.sched import apply
problems = apply(Scheduling(nice=5, rt_priority=10, rlimit_rttime_us=10000,
                            no_swap=True, cpu_affinity=(0,)), "test")
print(repr(problems))
# Real-time with reset-on-fork: the scripts the child spawns start at SCHED_OTHER.
print(os.getpriority(os.PRIO_PROCESS, 0),
      os.sched_getscheduler(0) == os.SCHED_RR | os.SCHED_RESET_ON_FORK,
      os.sched_getparam(0).sched_priority, sorted(os.sched_getaffinity(0)),
      resource.getrlimit(resource.RLIMIT_RTTIME)[0])
for line in open("/proc/self/status"):
    if line.startswith("VmLck"):
        print(line.split()[1])
# As the VRRP child does before it stops: teardown under SCHED_RR would trip RLIMIT_RTTIME.
from fastha.drivers.sched import leave_realtime
leave_realtime()
print(os.sched_getscheduler(0) == os.SCHED_OTHER)
"""


@pytest.mark.unit
def test_knobs_are_applied() -> None:
    need_root()
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()
    assert out[0] == "[]"
    nice, rr, prio, cpus, rttime = out[1].split(" ", 4)
    assert (nice, rr, prio, rttime) == ("5", "True", "10", "10000")
    assert cpus == "[0]"
    assert int(out[2]) > 0  # mlockall locked the pages
    assert out[3] == "True"  # left SCHED_RR before exiting


@pytest.mark.unit
def test_failures_are_reported_not_raised() -> None:
    from fastha.config.scheduling import Scheduling
    from fastha.drivers.sched import apply

    # CPU 4095 does not exist on any CI machine: the problem is returned, nothing raised.
    problems = apply(Scheduling(cpu_affinity=(4095,)), "test")
    assert len(problems) == 1 and "cpu affinity" in problems[0]
    assert os.sched_getaffinity(0)  # unchanged and still valid
