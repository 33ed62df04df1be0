"""drivers.inotify: a track file's directory watched as keepalived watches it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fastha.drivers.inotify import DirWatch

pytestmark = pytest.mark.unit


def test_a_write_wakes_the_waiter_and_nothing_does_not(tmp_path: Path) -> None:
    async def main() -> tuple[bool, bool, bool]:
        w = DirWatch()
        try:
            assert w.watch(str(tmp_path))
            quiet = await w.wait(0.05)  # nothing written: the timeout
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, (tmp_path / "f").write_text, "5\n")
            written = await w.wait(30)
            loop.call_later(0.05, (tmp_path / "f").unlink)
            deleted = await w.wait(30)
            return quiet, written, deleted
        finally:
            w.close()

    assert asyncio.run(main()) == (False, True, True)


def test_a_directory_that_does_not_exist_is_not_watched(tmp_path: Path) -> None:
    w = DirWatch()
    try:
        assert not w.watch(str(tmp_path / "missing"))
    finally:
        w.close()
