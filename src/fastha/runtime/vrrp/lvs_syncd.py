"""lvs_sync_daemon: the kernel's IPVS sync daemon follows its VRRP instance, as
keepalived drives it (vrrp.c, ipvswrapper.c)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from fastha.runtime.vrrp.current import Current
from fastha.runtime.vrrp.from_config import LvsSyncSpec
from fastha.vrrp.actions import StateChanged
from fastha.vrrp.states import State

if TYPE_CHECKING:
    from fastha.drivers.ipvs import IPVS
    from fastha.runtime.vrrp.instance import Instance

log = logging.getLogger("fastha.vrrp")

STOP_GRACE_S = 5.0


class SyncDaemonPolicy:
    def __init__(self, current: Current) -> None:
        self.current = current
        self.ipvs: IPVS | None = None
        # (state, config) wanted and running; see _work.
        self.want: tuple[str, object] | None = None
        self.running: tuple[str, object] | None = None
        self.task: asyncio.Task[None] | None = None

    def on_state_change(self, inst: Instance, change: StateChanged) -> None:
        """keepalived (vrrp.c, ipvswrapper.c): the sync daemon's instance starts it as
        master on entering MASTER (stopping the backup one) and as backup at start-up
        otherwise and on leaving MASTER (stopping the master one)."""
        sd = self.current.spec.lvs_syncd
        if sd is None or inst.name != sd.instance:
            return
        if change.new == State.MASTER:
            self._set("master")
        elif change.new in (State.BACKUP, State.FAULT) and change.old in (
            State.INIT,
            State.MASTER,
        ):
            self._set("backup")

    def follow(self, instances: dict[str, Instance]) -> None:
        """After a reload changed lvs_sync_daemon: restart it with the new settings in
        the state its instance is in now (stop it when it is gone)."""
        sd = self.current.spec.lvs_syncd
        inst = instances.get(sd.instance) if sd is not None else None
        if inst is None or inst.machine.state not in (State.MASTER, State.BACKUP, State.FAULT):
            self._set(None)
        else:
            self._set("master" if inst.machine.state == State.MASTER else "backup")

    def _set(self, state: str | None) -> None:
        sd = self.current.spec.lvs_syncd
        self.want = None if state is None or sd is None else (state, sd)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._work(), name="lvs-syncd")

    async def _work(self) -> None:
        """Drive the kernel's sync daemon to `want`, one netlink call at a time."""
        from fastha.drivers.ipvs import IPVS
        from fastha.ipvs.model import SyncDaemon

        while self.running != self.want:
            want = self.want
            try:
                if self.ipvs is None:
                    ipvs = IPVS()
                    await ipvs.open()
                    self.ipvs = ipvs
                if self.running is not None:
                    state = self.running[0]
                    self.running = None
                    await self.ipvs.stop_daemon(state)
                    log.info("Stopped IPVS sync daemon (%s)", state)
                if want is not None:
                    state, sd = want
                    assert isinstance(sd, LvsSyncSpec)
                    # As keepalived's ipvs_syncd_master/backup: stop the other one first.
                    await self.ipvs.stop_daemon("backup" if state == "master" else "master")
                    await self.ipvs.start_daemon(
                        SyncDaemon(
                            state=state,
                            ifname=sd.ifname,
                            syncid=sd.syncid,
                            maxlen=sd.maxlen,
                            mcast_group=sd.mcast_group,
                            mcast_port=sd.mcast_port,
                            mcast_ttl=sd.mcast_ttl,
                        )
                    )
                    self.running = want
                    log.info(
                        "Starting IPVS sync daemon in %s state (interface %s, syncid %d)",
                        state.upper(),
                        sd.ifname,
                        sd.syncid,
                    )
            except Exception as exc:
                log.error("IPVS sync daemon: cannot go %s: %s", want and want[0], exc)
                if self.want == want:
                    self.want = self.running  # retried on the next change
                    return

    async def stop(self) -> None:
        """keepalived vrrp_terminate_phase1: stop the sync daemon this process runs."""
        if self.want is None and self.running is None:
            return
        self._set(None)
        if self.task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.task), STOP_GRACE_S)
        if self.ipvs is not None:
            self.ipvs.close()
            self.ipvs = None
