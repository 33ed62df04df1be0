"""keepalived's signal dumps: SIGUSR1 the data file, SIGUSR2 the stats file (cleared
with the stats-clear signal), the JSON signal the JSON file."""

from __future__ import annotations

import logging
import os

from fastha.runtime.dumpfiles import vrrp_data_text, vrrp_stats_text, write_text
from fastha.runtime.vrrp.context import Context
from fastha.runtime.vrrp.current import Current
from fastha.runtime.vrrp.status import StatusOutput

log = logging.getLogger("fastha.vrrp")


class Dumps:
    def __init__(
        self,
        ctx: Context,
        current: Current,
        status: StatusOutput,
        *,
        data_file: str,
        stats_file: str,
        json_file: str,
    ) -> None:
        self.ctx = ctx
        self.current = current
        self.status = status
        self.data_file = data_file
        self.stats_file = stats_file
        self.json_file = json_file

    def write_data(self) -> None:
        """keepalived's SIGUSR1: the data file (VRRP topology as text)."""
        log.info("Printing VRRP data for process(%d) on signal", os.getpid())
        text = vrrp_data_text(self.current.config, self.status.status_dict())
        write_text(self.data_file, text)

    def write_stats(self, clear: bool = False) -> None:
        """keepalived's SIGUSR2: the stats file (per-instance counters as text); with
        ``clear`` (SIGSTATS_CLEAR) the counters are zeroed once written, as keepalived's
        vrrp_print_stats(true) does."""
        log.info(
            "Printing %sVRRP stats for process(%d) on signal",
            "and clearing " if clear else "",
            os.getpid(),
        )
        write_text(self.stats_file, vrrp_stats_text(self.status.status_dict()))
        if clear:
            for inst in self.ctx.instances.values():
                inst.counters.clear()

    def write_json(self) -> None:
        """keepalived's JSON signal: every instance's state and counters, atomically."""
        import orjson

        log.info("Printing VRRP as json for process(%d) on signal", os.getpid())
        data = orjson.dumps(self.status.instances(), option=orjson.OPT_INDENT_2)
        write_text(self.json_file, data)
