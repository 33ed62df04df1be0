"""asyncio and uvloop without OpenSSL, for the processes that never speak TLS.

Importing asyncio or uvloop imports ``ssl``, and ``ssl`` maps OpenSSL's libssl and
libcrypto and initialises them: ~4.5 MB of RSS in each process (issue 19). Only the
checker speaks TLS (SSL_GET, SMTP alerts over it); the parent, the VRRP child and the
BFD child never do. ``import_loops()`` imports asyncio (and uvloop) there with an inert
stand-in for ``ssl`` in ``sys.modules``: it holds the few names the two read when they
are imported (uvloop's includes/stdlib.pxi, asyncio's sslproto and selector_events), so
both import and run, and their TLS paths refuse with ``NoTls`` instead of touching a
library that is not there. The stand-in leaves ``sys.modules`` at once: a later
``import ssl`` (smtplib's, say) loads the real module, and the process pays for it only
then; only the event loop's own TLS stays off in such a process.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any, NoReturn


class NoTls(RuntimeError):
    """TLS asked of an event loop imported by ``import_loops``."""


def _refuse(*_args: Any, **_kwargs: Any) -> NoReturn:
    raise NoTls("this process runs its event loop without TLS (fastha.runtime.notls)")


class _Inert:
    """Stands for one of ssl's classes: no instance is ever made."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _refuse()


def _stand_in() -> types.ModuleType:
    ssl = types.ModuleType("ssl", "an inert stand-in: fastha.runtime.notls")
    # The exceptions are classes of their own, never raised: nothing here does TLS.
    error = type("SSLError", (OSError,), {})
    names: dict[str, Any] = {
        "SSLContext": type("SSLContext", (_Inert,), {}),
        "SSLSocket": type("SSLSocket", (_Inert,), {}),
        "SSLObject": type("SSLObject", (_Inert,), {}),
        "MemoryBIO": type("MemoryBIO", (_Inert,), {}),
        "SSLError": error,
        "SSLWantReadError": type("SSLWantReadError", (error,), {}),
        "SSLWantWriteError": type("SSLWantWriteError", (error,), {}),
        "SSLSyscallError": type("SSLSyscallError", (error,), {}),
        "SSLZeroReturnError": type("SSLZeroReturnError", (error,), {}),
        "CertificateError": type("CertificateError", (ValueError,), {}),
        "create_default_context": _refuse,
        # OpenSSL's SSL_get_error() codes (ssl.h), read by uvloop into C ints.
        "SSL_ERROR_WANT_READ": 2,
        "SSL_ERROR_WANT_WRITE": 3,
        "SSL_ERROR_SYSCALL": 5,
    }
    ssl.__dict__.update(names)
    return ssl


def import_loops(*, uvloop: bool) -> bool:
    """Import asyncio (and uvloop) with the inert ``ssl``; call it before anything else
    imports them. False, and nothing done, when it is too late (one is loaded) or the
    real ``ssl`` is already there."""
    loaded = ("ssl", "asyncio", "uvloop")
    if any(name in sys.modules for name in loaded):
        return False
    sys.modules["ssl"] = _stand_in()
    try:
        importlib.import_module("asyncio")
        if uvloop:
            importlib.import_module("uvloop")
    finally:
        del sys.modules["ssl"]
    return True
