"""MISC_CHECK (keepalived check_misc.c): run misc_path (as script_user or the checker's
user), bounded by misc_timeout. Exit 0: up. With misc_dynamic, exit 2..255: up, weight
set to code - 2 (keepalived.conf(5)); exit 0 or a failure drops that weight for the
configured one (check_misc.c cur_weight = 0). Anything else, a signal or a timeout:
down."""

from __future__ import annotations

from fastha.check.health import Outcome
from fastha.check.spec import MiscSpec
from fastha.config.invocation import Script
from fastha.probes import ProbeContext


async def probe(spec: MiscSpec, ctx: ProbeContext) -> Outcome:
    if not spec.argv:
        return Outcome(False, "no misc_path")
    res = await ctx.script_runner().run(
        Script(
            spec.argv,
            timeout=spec.timeout,
            user=spec.user,
            group=spec.group,
            uid=spec.uid,
            gid=spec.gid,
            name=f"MISC_CHECK {spec.argv[0]}",
        )
    )
    dyn = spec.dynamic
    if res.timed_out:
        return Outcome(False, "timed out", dynamic=dyn)
    if res.error is not None:
        return Outcome(False, res.error, dynamic=dyn)
    rc = res.returncode
    if rc == 0:
        return Outcome(True, dynamic=dyn)  # misc_dynamic: back to the configured weight
    if dyn and 2 <= rc <= 255:
        return Outcome(True, weight=rc - 2, dynamic=True)
    why = f"exited with status {rc}" if rc > 0 else f"killed by signal {-rc}"
    return Outcome(False, why, dynamic=dyn)
