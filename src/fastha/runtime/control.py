"""The control socket: newline-delimited JSON over a Unix stream socket, root only.

Design (the simplest that stays robust when a child is busy, dead or restarting):

- The parent listens on `/run/fastha/control.sock` (mode 0600, and every peer's
  SO_PEERCRED uid must be 0: the mode keeps others out, the check keeps a mistaken
  chmod from letting them in).
- Each child listens on its own socket (`/run/fastha/vrrp.sock`, `check.sock`), given to
  it in `$FASTHA_CHILD_SOCKET` by the parent, and answers the same protocol from a
  callable run on its own loop (`fastha.runtime.child_status`). The parent proxies:
  `status` and `dump` ask each running child with a timeout and put its answer (or the
  error: "not running", "timed out") under the child's name. Nothing is cached, so an
  answer is never stale, and a wedged child cannot wedge the parent.
- `reload` runs the parent's reload (validate off to the side, then signal the children)
  and answers whether the new file was accepted and, if not, every error.

One request per line, one response per line, on one connection as often as wanted:

    -> {"cmd": "status"}
    <- {"ok": true, "result": {...}}
    <- {"ok": false, "error": "unknown command 'x'"}
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

log = logging.getLogger("fastha.daemon")

MAX_REQUEST = 1 << 20  # one request line
MAX_RESPONSE = 64 << 20  # a dump of a large configuration
ROOT_ONLY: frozenset[int] = frozenset({0})

Handler = Callable[[dict[str, Any]], Any | Awaitable[Any]]


class ControlError(Exception):
    """The daemon answered with an error, or could not be reached."""


def peer_uid(sock: socket.socket | Any) -> int:
    """The connecting process's uid (SO_PEERCRED: pid, uid, gid as three ints)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    uid: int = struct.unpack("3i", raw)[1]
    return uid


def _default(obj: Any) -> Any:
    # Enums, paths, addresses: as text rather than a failed response.
    return str(obj)


# orjson is imported where it is used, not above: with uuid, datetime and platform it
# costs a child 0.5-0.8 MB of RSS, for nothing until someone asks it something.


def encode(message: Mapping[str, Any]) -> bytes:
    import orjson

    return orjson.dumps(message, default=_default, option=orjson.OPT_NON_STR_KEYS) + b"\n"


def _bind(path: str) -> socket.socket:
    """A listening socket at `path`, mode 0600 from the moment it exists.

    A stale socket left by a crashed daemon is replaced; a live one (something answers
    on it) is an error: two daemons must not share a control socket."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, mode=0o755, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # nobody listening: stale
            else:
                raise OSError(f"{path}: another daemon is listening on it")
            finally:
                probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(16)
    sock.setblocking(False)
    return sock


class JsonServer:
    """Serves `handlers[cmd](request)` over a Unix socket; see the module docstring."""

    def __init__(
        self,
        path: str,
        handlers: Mapping[str, Handler],
        allowed_uids: frozenset[int] = ROOT_ONLY,
    ) -> None:
        self.path = path
        self.handlers = dict(handlers)
        self.allowed_uids = allowed_uids
        self.server: asyncio.AbstractServer | None = None
        self.requests = 0
        self._clients: set[asyncio.Task[Any]] = set()

    async def start(self) -> JsonServer:
        sock = _bind(self.path)
        self.server = await asyncio.start_unix_server(self._client, sock=sock, limit=MAX_REQUEST)
        return self

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            # A client waiting on a slow handler must not outlive the server.
            for task in list(self._clients):
                task.cancel()
            if self._clients:
                await asyncio.wait(set(self._clients))
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    async def answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": 'a request is a JSON object with "cmd"'}
        handler = self.handlers.get(request["cmd"])
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            return {"ok": False, "error": f"unknown command {request['cmd']!r} (known: {known})"}
        try:
            result = handler(request)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            log.exception("control: %s failed", request["cmd"])
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True, "result": result}

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            uid = peer_uid(writer.get_extra_info("socket"))
            if uid not in self.allowed_uids:
                log.warning("control: refused a client with uid %d on %s", uid, self.path)
                # Read its request first, so the refusal is the answer to it.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(reader.readline(), 5.0)
                writer.write(encode({"ok": False, "error": "permission denied: root only"}))
                await writer.drain()
                return
            import orjson

            while line := await reader.readline():
                self.requests += 1
                try:
                    request = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    response: dict[str, Any] = {"ok": False, "error": f"bad JSON: {exc}"}
                else:
                    response = await self.answer(request)
                writer.write(encode(response))
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass  # a client that went away or sent a line over MAX_REQUEST
        except asyncio.CancelledError:
            pass  # close(): the stream machinery must not see a cancelled handler
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _unwrap(raw: bytes, path: str) -> Any:
    import orjson

    if not raw:
        raise ControlError(f"{path}: connection closed without an answer")
    response = orjson.loads(raw)
    if not response.get("ok"):
        raise ControlError(str(response.get("error", "unknown error")))
    return response.get("result")


async def request(path: str, cmd: str, timeout: float = 5.0, **args: Any) -> Any:
    """One request on the running loop (the parent asking a child); raises ControlError."""

    async def exchange() -> bytes:
        reader, writer = await asyncio.open_unix_connection(path, limit=MAX_RESPONSE)
        try:
            writer.write(encode({"cmd": cmd, **args}))
            await writer.drain()
            return await reader.readline()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    try:
        raw = await asyncio.wait_for(exchange(), timeout)
    except TimeoutError:
        raise ControlError(f"{path}: timed out after {timeout} s") from None
    except OSError as exc:
        raise ControlError(f"{path}: {exc.strerror or exc}") from None
    return _unwrap(raw, path)


def request_sync(path: str, cmd: str, timeout: float = 10.0, **args: Any) -> Any:
    """One request from a command-line tool (no loop); raises ControlError."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                # A server that refuses us may close first; its answer is still there.
                sock.sendall(encode({"cmd": cmd, **args}))
            chunks: list[bytes] = []
            size = 0
            while not chunks or not chunks[-1].endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE:
                    raise ControlError(f"{path}: answer larger than {MAX_RESPONSE} bytes")
        except TimeoutError:
            raise ControlError(f"{path}: timed out after {timeout} s") from None
        except OSError as exc:
            raise ControlError(f"{path}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    return _unwrap(b"".join(chunks), path)
