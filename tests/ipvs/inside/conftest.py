"""Runs inside the UML guest (tests/ipvs/uml.py): a real ip_vs, ipvsadm as the oracle."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from fastha.drivers.ipvs import IPVS


def ipvsadm(*args: str) -> str:
    return subprocess.run(["ipvsadm", *args], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip


@pytest.fixture
def run():
    """Run a coroutine taking the driver, on a fresh table; flush after."""
    import uvloop

    def _run(coro_fn):
        async def main():
            async with IPVS() as ipvs:
                await ipvs.flush()
                try:
                    return await coro_fn(ipvs)
                finally:
                    await ipvs.flush()

        return uvloop.run(main())

    return _run


@pytest.fixture
def asyncio_run():
    return asyncio.run
