"""Probe tests run real servers on loopback; every probe runs on uvloop like the daemon."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Coroutine
from typing import Any

import pytest
import uvloop

from fastha.check.spec import Endpoint


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        return r.run(coro)


def ep(port: int, host: str = "127.0.0.1", timeout: float = 2.0, **kw: Any) -> Endpoint:
    return Endpoint(host=ipaddress.ip_address(host), port=port, connect_timeout=timeout, **kw)


@pytest.fixture
def runp():
    return run
