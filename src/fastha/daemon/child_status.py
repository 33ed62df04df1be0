"""The hooks a child's runner calls: answer the parent's questions, reload its config.

The parent gives each child, in its environment:

- `FASTHA_CHILD_SOCKET`: where to answer `status` and `dump` (the control protocol of
  `fastha.daemon.control`, root only). The parent proxies `fastha status` to it.
- `FASTHA_CONFIG_FILE`, `FASTHA_CONFIG_ID`: the file to re-read on SIGHUP. The parent
  has already validated it; re-reading here keeps the child independent of the parent's
  memory (the file may have changed again since: then it is validated again, and an
  invalid one keeps the old config, as in the parent).

In the child's runner, inside its running loop:

    from fastha.daemon import child_status

    server = await child_status.serve_from_env({
        "status": lambda req: runner.status_dict(),   # JSON-able, see fastha.daemon.metrics
        "dump": lambda req: runner.dump_dict(),
    })
    # in the status dict: "timer": child_status.timer_status(precise_timer)
    loop.add_signal_handler(signal.SIGHUP, on_hup)   # on_hup: child_status.reload_config()
    ...
    await child_status.close(server)

A handler may be a coroutine function. It runs on the child's loop, so it must be quick
(it reads state, it does not compute it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from fastha.daemon.control import ROOT_ONLY, Handler, JsonServer

log = logging.getLogger("fastha.daemon")

ENV_SOCKET = "FASTHA_CHILD_SOCKET"
ENV_CONFIG = "FASTHA_CONFIG_FILE"
ENV_CONFIG_ID = "FASTHA_CONFIG_ID"


async def serve(
    path: str, handlers: Mapping[str, Handler], allowed_uids: frozenset[int] = ROOT_ONLY
) -> JsonServer:
    """Answer `handlers` on `path` from the running loop until `close`."""
    return await JsonServer(path, handlers, allowed_uids).start()


async def serve_from_env(
    handlers: Mapping[str, Handler], allowed_uids: frozenset[int] = ROOT_ONLY
) -> JsonServer | None:
    """`serve` on $FASTHA_CHILD_SOCKET; None when the child runs without a parent."""
    path = os.environ.get(ENV_SOCKET)
    if not path:
        return None
    try:
        return await serve(path, handlers, allowed_uids)
    except OSError as exc:
        # Status is a convenience: failing to offer it must not stop VRRP.
        log.error("Cannot serve status on %s: %s", path, exc)
        return None


async def close(server: JsonServer | None) -> None:
    if server is not None:
        await server.close()


def reload_config(path: str | None = None, config_id: str | None = None) -> Any:
    """Re-read the configuration for a reload: the new model, or None (errors logged
    with file:line, keep running the old one)."""
    from fastha.config.loader import load
    from fastha.config.preprocess import default_config_id

    path = path or os.environ.get(ENV_CONFIG)
    if not path:
        log.error("Reload: no configuration file ($%s unset)", ENV_CONFIG)
        return None
    if config_id is None:
        config_id = os.environ.get(ENV_CONFIG_ID) or default_config_id()
    result = load(path, config_id)
    for diag in result.diagnostics:
        log.warning("%s", diag if diag.where is not None else f"{path}: {diag}")
    if not result.ok:
        log.error("Reload: %s has errors; keeping the running configuration", path)
        return None
    return result.config


def timer_status(timer: Any) -> dict[str, Any]:
    """A child's precise timer for its `status` answer: the lateness histogram with its
    bucket bounds (what fastha.daemon.metrics exposes) and the wakeup counters."""
    from fastha.wire.timer import lateness_bucket_bounds_ns

    return {
        "lateness_histogram": list(timer.lateness_histogram()),
        "bounds_ns": lateness_bucket_bounds_ns(),
        "fired": timer.fired,
        "wakeups": timer.wakeups,
        "spurious_wakeups": timer.spurious_wakeups,
    }
