"""keepalived's signals (lib/signals.c get_signum), in one table: what `--signum=NAME`
prints, what the parent forwards and what each child handles."""

from __future__ import annotations

import signal

SIGJSON = signal.SIGRTMIN + 2
SIGSTATS_CLEAR = signal.SIGRTMAX - 1  # the stats file, then every counter zeroed

SIGNUMS: dict[str, int] = {
    "STOP": signal.SIGTERM,
    "RELOAD": signal.SIGHUP,
    "DATA": signal.SIGUSR1,
    "STATS": signal.SIGUSR2,
    "STATS_CLEAR": SIGSTATS_CLEAR,
    "JSON": SIGJSON,
}
