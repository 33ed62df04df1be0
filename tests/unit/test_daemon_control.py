"""The control protocol on real Unix sockets: server, async and sync clients, and the
children's hook (fastha.runtime.child_status)."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvloop

from fastha.runtime import child_status
from fastha.runtime.control import ControlError, JsonServer, request, request_sync

pytestmark = pytest.mark.unit
ME = frozenset({os.getuid()})


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    errors: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: errors.append(ctx))
        return await fn()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        result = r.run(main())
    assert not errors, errors
    return result


def test_requests_answers_and_errors(tmp_path: Path) -> None:
    path = str(tmp_path / "ctl" / "control.sock")

    async def slow(_req: dict[str, Any]) -> str:
        await asyncio.sleep(30)
        return "late"

    def boom(_req: dict[str, Any]) -> None:
        raise RuntimeError("broken")

    async def go() -> None:
        server = await JsonServer(
            path,
            {
                "status": lambda req: {"n": req.get("n", 0), "path": Path("/x")},
                "async": lambda req: asyncio.sleep(0, result=[1, 2]),
                "slow": slow,
                "boom": boom,
            },
            ME,
        ).start()
        try:
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            assert await request(path, "status", n=3) == {"n": 3, "path": "/x"}
            assert await request(path, "async") == [1, 2]
            with pytest.raises(ControlError, match="unknown command 'nope'"):
                await request(path, "nope")
            with pytest.raises(ControlError, match="RuntimeError: broken"):
                await request(path, "boom")
            with pytest.raises(ControlError, match="timed out"):
                await request(path, "slow", timeout=0.2)
            # Several requests on one connection, and a line that is not JSON.
            reader, writer = await asyncio.open_unix_connection(path)
            writer.write(b'{"cmd": "status", "n": 1}\nnot json\n{"cmd": "status"}\n')
            await writer.drain()
            answers = [orjson.loads(await reader.readline()) for _ in range(3)]
            writer.close()
            assert answers[0] == {"ok": True, "result": {"n": 1, "path": "/x"}}
            assert answers[1]["ok"] is False and "bad JSON" in answers[1]["error"]
            assert answers[2]["result"]["n"] == 0
            # The blocking client a command-line tool uses, from a thread.
            got = await asyncio.to_thread(request_sync, path, "status", 5.0, n=9)
            assert got["n"] == 9
        finally:
            await server.close()
        assert not os.path.exists(path)

    run(go)


def test_a_stale_socket_is_replaced_a_live_one_is_not(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: a crashed daemon's leftover

    async def go() -> None:
        server = await JsonServer(path, {"status": lambda r: 1}, ME).start()
        try:
            assert await request(path, "status") == 1
            with pytest.raises(OSError, match="another daemon"):
                await JsonServer(path, {}, ME).start()
            assert await request(path, "status") == 1
        finally:
            await server.close()

    run(go)


def test_a_refused_uid_gets_an_error_answer(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sock")

    async def go() -> None:
        server = await JsonServer(
            path, {"status": lambda r: 1}, frozenset({os.getuid() + 1})
        ).start()
        try:
            with pytest.raises(ControlError, match="permission denied: root only"):
                await request(path, "status")
        finally:
            await server.close()

    run(go)


def test_unreachable_daemon(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="No such file"):
        request_sync(str(tmp_path / "absent.sock"), "status")


def test_child_hook_serves_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = str(tmp_path / "vrrp.sock")

    async def go() -> None:
        monkeypatch.delenv(child_status.ENV_SOCKET, raising=False)
        assert await child_status.serve_from_env({"status": lambda r: 1}) is None
        monkeypatch.setenv(child_status.ENV_SOCKET, path)
        server = await child_status.serve_from_env({"status": lambda r: {"instances": []}}, ME)
        assert server is not None
        try:
            assert await request(path, "status") == {"instances": []}
        finally:
            await child_status.close(server)

    run(go)


def test_child_reload_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text("global_defs {\n  router_id one\n}\n")
    monkeypatch.setenv(child_status.ENV_CONFIG, str(conf))
    monkeypatch.setenv(child_status.ENV_CONFIG_ID, "x")
    config = child_status.reload_config()
    assert config is not None and config.global_defs.router_id == "one"
    conf.write_text("vrrp_instance VI_1 {\n  virtual_router_id 300\n}\n")
    assert child_status.reload_config() is None
