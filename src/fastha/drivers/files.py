"""Files a root daemon writes or reads in places other users can reach.

keepalived was burned here (CVE-2018-19044/19045/19046: its /tmp dump files followed
planted symlinks and came out world-writable); its answer is `fopen_safe()` (lib/utils.c):
a mkostemp() temporary renamed over the target. fastha does the same, and checks the
directory first. Every writer and reader of such a file goes through this module:

- `write_atomic(path, data)`: the dump files (keepalived.data, keepalived_check.data,
  keepalived.stats, keepalived.json) and the children's config snapshot. The directory
  is reached from `/` one component at a time without following symlinks, each
  component owned by root (or us) and not writable by others unless sticky (as /tmp):
  in a sticky directory nobody but root can remove or rename what root made there.
  The temporary is O_CREAT|O_EXCL|O_NOFOLLOW with a random name (a planted file or
  symlink is never opened), written, fchmod'ed and renamed over the target: a planted
  target -- symlink, hard link or someone's file -- is replaced, never written through.
- `read_private(path)`: the config snapshot: O_NOFOLLOW, a regular file owned by us
  and unreadable by others, in a directory `write_atomic` would accept.
- `read_small(path)`: track_file / FILE_CHECK values: O_NONBLOCK|O_NOFOLLOW, regular
  files only (a FIFO planted there would block open() and the VRRP loop with it).
- `open_fifo(path, flags, owners)`: notify_fifo: O_NOFOLLOW, a FIFO, owned by one of
  `owners`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Collection

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafePath(OSError):
    """A path we refuse to use; the message says which component and why."""


def _trusted_uids() -> frozenset[int]:
    return frozenset({0, os.geteuid()})


def _check_mode(st: os.stat_result, shown: str) -> None:
    if st.st_uid not in _trusted_uids():
        raise UnsafePath(f"{shown} is owned by uid {st.st_uid}, not root")
    if (
        stat.S_ISDIR(st.st_mode)
        and st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        and not st.st_mode & stat.S_ISVTX
    ):
        raise UnsafePath(f"{shown} is writable by others and not sticky")


def _check_dir(fd: int, shown: str) -> None:
    _check_mode(os.fstat(fd), shown)


def _check_links(directory: str) -> None:
    """The path as written, too: a symlink on the way (/tmp/x -> /etc, made by someone
    else) would steer our file into a directory of its maker's choosing, and its real
    path alone would pass. Every symlink must be root's, in directories that are."""
    path = ""
    for part in (p for p in os.path.abspath(directory).split("/") if p):
        path += "/" + part
        _check_mode(os.lstat(path), path)


def open_dir(directory: str) -> int:
    """An fd on `directory` after checking every component of its real path from `/`
    (root-owned, not writable by others unless sticky; no symlink swapped in since)
    and every symlink on the way (root's). Raises UnsafePath (or OSError: missing)."""
    _check_links(directory or ".")
    real = os.path.realpath(directory or ".")
    fd = os.open("/", _DIR_FLAGS)
    try:
        _check_dir(fd, "/")
        shown = ""
        for part in (p for p in real.split("/") if p):
            shown += "/" + part
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath(f"{shown} is not a directory (symlink?)") from None
                raise
            os.close(fd)
            fd = nxt
            _check_dir(fd, shown)
        return fd
    except BaseException:
        os.close(fd)
        raise


def write_atomic(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` with `data` (mode `mode`, owned by us) so that nobody else can
    redirect, pre-create or later change it. Raises UnsafePath or OSError."""
    directory, name = os.path.split(path)
    dfd = open_dir(directory or ".")
    try:
        for _ in range(100):
            tmp = f".{name}.{os.urandom(6).hex()}"
            try:
                fd = os.open(
                    tmp,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o600,
                    dir_fd=dfd,
                )
                break
            except FileExistsError:
                continue
        else:
            raise UnsafePath(f"{directory}: cannot create a temporary file")
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise
    finally:
        os.close(dfd)


def read_private(path: str) -> bytes:
    """The contents of a file only we could have written (see module doc)."""
    directory, name = os.path.split(path)
    dfd = open_dir(directory or ".")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    finally:
        os.close(dfd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(f"{path} is not a regular file")
        if st.st_uid != os.geteuid():
            raise UnsafePath(f"{path} is owned by uid {st.st_uid}, not by us")
        if st.st_mode & 0o077:
            raise UnsafePath(f"{path} has mode {stat.S_IMODE(st.st_mode):04o}, not 0600")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_small(path: str, limit: int = 128) -> bytes:
    """The first `limit` bytes of a regular file, never blocking on what is there
    instead. Raises OSError (UnsafePath for a symlink or anything not a regular file)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"{path} is a symlink") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePath(f"{path} is not a regular file")
        return os.read(fd, limit)
    finally:
        os.close(fd)


def open_fifo(path: str, flags: int, owners: Collection[int]) -> int:
    """`path` opened with `flags` | O_NONBLOCK | O_NOFOLLOW, when it is a FIFO owned by
    one of `owners`. Raises OSError (UnsafePath when it is not such a FIFO)."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePath(f"{path} is a symlink") from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISFIFO(st.st_mode):
        os.close(fd)
        raise UnsafePath(f"{path} is not a FIFO")
    if st.st_uid not in owners:
        os.close(fd)
        raise UnsafePath(f"{path} is owned by uid {st.st_uid}")
    return fd
