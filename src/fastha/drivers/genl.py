"""Generic-netlink request/response on the event loop: the transport under drivers/ipvs.

pyroute2's async generic-netlink socket cannot run on uvloop ("invalid family 16"), so
requests go over a plain AF_NETLINK socket (drivers/nlsocket) read with
``loop.add_reader``: the same on asyncio and uvloop.

Writes are batched: many requests go in one datagram, the kernel runs them in order and
acks each one (``NLM_F_ACK``), so thousands of requests cost a handful of syscalls. Each
request has its own sequence number; a batch completes when every ack (or a dump's
NLMSG_DONE) is in, with every reply message collected per request and every errno.

    genl = GenlSocket()
    await genl.open("IPVS")                 # resolves the family id
    batch = await genl.send([payload, ...], genl.family, NLM_F_REQUEST | NLM_F_ACK)
    batch.errors, batch.msgs                # per request: errno (0: ok), raw replies
    genl.close()
"""

from __future__ import annotations

import asyncio
import errno
import os
import struct
from collections.abc import Sequence
from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST
from pyroute2.netlink.generic import CTRL_CMD_GETFAMILY, GENL_ID_CTRL, ctrlmsg

from fastha.drivers import nlsocket
from fastha.drivers.nlsocket import NLMSG_DONE, NLMSG_ERROR

NETLINK_GENERIC = 16
_HDR = nlsocket.NLMSG_HDR
GENL_HDR = struct.Struct("=BBH")  # genlmsghdr: cmd, version, reserved
_BATCH_BYTES = 48 * 1024  # per sendmsg; the kernel acks each message (~36 bytes + skb)


class GenlError(OSError):
    """The kernel refused a request."""


class Batch:
    """Requests sent together: per request its reply messages and its errno."""

    __slots__ = ("errors", "future", "left", "msgs")

    def __init__(self, future: asyncio.Future[Any], n: int) -> None:
        self.future, self.left = future, n
        self.msgs: list[list[bytes]] = [[] for _ in range(n)]
        self.errors = [0] * n


class GenlSocket:
    """One generic-netlink socket; ``open()`` inside the running loop."""

    def __init__(self, error: type[OSError] = GenlError) -> None:
        self.family = 0
        self.name = ""
        self._error = error  # raised for a refused request (the driver's own class)
        self._reader: nlsocket.Reader | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seq = 0
        # seq -> (batch, index in batch); a batch completes when all its acks are in
        self._pending: dict[int, tuple[Batch, int]] = {}

    async def open(self, name: str, missing: str) -> None:
        """Open the socket and resolve the family ``name``; ``missing`` is the
        message when the kernel has no such family (a module not loaded)."""
        self._loop = asyncio.get_running_loop()
        self.name = name
        sock = nlsocket.open_socket(
            NETLINK_GENERIC, rcvbuf=8 << 20, force_rcvbuf=True, sndbuf=1 << 20
        )
        self._reader = nlsocket.Reader(
            sock, self._dispatch, self._on_error, bufsize=1 << 17, budget=256
        )
        self._reader.attach(self._loop)
        msg = ctrlmsg()
        msg["cmd"] = CTRL_CMD_GETFAMILY
        msg["version"] = 1
        msg["attrs"] = [["CTRL_ATTR_FAMILY_NAME", name]]
        replies = await self.request([msg], GENL_ID_CTRL, ctrlmsg)
        if not replies[0]:
            raise self._error(errno.ENOENT, missing)
        self.family = replies[0][0].get_attr("CTRL_ATTR_FAMILY_ID")

    def close(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()
        for batch, _ in self._pending.values():
            if not batch.future.done():
                batch.future.set_exception(ConnectionError(f"{self.name} socket closed"))
        self._pending.clear()

    # -- receive

    def _on_error(self, exc: OSError) -> bool:
        """ENOBUFS: acks lost; fail everything in flight."""
        for batch, _ in list(self._pending.values()):
            if not batch.future.done():
                batch.future.set_exception(exc)
        self._pending.clear()
        return False

    def _dispatch(self, data: bytes) -> None:
        for off, length, mtype, _flags, seq in nlsocket.messages(data)[0]:
            entry = self._pending.get(seq)
            if entry is not None:
                batch, idx = entry
                if mtype == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, off + _HDR.size)
                    self._finish(seq, batch, idx, -code)
                elif mtype == NLMSG_DONE:
                    self._finish(seq, batch, idx, 0)
                else:
                    batch.msgs[idx].append(data[off : off + length])

    def _finish(self, seq: int, batch: Batch, idx: int, err: int) -> None:
        del self._pending[seq]
        batch.errors[idx] = err
        batch.left -= 1
        if batch.left == 0 and not batch.future.done():
            batch.future.set_result(None)

    # -- send

    async def send(self, msgs: Sequence[Any], mtype: int, flags: int) -> Batch:
        """Send ``msgs`` in as few datagrams as fit; wait for all. Each is a pyroute2
        message or the bytes after the netlink header (genl header + attributes)."""
        assert self._reader is not None and self._loop is not None
        batch = Batch(self._loop.create_future(), len(msgs))
        if not msgs:
            return batch
        chunk: list[bytes] = []
        size = 0
        pid = 0
        for i, msg in enumerate(msgs):
            self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
            if isinstance(msg, bytes):
                data = _HDR.pack(_HDR.size + len(msg), mtype, flags, self._seq, pid) + msg
            else:
                msg["header"]["type"] = mtype
                msg["header"]["flags"] = flags
                msg["header"]["sequence_number"] = self._seq
                msg["header"]["pid"] = pid
                msg.encode()
                data = bytes(msg.data)
            self._pending[self._seq] = (batch, i)
            chunk.append(data)
            size += len(data)
            if size >= _BATCH_BYTES:
                self._reader.send(b"".join(chunk))
                chunk, size = [], 0
        if chunk:
            self._reader.send(b"".join(chunk))
        await batch.future
        return batch

    async def request(
        self, msgs: Sequence[Any], mtype: int, cls: type, *, dump: bool = False
    ) -> list[list[Any]]:
        """Send pyroute2 messages, raise on the first refusal, decode the replies with
        ``cls``: per request, its reply messages."""
        flags = NLM_F_REQUEST | NLM_F_ACK | (NLM_F_DUMP if dump else 0)
        batch = await self.send(msgs, mtype, flags)
        for err in batch.errors:
            if err:
                raise self._error(err, os.strerror(err))
        out = []
        for raws in batch.msgs:
            decoded = []
            for raw in raws:
                m = cls(raw)
                m.decode()
                decoded.append(m)
            out.append(decoded)
        return out

    async def dump(self, cmd: int, version: int, body: bytes = b"") -> list[bytes]:
        """The raw reply messages of one dump request of this family (undecoded)."""
        batch = await self.send(
            [GENL_HDR.pack(cmd, version, 0) + body],
            self.family,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP,
        )
        if batch.errors[0]:
            raise self._error(batch.errors[0], os.strerror(batch.errors[0]))
        return batch.msgs[0]
