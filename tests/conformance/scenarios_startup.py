"""Scenarios about what a daemon finds at start: an interface the config names that does
not exist yet (dynamic_interfaces), and include files checked by include_check.

Registered in scenarios.SCENARIOS (imported at the end of scenarios.py). A node whose
daemon refuses its config exits at start; its checkpoints say ``running: false`` and
the exit code.
"""

from __future__ import annotations

from tests.conformance.harness import Scenario, global_defs, iface, start, stop
from tests.conformance.scenarios import instance, scenario

LATE = instance(
    name="VI_LATE", vrid=71, interface="late0", vips="198.19.71.10/24",
    extra='garp_master_delay 1\nnotify "<<notify>> late"',
)  # fmt: skip
LATE_QUIET = instance(
    name="VI_LATE", vrid=71, interface="late0", vips="198.19.71.10/24",
    extra="garp_master_delay 1",
)  # fmt: skip


@scenario
def missing_interface_dynamic() -> Scenario:
    """An instance on ``late0``, which does not exist at start. a has
    ``dynamic_interfaces``: VI_LATE waits (FAULT), runs once late0 is created (master,
    VIP on it), faults when it is deleted and comes back with it; VI_1 on eth0 runs all
    along. b has not: keepalived's VRRP child stops ("Non-existent interface specified
    in configuration"), and keepalived with it (exit 2)."""
    vi1 = instance(priority=100, extra="garp_master_delay 1")
    return Scenario(
        "missing_interface_dynamic",
        {
            "a": global_defs("dynamic_interfaces") + vi1 + LATE,
            # (no notify on b's VI_LATE: missing_interface_stop_notify, --full only)
            "b": global_defs() + instance(priority=50, extra="garp_master_delay 1") + LATE_QUIET,
        },
        (
            start("a", "b"),
            iface("a", "late0"),
            iface("a", "late0", create=False),
            iface("a", "late0"),
            stop("a"),
        ),
        vips=("198.18.0.100", "198.19.71.10"),
        mixed=False,  # b does not run: there is no mixed cluster to elect in
    )


@scenario
def include_check_later_includes() -> Scenario:
    """``include_check`` applies to the includes read after it: with every check (a), an
    include whose wildcard matches nothing is a config error and the daemon does not
    start (keepalived: "No config files matched", exit 1); with ``include_check read``
    (b) it is skipped, and the instance from an include that exists runs."""
    missing = "include <<dir>>/conf.d/*.conf\n"
    return Scenario(
        "include_check_later_includes",
        {
            "a": global_defs("include_check") + missing + instance(priority=150),
            "b": global_defs("include_check read") + missing + "include <<dir>>/inst.conf\n",
        },
        (start("a", "b"), stop("b")),
        files={"inst.conf": instance(priority=100, extra="garp_master_delay 1")},
        mixed=False,
    )


@scenario
def missing_interface_stop_notify() -> Scenario:
    """Known divergence, --full only: keepalived's VRRP child, stopping on a
    non-existent interface (no dynamic_interfaces), still runs the instances' notify
    scripts with STOP ("late INSTANCE VI_LATE STOP 0"); fastha refuses the config before
    it starts the VRRP child and runs none."""
    return Scenario(
        "missing_interface_stop_notify",
        {"a": global_defs() + instance(priority=50, extra="garp_master_delay 1") + LATE},
        (start("a"),),
        full_only=True,
    )
