"""The hooks a child's runner calls: answer the parent's questions, reload its config.

The parent gives each child, in its environment:

- `FASTHA_CHILD_SOCKET`: where to answer `status` and `dump` (the control protocol of
  `fastha.runtime.control`, root only). The parent proxies `fastha status` to it.
- `FASTHA_CONFIG_SNAPSHOT`: the configuration the parent validated last, pickled to a
  file in its run dir (`write_snapshots`, atomically, mode 0600; the checker's whole,
  the VRRP and BFD children's without the LVS part; read back only from a root-owned
  0600 regular file in a root-owned directory, see `read_snapshot`). A child loads it at
  start and on SIGHUP instead of re-reading the file: the file may have changed again
  since the parent validated it (half-written, broken), and a child must only ever run
  what the parent accepted -- a respawned child too.
- `FASTHA_CONFIG_FILE`, `FASTHA_CONFIG_ID`: the file itself, read only when there is no
  snapshot (a child run by hand, without a parent).

In the child's runner, inside its running loop:

    from fastha.runtime import child_status

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

import copyreg
import dataclasses
import io
import logging
import os
import pickle
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastha.config.source import NO_POSITIONS, Where
from fastha.drivers.files import read_private, write_atomic
from fastha.runtime.control import ROOT_ONLY, Handler, JsonServer

if TYPE_CHECKING:
    from fastha.config.model import Config

log = logging.getLogger("fastha.daemon")

ENV_SOCKET = "FASTHA_CHILD_SOCKET"
ENV_CONFIG = "FASTHA_CONFIG_FILE"
ENV_CONFIG_ID = "FASTHA_CONFIG_ID"
ENV_SNAPSHOT = "FASTHA_CONFIG_SNAPSHOT"
SNAPSHOT_NAME = "config.snapshot"


class SnapshotError(Exception):
    """The parent's snapshot cannot be read."""


def _mappingproxy(data: dict[Any, Any]) -> types.MappingProxyType[Any, Any]:
    return types.MappingProxyType(data)


def _no_positions() -> Mapping[str, Where]:
    return NO_POSITIONS


def _reduce_mappingproxy(m: types.MappingProxyType[Any, Any]) -> tuple[Any, ...]:
    # A model's `positions` (keyword -> file:line) serve validation, which the parent
    # did: a child never reads them, and they were two thirds of a real server's bytes.
    # (An empty mapping is the one shared empty mapping, whatever it stood for.)
    if all(type(v) is Where for v in m.values()):
        return (_no_positions, ())
    return (_mappingproxy, (dict(m),))


class _Pickler(pickle.Pickler):
    # The config model freezes its mappings in mappingproxy, which pickle refuses.
    dispatch_table = types.MappingProxyType(
        {**copyreg.dispatch_table, types.MappingProxyType: _reduce_mappingproxy}
    )


def dump_config(config: Any) -> bytes:
    buf = io.BytesIO()
    _Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(config)
    return buf.getvalue()


def write_snapshot(path: str, config: Any) -> None:
    """Write `config` to `path` atomically (a temporary file renamed over it, 0600):
    a child starting meanwhile reads the old snapshot or the new one, never half of one.
    The run directory must be root's (drivers.files.write_atomic): UnsafePath otherwise."""
    data = dump_config(config)
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    write_atomic(path, data, 0o600)


def without_lvs(config: Config) -> Config:
    """The model the VRRP and BFD children run: no virtual servers (nor groups, nor
    SSL), which they never read; a director's thousands of real servers stay in the
    parent and the checker."""
    return dataclasses.replace(config, virtual_servers=(), virtual_server_groups=(), ssl=None)


def snapshot_for(path: str, kind: str) -> str:
    """The snapshot file a child of `kind` loads (`write_snapshots` writes both)."""
    return path if kind == "check" else f"{path}.nolvs"


def write_snapshots(path: str, config: Config) -> None:
    """The checker's snapshot at `path`, and the VRRP and BFD children's beside it."""
    write_snapshot(path, config)
    write_snapshot(snapshot_for(path, "vrrp"), without_lvs(config))


def read_snapshot(path: str) -> Any:
    """The configuration in the parent's snapshot; SnapshotError when unreadable.

    Unpickling runs code, so only a file that nobody but us could have written is read:
    a regular file (not a symlink) owned by us, mode 0600, in a directory whose every
    component is root's and not writable by others unless sticky (read_private). The
    path is kept (rather than an inherited fd) because a child re-reads it on SIGHUP."""
    try:
        return pickle.loads(read_private(path))
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError) as exc:
        raise SnapshotError(f"cannot read configuration snapshot {path}: {exc}") from exc


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


def reload_config(path: str | None = None, config_id: str | None = None) -> Config | None:
    """The configuration for a reload: the new model, or None (errors logged, keep
    running the old one). The parent's snapshot when there is one ($FASTHA_CONFIG_SNAPSHOT),
    else the file re-read and validated here (errors with file:line)."""
    snapshot = os.environ.get(ENV_SNAPSHOT)
    if snapshot:
        try:
            config: Config = read_snapshot(snapshot)  # what the parent pickled
            return config
        except SnapshotError as exc:
            log.error("Reload: %s; keeping the running configuration", exc)
            return None
    path = path or os.environ.get(ENV_CONFIG)
    if not path:
        log.error("Reload: no configuration file ($%s unset)", ENV_CONFIG)
        return None
    # Here: a child with its parent's snapshot never loads the parser (~1 MB of RSS).
    from fastha.config.loader import load
    from fastha.config.preprocess import default_config_id

    if config_id is None:
        config_id = os.environ.get(ENV_CONFIG_ID) or default_config_id()
    result = load(path, config_id)
    for diag in result.diagnostics:
        log.warning("%s", diag if diag.where is not None else f"{path}: {diag}")
    if not result.ok:
        log.error("Reload: %s has errors; keeping the running configuration", path)
        return None
    loaded: Config = result.config
    return loaded


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
