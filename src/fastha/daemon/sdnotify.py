"""systemd `Type=notify` readiness (sd_notify(3)), without libsystemd.

systemd passes `$NOTIFY_SOCKET`: a datagram socket path, or an abstract one when it
starts with `@`. Each message is `KEY=VALUE` lines in one datagram. Since systemd 253 a
`Type=notify-reload` service announces a reload with `RELOADING=1` *and*
`MONOTONIC_USEC=` (CLOCK_MONOTONIC at the moment the reload began), then `READY=1` when
done; older systemd ignores the extra field.

    notify = Notifier.from_env()      # a no-op when not run by systemd
    notify.ready("running: 2 children")
    notify.reloading()                # ... then notify.ready() again
    notify.stopping()
"""

from __future__ import annotations

import contextlib
import os
import socket
import time


class Notifier:
    __slots__ = ("address", "sock")

    def __init__(self, address: str | None) -> None:
        self.address: str | bytes | None = None
        self.sock: socket.socket | None = None
        if not address:
            return
        # "@name" is the abstract namespace: a leading NUL byte on the wire.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_env(cls, unset: bool = True) -> Notifier:
        """From $NOTIFY_SOCKET; `unset` removes it so children do not talk to systemd
        for us (sd_notify's unset_environment)."""
        address = os.environ.get("NOTIFY_SOCKET")
        if unset:
            os.environ.pop("NOTIFY_SOCKET", None)
        return cls(address)

    @property
    def enabled(self) -> bool:
        return self.sock is not None

    def send(self, **fields: str | int) -> bool:
        """Send KEY=VALUE lines in one datagram; False when not enabled or it failed
        (systemd gone is no reason to stop a load balancer)."""
        if self.sock is None or self.address is None:
            return False
        payload = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            self.sock.sendto(payload, self.address)
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        fields: dict[str, str | int] = {"READY": 1}
        if status is not None:
            fields["STATUS"] = status
        return self.send(**fields)

    def reloading(self, status: str | None = "reloading") -> bool:
        fields: dict[str, str | int] = {
            "RELOADING": 1,
            "MONOTONIC_USEC": time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000,
        }
        if status is not None:
            fields["STATUS"] = status
        return self.send(**fields)

    def stopping(self, status: str | None = "stopping") -> bool:
        fields: dict[str, str | int] = {"STOPPING": 1}
        if status is not None:
            fields["STATUS"] = status
        return self.send(**fields)

    def status(self, text: str) -> bool:
        return self.send(STATUS=text)

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
