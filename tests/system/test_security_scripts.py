"""Script security where scripts run (issue 15 items 1 and 5): attacks by a real local
user on the scripts a root daemon runs, against fastha and against keepalived 2.2.7.

An unprivileged user (created here with useradd, removed afterwards) goes after the
scripts of a single MASTER node whose keepalived.conf has ``enable_script_security``
and ``script_user root``:

  dir      a root vrrp_script, root-owned, in a 0777 directory: the attacker swaps the
           file for his own after the daemon has started
  link     a root vrrp_script reached through a symlink into the attacker's directory:
           he swaps the file there
  file     a root vrrp_script that is world-writable: he rewrites its content
  notify   a world-writable notify_master script, rewritten before the daemon starts
  quote    a vrrp_script and a notify_backup with an unbalanced quote (no attacker:
           keepalived drops them; they must not stop the VRRP child)

Each payload touches ``pwned.<case>.<uid>`` in a marker directory. keepalived disables
every one of these scripts, so none of the attacker's code ever runs as root; a control
script in a root-owned directory keeps running as root (proof that scripts run at all),
the node stays MASTER with its VIP, and the daemon keeps running. The same test runs
against keepalived: it shows the test tells a defended daemon from an undefended one.

And keepalived's default script user: without ``script_user``, scripts run as
``keepalived_script`` when that user exists (created here when missing).

The checker child's scripts (MISC_CHECK, notify_up/down, quorum_up/down): whole daemons,
fastha -C and keepalived -C, in tests/ipvs/inside/test_security_checker.py (they need
ip_vs: UML); here, test_security_checker_scripts runs what that child builds from the
config (its plan, its _notify), in a second, on this kernel.
"""

from __future__ import annotations

import asyncio
import pwd
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.attacker import attack, script, stage, useradd, userdel
from tests.support.netns import Topology
from tests.support.prereq import need_root, need_tool
from tests.support.vrrp_nodes import NodeSpec, Router, TrackScript, VrrpCluster, need_impl

pytestmark = pytest.mark.system

IMPLS = [
    pytest.param("keepalived", marks=pytest.mark.keepalived, id="keepalived"),
    pytest.param("fastha", id="fastha"),
]
TIMEOUT = 15


@pytest.fixture
def attacker() -> Iterator[pwd.struct_passwd]:
    """A real unprivileged user, removed after the test whatever its outcome (any
    process it left is killed first)."""
    need_root()
    need_tool("useradd")
    need_tool("setpriv")
    name = f"fha-atk-{secrets.token_hex(4)}"
    pw = useradd(name)
    try:
        yield pw
    finally:
        userdel(name)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A root-owned 0755 directory under /tmp (pytest's tmp_path is 0700: no local
    user could reach it, so no attack could be staged there)."""
    d = Path(tempfile.mkdtemp(prefix="fastha-sec-", dir="/tmp"))
    try:
        d.chmod(0o755)
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _wait_file(path: Path, timeout: float, c: VrrpCluster) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared\n{c.logs()}")
        time.sleep(0.05)


@pytest.mark.parametrize("impl", IMPLS)
def test_local_user_cannot_get_root_through_scripts(
    topo: Topology, impl: str, attacker: pwd.struct_passwd, workdir: Path
) -> None:
    need_impl(impl)  # type: ignore[arg-type]
    st = stage(workdir, attacker)
    attack(st, attacker, ("notify",))  # planted before the daemon starts
    tracks = (
        *(TrackScript(f"chk_{c}", str(st.scripts[c])) for c in ("control", "dir", "link", "file")),
        TrackScript("chk_quote", "/bin/true 'x"),
    )
    node = NodeSpec(
        "a", impl, priority=150, state="MASTER",  # type: ignore[arg-type]
        track_scripts=tracks,
        extra=(f"notify_master {st.scripts['notify']}", "notify_backup \"/bin/true 'x\""),
    )  # fmt: skip
    with VrrpCluster(topo, Router(version=3), [node], observer=False) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        c.wait_vip("a", TIMEOUT)
        control = st.markers / "control.0"
        _wait_file(control, TIMEOUT, c)
        c.wait_master(TIMEOUT, expect="a")
        before = c["a"].peer.states()
        attack(st, attacker, ("dir", "link", "file"))
        # Two more runs of the control script: every script (interval 1 s) had its turn
        # after the swaps.
        for _ in range(2):
            control.unlink()
            _wait_file(control, TIMEOUT, c)
        as_root = [(n, uid) for n, uid in st.marks("pwned.") if uid == 0 or n.endswith(".0")]
        assert not as_root, f"the attacker's code ran as root: {as_root}\n{c.logs()}"
        assert c["a"].peer.running, c.logs()
        # Not one transition since (no FAULT, no restarted VRRP child).
        assert c["a"].peer.states() == before and before[-1] == "MASTER", c.logs()
        assert c.has_vip("a"), c.logs()


@pytest.fixture
def keepalived_script_user() -> Iterator[pwd.struct_passwd]:
    """The user keepalived runs scripts as by default; created (and removed) here
    when the host does not have it."""
    need_root()
    need_tool("useradd")
    try:
        existing: pwd.struct_passwd | None = pwd.getpwnam("keepalived_script")
    except KeyError:
        existing = None
    if existing is not None:
        yield existing
        return
    pw = useradd("keepalived_script")
    try:
        yield pw
    finally:
        userdel("keepalived_script")


@pytest.mark.parametrize("impl", IMPLS)
def test_default_script_user_is_keepalivedscript(
    topo: Topology, impl: str, keepalived_script_user: pwd.struct_passwd, workdir: Path
) -> None:
    """No script_user: vrrp_script, notify_master, the generic notify and the notify FIFO's
    script run as keepalived_script, never root."""
    need_impl(impl)  # type: ignore[arg-type]
    markers = workdir / "markers"
    markers.mkdir()
    markers.chmod(0o777)
    kinds = ("track", "notify_master", "notify", "fifo")
    sh = {k: script(workdir / f"{k}.sh", f"touch {markers}/{k}.$(id -u)") for k in kinds}
    node = NodeSpec(
        "a", impl, priority=150, state="MASTER",  # type: ignore[arg-type]
        track_scripts=(TrackScript("chk_who", str(sh["track"])),),
        extra=(f"notify_master {sh['notify_master']}", f"notify {sh['notify']}"),
    )  # fmt: skip
    router = Router(
        version=3,
        script_user=None,
        global_extra=(f"vrrp_notify_fifo {workdir}/fifo", f"vrrp_notify_fifo_script {sh['fifo']}"),
    )
    uid = keepalived_script_user.pw_uid
    with VrrpCluster(topo, router, [node], observer=False) as c:
        c.start_all()
        c.wait_master(TIMEOUT, expect="a")
        c.wait_vip("a", TIMEOUT)
        for k in kinds:
            _wait_file(markers / f"{k}.{uid}", TIMEOUT, c)
        seen = sorted((p.name, p.stat().st_uid) for p in markers.iterdir())
        assert seen == sorted((f"{k}.{uid}", uid) for k in kinds), c.logs()
        assert c["a"].peer.running, c.logs()


def test_security_checker_scripts(attacker: pwd.struct_passwd, workdir: Path) -> None:
    """The checker child's scripts - MISC_CHECK, notify_up/down, quorum_up/down - after
    the same attacks: what that child builds from the config (build_plan for the
    MISC_CHECKs, CheckerRunner's resolver for the notifies) is run for real. The
    attacker's code never runs as root; the control MISC_CHECK and notify_down still run.
    (Against keepalived, with its checker running: tests/ipvs/inside/test_security_checker.py)
    """
    from fastha.check.health import Notify
    from fastha.check.spec import MiscSpec, build_plan
    from fastha.config.loader import load
    from fastha.probes import ProbeContext, run_probe
    from fastha.runtime.check.runner import CheckerRunner

    st = stage(workdir, attacker)
    attack(st, attacker, ("notify",))
    notify_down = script(workdir / "safe" / "down.sh", f"touch {st.markers}/down.$(id -u)")
    s = st.scripts
    conf = workdir / "keepalived.conf"
    conf.write_text(
        "global_defs {\n    router_id t\n    enable_script_security\n    script_user root\n}\n"
        "virtual_server 198.18.0.100 80 {\n    protocol TCP\n"
        f'    quorum_up {s["notify"]}\n    quorum_down "{s["dir"]} down"\n'
        + "".join(
            f"    real_server 198.18.0.{11 + i} 80 {{\n"
            f"        notify_up {s['notify']}\n        notify_down {notify_down}\n"
            f'        MISC_CHECK {{\n            misc_path "{s[case]}"\n        }}\n    }}\n'
            for i, case in enumerate(("control", "dir", "link", "file"))
        )
        + "}\n"
    )
    config = load(conf).config
    assert config is not None
    plan = build_plan(config)
    misc = [c.probe for c in plan.checks if isinstance(c.probe, MiscSpec)]
    attack(st, attacker, ("dir", "link", "file"))

    # Every notify and quorum script through the checker's own notifications, and every
    # MISC_CHECK left in the plan through the MISC_CHECK probe.
    events = []
    for i, vs in enumerate(plan.virtual_servers):
        events += [Notify(vs.quorum_up, "quorum_up", i), Notify(vs.quorum_down, "quorum_down", i)]
        for rs in vs.real_servers:
            events += [Notify(rs.notify_up, "notify_up", i, rs.key)]
            events += [Notify(rs.notify_down, "notify_down", i, rs.key)]

    async def run_all() -> None:
        checker = CheckerRunner(config)
        try:
            tasks = [t for t in map(checker.notifications.notify, events) if t is not None]
            assert all(r.ok for r in await asyncio.gather(*tasks))
            ctx = ProbeContext(scripts=checker.scripts)
            for m in misc:
                assert (await run_probe(m, ctx)).ok
        finally:
            await checker.scripts.close()

    asyncio.run(run_all())
    # The control MISC_CHECK and notify_down ran, as root (script_user root).
    assert st.marks("control.") == [("control.0", 0)]
    assert st.marks("down.") == [("down.0", 0)]
    as_root = [(n, uid) for n, uid in st.marks("pwned.") if uid == 0 or n.endswith(".0")]
    assert not as_root, f"the attacker's code ran as root: {as_root}"
