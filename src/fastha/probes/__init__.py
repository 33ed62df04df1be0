"""Probes: one coroutine per checker kind, `await probe(spec, ctx) -> Outcome`.

Every probe is bounded by its checker's connect_timeout (MISC_CHECK by misc_timeout),
never blocks the loop, and turns every failure into `Outcome(ok=False, reason=...)`:
an exception escaping a probe is a bug, and the scheduler still counts it as a failure.

    ctx = ProbeContext(scripts=ScriptRunner())
    outcome = await run_probe(spec, ctx)
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from fastha.check.health import Outcome
from fastha.check.spec import ProbeSpec, TlsSpec
from fastha.drivers.scripts import ScriptRunner

if TYPE_CHECKING:
    import ssl

    from fastha.probes._net import Connector


@dataclass(slots=True)
class ProbeContext:
    """What probes share: the script runner (MISC_CHECK), TLS contexts (SSL_GET) and
    the connect watcher (TCP_CHECK, HTTP_GET, SSL_GET; the scheduler sets it up on its
    precise timer)."""

    scripts: ScriptRunner | None = None
    connector: Connector | None = None
    _tls: dict[TlsSpec, ssl.SSLContext] = field(default_factory=dict)

    def connects(self) -> Connector:
        """The connect watcher (made on the running loop at first use)."""
        c = self.connector
        if c is None or c.loop.is_closed():  # (no get_running_loop: a getpid per call)
            from fastha.probes._net import Connector

            c = self.connector = Connector()
        return c

    def tls_context(self, tls: TlsSpec) -> ssl.SSLContext:
        """keepalived's SSL block: no peer verification unless `ca` is given (then the
        chain is verified, not the host name); client certificate from certificate/key."""
        ctx = self._tls.get(tls)
        if ctx is None:
            # Here, not at the top: OpenSSL (~4.5 MB of RSS) only in a checker that has
            # an SSL_GET (the checker's loop runs without it: fastha.runtime.notls).
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            if tls.ca:
                ctx.load_verify_locations(cafile=tls.ca)
                ctx.verify_mode = ssl.CERT_REQUIRED
            else:
                ctx.verify_mode = ssl.CERT_NONE
            if tls.certificate:
                ctx.load_cert_chain(tls.certificate, tls.key or None, tls.password or None)
            self._tls[tls] = ctx
        return ctx

    def script_runner(self) -> ScriptRunner:
        if self.scripts is None:
            self.scripts = ScriptRunner(max_running=64)
        return self.scripts


class Pending(Protocol):
    """A callback probe in flight: ``cancel()`` stops it (its ``done`` never called)."""

    def cancel(self) -> None: ...


ProbeFn = Callable[[Any, ProbeContext], Awaitable[Outcome]]
# The callback form of a probe (`tcp.start`, `http.start`): start(spec, ctx, done, now_ns)
# calls done(outcome, now_ns) exactly once (now_ns: when it ended); it returns what to
# cancel while the probe runs, or None when it already called done.
ProbeDone = Callable[[Outcome, int], None]
StartFn = Callable[[Any, ProbeContext, ProbeDone, int], Pending | None]


async def awaited(start: Callable[..., Pending | None], spec: Any, ctx: ProbeContext) -> Outcome:
    """The coroutine form of a callback probe (its ``probe``): the outcome ``start``
    hands to ``done``; cancelled, the probe in flight is cancelled too."""
    fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
    pending = start(spec, ctx, lambda outcome, _now: fut.set_result(outcome))
    try:
        return await fut
    finally:
        if pending is not None and not fut.done():
            pending.cancel()


# kind -> module, imported at the first probe of that kind: a checker with TCP_CHECKs
# only never loads dnspython (~3 MB of RSS) nor the HTTP probe's regex (~2 MB).
_MODULES = {
    "TCP_CHECK": "tcp",
    "HTTP_GET": "http",
    "SSL_GET": "http",
    "SMTP_CHECK": "smtp",
    "DNS_CHECK": "dns",
    "MISC_CHECK": "misc",
    "UDP_CHECK": "udp",
    "PING_CHECK": "ping",
    "FILE_CHECK": "file",
}

_PROBES: dict[str, ProbeFn] = {}


def _load(kind: str) -> None:
    _PROBES[kind] = importlib.import_module(f"fastha.probes.{_MODULES[kind]}").probe


async def run_probe(spec: ProbeSpec, ctx: ProbeContext) -> Outcome:
    if spec.kind not in _PROBES:
        _load(spec.kind)
    return await _PROBES[spec.kind](spec, ctx)


_STARTERS: dict[str, StartFn | None] = {}
_CALLBACK_KINDS = ("TCP_CHECK", "HTTP_GET", "SSL_GET")


def starter(kind: str) -> StartFn | None:
    """The callback form of the probe for ``kind``, where there is one."""
    try:
        return _STARTERS[kind]
    except KeyError:
        pass
    fn: StartFn | None = None
    if kind in _CALLBACK_KINDS:
        fn = importlib.import_module(f"fastha.probes.{_MODULES[kind]}").start
    _STARTERS[kind] = fn
    return fn
