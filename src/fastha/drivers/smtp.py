"""SMTP alerts as keepalived sends them (keepalived/core/smtp.c), without blocking.

keepalived speaks plain SMTP: `HELO <smtp_helo_name or "localhost">`, `MAIL FROM:<from>`,
one `RCPT TO:<addr>` per notification_email, `DATA`, then these headers and the body:

    Date: Mon, 01 Mar 2021 09:44:08 +0000      (local time, strftime %a, %d %b %Y %H:%M:%S %z)
    From: <notification_email_from>
    Subject: [<router_id>] VRRP Instance VI_1 - Entering MASTER state
    X-Mailer: Keepalived
    To: a@example.com, b@example.com

    => VRRP Instance is now owning VRRP VIPs <=

and an empty line before the data's closing `.` (body_cmd: "%s\r\n" then "\r\n.\r\n").

Subjects and bodies (vrrp_notify.c, check_*.c):

    [rid] VRRP Instance NAME - Entering MASTER|BACKUP|FAULT state / - Stopping
    [rid] VRRP Group NAME - (same)
    [rid] Realserver [ip]:tcp:port of virtual server [ip]:tcp:port - UP|DOWN
    [rid] Virtualserver VS - subject

An address written `Name <addr>` is sent as `<addr>` in the envelope (keepalived takes
the part in angle brackets). The whole exchange is bounded by smtp_connect_timeout; a
failure is logged with keepalived's wording and never raised to the caller: an alert
must not disturb the process sending it.

    alerts = SmtpAlerts.from_config(config.global_defs)
    alerts.vrrp("VI_1", "MASTER")                 # fire and forget on the running loop
    alerts.real_server("[10.0.1.1]:tcp:80", "[10.0.0.1]:tcp:80", up=False,
                       body="=> TCP CHECK failed on service <=")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("fastha.smtp")

# vrrp_smtp_notifier() / vrrp_sync_smtp_notifier(): state -> (subject, body).
VRRP_INSTANCE_MAILS = {
    "MASTER": ("Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <="),
    "BACKUP": ("Entering BACKUP state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "FAULT": ("Entering FAULT state", "=> VRRP Instance is no longer owning VRRP VIPs <="),
    "STOP": ("Stopping", "=> VRRP Instance stopping <="),
}
VRRP_GROUP_MAILS = {
    "MASTER": ("Entering MASTER state", "=> All VRRP group instances are now in MASTER state <="),
    "BACKUP": ("Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <="),
    "FAULT": ("Entering FAULT state", "=> All VRRP group instances are now in FAULT state <="),
    "STOP": ("Stopping", "=> All VRRP group instances are now stopping <="),
}
# The checkers' bodies (check_tcp.c, check_http.c, ...): up, and down without a reason.
CHECK_SUCCEED = "=> CHECK succeed on service <="
CHECK_FAILED = "=> CHECK failed on service <="
TCP_CHECK_SUCCEED = "=> TCP CHECK succeed on service <="
MAX_HEADERS_LENGTH = 256  # keepalived truncates the subject here
MAX_BODY_LENGTH = 512  # and the body here (NUL included)
MAX_TO_LENGTH = 1023  # the To: header's addresses (SMTP_BUFFER_MAX, NUL excluded)


def format_endpoint(address: str, port: int, protocol: str = "tcp") -> str:
    """keepalived's inet_sockaddrtotrio(): `[10.0.0.1]:tcp:80`, as FMT_RS / FMT_VS."""
    return f"[{address}]:{protocol}:{port}"


_NO_CRLF = str.maketrans("", "", "\r\n")


def one_line(value: str) -> str:
    """A config-derived value for a header or an SMTP command: CR and LF removed (a
    quoted config string may hold them; they would start a header of their own, a
    `Bcc:` for one)."""
    return value.translate(_NO_CRLF)


# An address ends at the first character it cannot hold unquoted (RFC 5322's specials
# other than "@" and ".", and blanks): what follows would be ESMTP parameters or a second
# path of the config's making.
_ADDRESS = re.compile(r'[^\s()<>\[\]:;,\\"]*')


def envelope_address(address: str) -> str:
    """keepalived's MAIL FROM/RCPT TO argument: `Name <a@b>` -> `a@b`, up to the first
    character an unquoted address cannot hold."""
    address = one_line(address)
    if address.endswith(">") and "<" in address:
        address = address[address.rindex("<") + 1 : -1]
    m = _ADDRESS.match(address)
    return m.group() if m else ""


def rfc822_date(now: float | None = None) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S %z", time.localtime(now))


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    server: str
    port: int = 25
    emails: tuple[str, ...] = ()
    email_from: str = ""
    helo_name: str | None = None
    connect_timeout: float = 30.0
    router_id: str | None = None

    @property
    def enabled(self) -> bool:
        """keepalived sends only with both recipients and a server."""
        return bool(self.emails) and bool(self.server)


def settings_from_config(gdefs: Any) -> SmtpSettings | None:
    """From global_defs, with keepalived's defaults (from: keepalived@<host name>,
    router_id: the host name); None when alerts cannot be sent."""
    if not gdefs.smtp_server or not gdefs.notification_emails:
        return None
    host = socket.gethostname()
    return SmtpSettings(
        server=str(gdefs.smtp_server),
        port=int(gdefs.smtp_server_port),
        emails=tuple(gdefs.notification_emails),
        email_from=gdefs.notification_email_from or f"keepalived@{host}",
        helo_name=gdefs.smtp_helo_name,
        connect_timeout=float(gdefs.smtp_connect_timeout),
        router_id=gdefs.router_id or host,
    )


def to_header(emails: tuple[str, ...]) -> str:
    """keepalived's build_to_header_rcpt_addrs(): the addresses joined by ", " on one
    line, as many as fit in its buffer (SMTP_BUFFER_MAX)."""
    out = ""
    for e in emails:
        e = one_line(e)
        joined = f"{out}, {e}" if out else e
        if len(joined) > MAX_TO_LENGTH:
            break
        out = joined
    return out


def build_message(settings: SmtpSettings, subject: str, body: str, now: float | None = None) -> str:
    """The DATA part exactly as keepalived's body_cmd() writes it (before dot-stuffing)."""
    # Every header value comes from the config (router_id, names, addresses): one line.
    subject = one_line(subject)[: MAX_HEADERS_LENGTH - 1]
    body = body[: MAX_BODY_LENGTH - 1]
    return (
        f"Date: {rfc822_date(now)}\r\n"
        f"From: {one_line(settings.email_from)}\r\n"
        f"Subject: {subject}\r\n"
        "X-Mailer: Keepalived\r\n"
        f"To: {to_header(settings.emails)}\r\n"
        "\r\n"
        f"{body}\r\n"
    )


def _subject(router_id: str | None, text: str) -> str:
    return f"[{router_id}] {text}" if router_id else text


class SmtpAlerts:
    """Composes keepalived's alerts and sends each on the running loop in the background."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._tasks: set[asyncio.Task[bool]] = set()
        self.sent = 0
        self.failed = 0

    @classmethod
    def from_config(cls, gdefs: Any) -> SmtpAlerts | None:
        settings = settings_from_config(gdefs)
        return cls(settings) if settings is not None else None

    # ---- the alerts keepalived sends

    def vrrp(self, instance: str, state: str) -> asyncio.Task[bool] | None:
        mail = VRRP_INSTANCE_MAILS.get(state)
        if mail is None:
            return None
        rid = self.settings.router_id
        return self.send(f"[{rid}] VRRP Instance {instance} - {mail[0]}", mail[1])

    def vrrp_group(self, group: str, state: str) -> asyncio.Task[bool] | None:
        mail = VRRP_GROUP_MAILS.get(state)
        if mail is None:
            return None
        rid = self.settings.router_id
        return self.send(f"[{rid}] VRRP Group {group} - {mail[0]}", mail[1])

    def real_server(
        self, rs: str, vs: str, up: bool, body: str | None = None
    ) -> asyncio.Task[bool]:
        """`rs`/`vs` as format_endpoint() gives them; `body` the checker's wording."""
        rid = self.settings.router_id
        subject = f"[{rid}] Realserver {rs} of virtual server {vs} - {'UP' if up else 'DOWN'}"
        return self.send(subject, body or (CHECK_SUCCEED if up else CHECK_FAILED))

    def virtual_server(self, vs: str, subject: str, body: str) -> asyncio.Task[bool]:
        rid = self.settings.router_id
        return self.send(f"[{rid}] Virtualserver {vs} - {subject}", body)

    def other(self, subject: str, body: str) -> asyncio.Task[bool]:
        return self.send(_subject(self.settings.router_id, subject), body)

    # ---- sending

    def send(self, subject: str, body: str) -> asyncio.Task[bool]:
        """In the background; the task is kept referenced until done."""
        task = asyncio.get_running_loop().create_task(self.deliver(subject, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def deliver(self, subject: str, body: str) -> bool:
        """Send now; True when the server accepted it. Never raises (logged)."""
        s = self.settings
        where = f"[{s.server}]:{s.port}"
        message = build_message(s, subject, body)
        try:
            async with asyncio.timeout(s.connect_timeout):
                accepted = await _exchange(s, message.encode("utf-8"), where)
        except TimeoutError:
            self.failed += 1
            log.info("Timeout connecting SMTP server %s.", where)
            return False
        except Exception as exc:
            self.failed += 1
            log.info("SMTP connection ERROR to %s: %s", where, exc)
            return False
        if not accepted:
            self.failed += 1
            return False
        self.sent += 1
        log.debug("SMTP alert successfully sent.")
        return True

    async def drain(self, timeout: float | None = None) -> None:
        """Wait for alerts in flight (on stop: the 'Stopping' mails)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


# keepalived's SMTP_FSM (core/smtp.c): each stage's command and the code it expects
# (QUIT's answer is read and not judged: the mail is in or refused by then).
_GREETING, _HELO, _MAIL, _RCPT, _DATA, _BODY = (
    ("(E)SMTP", 220), ("HELO", 250), ("MAIL", 250), ("RCPT", 250), ("DATA", 354),
    ("BODY", 250),
)  # fmt: skip  # one stage per pair, as the FSM table has them


async def _reply(reader: asyncio.StreamReader) -> int:
    """The code of the server's next reply (the last line of a multi-line one)."""
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionResetError("connection closed by the SMTP server")
        if len(line) < 4 or line[3:4] != b"-":  # "250-..." continues; "250 ..." ends
            try:
                return int(line[:3])
            except ValueError:
                raise ConnectionError(f"not an SMTP reply: {line[:80]!r}") from None


async def _exchange(s: SmtpSettings, message: bytes, where: str) -> bool:
    """keepalived's SMTP dialogue, plain SMTP as it speaks it: the greeting, HELO,
    MAIL FROM, one RCPT TO per address, DATA, the message, QUIT. A code other than the
    stage's is logged in keepalived's words and ends the dialogue with QUIT (False).
    Here rather than a client library: aiosmtplib brought email, hmac and ssl (OpenSSL)
    into the process sending the first alert (~6.6 MB of RSS, issue 19)."""
    # One word (HELO's argument): no CR/LF, nor blanks.
    helo = "".join(one_line(s.helo_name or "").split()) or "localhost"
    # The data as SMTP carries it: a line starting with "." gets one more (RFC 5321 4.5.2).
    data = message.replace(b"\r\n.", b"\r\n..")
    if data.startswith(b"."):
        data = b"." + data
    steps: list[tuple[bytes | None, tuple[str, int]]] = [
        (None, _GREETING),
        (f"HELO {helo}\r\n".encode(), _HELO),
        (f"MAIL FROM:<{envelope_address(s.email_from)}>\r\n".encode(), _MAIL),
        *((f"RCPT TO:<{envelope_address(e)}>\r\n".encode(), _RCPT) for e in s.emails),
        (b"DATA\r\n", _DATA),
        (data + b"\r\n.\r\n", _BODY),  # as SMTP_SEND_CMD: an empty line, then "."
    ]
    reader, writer = await asyncio.open_connection(s.server, s.port)
    log.info("Remote SMTP server %s connected.", where)
    try:
        accepted = True
        for command, (name, expected) in steps:
            if command is not None:
                writer.write(command)
            code = await _reply(reader)
            if code != expected:
                log.info(
                    "Error processing %s cmd on SMTP server %s. SMTP status code = %d",
                    name,
                    where,
                    code,
                )
                accepted = False
                break
        writer.write(b"QUIT\r\n")
        with contextlib.suppress(OSError):
            await _reply(reader)  # 221; the mail is in (or refused) whatever it says
        return accepted
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
