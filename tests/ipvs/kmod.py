"""Load kernel modules inside the UML guest without kmod: modules.dep + finit_module(2).

The guest is the host's read-only root seen through hostfs, and the host image need not
carry kmod; the UML modules sit under /usr/lib/uml/modules/<release>. Usage:
``python kmod.py [--entropy FILE] overlay ip_vs ip_vs_rr ...`` (names as modprobe takes
them).

``--entropy FILE`` first credits the bytes of FILE (written by the host) to the guest's
random pool: a fresh UML kernel's getrandom() blocks for minutes, and Python calls it at
startup (hash seed) unless PYTHONHASHSEED is set, which init.sh does for this script only.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys

SYS_finit_module = 313  # x86_64; UML's userspace ABI is the host's


def _moddir() -> str:
    release = os.uname().release
    for base in ("/lib/modules", "/usr/lib/uml/modules"):
        path = os.path.join(base, release)
        if os.path.exists(os.path.join(path, "modules.dep")):
            return path
    raise SystemExit(f"kmod: no modules.dep for {release}")


def _deps(moddir: str) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            path, _, rest = line.partition(":")
            name = os.path.basename(path).removesuffix(".ko").replace("-", "_")
            table[name] = [path, *rest.split()]
    return table


def load(names: list[str]) -> None:
    moddir = _moddir()
    table = _deps(moddir)
    libc = ctypes.CDLL(None, use_errno=True)
    done: set[str] = set()
    for name in names:
        entry = table.get(name.replace("-", "_"))
        if entry is None:
            raise SystemExit(f"kmod: unknown module {name}")
        path, deps = entry[0], entry[1:]
        for rel in [*reversed(deps), path]:  # modules.dep lists deps nearest first
            if rel in done:
                continue
            fd = os.open(os.path.join(moddir, rel), os.O_RDONLY | os.O_CLOEXEC)
            try:
                if libc.syscall(SYS_finit_module, fd, b"", 0) != 0:
                    err = ctypes.get_errno()
                    if err != errno.EEXIST:
                        raise SystemExit(f"kmod: {rel}: {os.strerror(err)}")
            finally:
                os.close(fd)
            done.add(rel)


RNDADDENTROPY = 0x40085203  # <linux/random.h>: _IOW('R', 0x03, int[2])


def add_entropy(path: str) -> None:
    import fcntl
    import struct

    with open(path, "rb") as f:
        seed = f.read(512)
    req = struct.pack("ii", len(seed) * 8, len(seed)) + seed
    fd = os.open("/dev/urandom", os.O_WRONLY)
    try:
        fcntl.ioctl(fd, RNDADDENTROPY, req)
    finally:
        os.close(fd)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--entropy"]:
        add_entropy(args[1])
        args = args[2:]
    load(args)
