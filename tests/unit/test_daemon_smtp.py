"""SMTP alerts received by a real SMTP server (aiosmtpd) on loopback: envelope, HELO,
headers and body as keepalived sends them."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import uvloop
from aiosmtpd.smtp import SMTP as SMTPProtocol

from fastha.config.model import GlobalDefs
from fastha.drivers.smtp import (
    SmtpAlerts,
    SmtpSettings,
    build_message,
    envelope_address,
    format_endpoint,
    settings_from_config,
)

pytestmark = pytest.mark.unit


class Inbox:
    """aiosmtpd handler: keeps every message with its envelope and HELO name."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            {
                "helo": session.host_name,
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "content": envelope.original_content,
            }
        )
        self.arrived.set()
        return "250 OK"


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    errors: list[dict[str, Any]] = []

    async def main() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: errors.append(ctx))
        return await fn()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        result = r.run(main())
    assert not errors, errors
    return result


async def smtp_server(inbox: Inbox) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: SMTPProtocol(inbox, hostname="mx.test"), "127.0.0.1", 0)


SETTINGS = SmtpSettings(
    server="127.0.0.1",
    emails=("ops@example.com", "Pager <pager@example.com>"),
    email_from="Director A <lb-a@example.com>",
    helo_name="lb-a.example.com",
    connect_timeout=10.0,
    router_id="LB_A",
)


def received(settings: SmtpSettings, send: Callable[[SmtpAlerts], Any]) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        inbox = Inbox()
        server = await smtp_server(inbox)
        port = server.sockets[0].getsockname()[1]
        try:
            alerts = SmtpAlerts(replace(settings, port=port))
            task = send(alerts)  # returns at once: the mail goes in the background
            assert isinstance(task, asyncio.Task)
            assert await task is True
            await asyncio.wait_for(inbox.arrived.wait(), 10)
            assert alerts.sent == 1 and alerts.failed == 0
        finally:
            server.close()
            await server.wait_closed()
        assert len(inbox.messages) == 1
        return inbox.messages[0]

    return run(go)


def test_vrrp_master_alert_as_keepalived_sends_it() -> None:
    got = received(SETTINGS, lambda a: a.vrrp("VI_1", "MASTER"))
    assert got["helo"] == "lb-a.example.com"
    assert got["mail_from"] == "lb-a@example.com"
    assert got["rcpt_tos"] == ["ops@example.com", "pager@example.com"]
    raw: bytes = got["content"]
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    assert msg["Subject"] == "[LB_A] VRRP Instance VI_1 - Entering MASTER state"
    assert msg["From"] == "Director A <lb-a@example.com>"
    assert msg["X-Mailer"] == "Keepalived"
    assert msg["To"] == "ops@example.com, Pager <pager@example.com>"
    assert b"\r\nTo: ops@example.com, Pager <pager@example.com>\r\n\r\n" in raw
    assert email.utils.parsedate_to_datetime(msg["Date"]) is not None
    # Header order and the body, byte for byte as keepalived's body_cmd().
    assert [k for k, _ in msg.items()] == ["Date", "From", "Subject", "X-Mailer", "To"]
    # (the empty line after it: keepalived's SMTP_SEND_CMD, "\r\n.\r\n" after the body's)
    assert raw.endswith(b"\r\n\r\n=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n")


def test_group_and_real_server_alerts() -> None:
    got = received(SETTINGS, lambda a: a.vrrp_group("VG_1", "FAULT"))
    msg = email.message_from_bytes(got["content"])
    assert msg["Subject"] == "[LB_A] VRRP Group VG_1 - Entering FAULT state"
    assert msg.get_payload().strip() == "=> All VRRP group instances are now in FAULT state <="

    rs = format_endpoint("192.0.2.10", 80)
    vs = format_endpoint("198.51.100.1", 80)
    got = received(SETTINGS, lambda a: a.real_server(rs, vs, up=False))
    msg = email.message_from_bytes(got["content"])
    assert msg["Subject"] == (
        "[LB_A] Realserver [192.0.2.10]:tcp:80 of virtual server [198.51.100.1]:tcp:80 - DOWN"
    )
    assert msg.get_payload().strip() == "=> CHECK failed on service <="

    got = received(
        SETTINGS,
        lambda a: a.real_server(rs, vs, up=True, body="=> TCP CHECK succeed on service <="),
    )
    msg = email.message_from_bytes(got["content"])
    assert msg["Subject"].endswith(" - UP")
    assert msg.get_payload().strip() == "=> TCP CHECK succeed on service <="


def test_a_dead_server_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "fastha.smtp")
    # A port nothing listens on: bind one and close it.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()

    async def go() -> bool:
        alerts = SmtpAlerts(replace(SETTINGS, port=port))
        ok = await alerts.vrrp("VI_1", "BACKUP")
        assert alerts.failed == 1
        return ok

    assert run(go) is False
    assert f"SMTP connection ERROR to [127.0.0.1]:{port}" in caplog.text


def test_settings_from_global_defs_with_keepalived_defaults() -> None:
    assert settings_from_config(GlobalDefs()) is None
    gdefs = GlobalDefs(notification_emails=("a@x",), smtp_server="127.0.0.1", smtp_server_port=2525)
    s = settings_from_config(gdefs)
    assert s is not None
    host = socket.gethostname()
    assert s.email_from == f"keepalived@{host}"
    assert s.router_id == host
    assert s.port == 2525
    assert s.connect_timeout == 30.0


def test_message_text_is_keepalived_s() -> None:
    text = build_message(SETTINGS, "[LB_A] x", "body", now=0)
    assert text.split("\r\n")[1:] == [
        "From: Director A <lb-a@example.com>",
        "Subject: [LB_A] x",
        "X-Mailer: Keepalived",
        "To: ops@example.com, Pager <pager@example.com>",
        "",
        "body",
        "",
    ]
    assert envelope_address("a@b") == "a@b"
    assert envelope_address("A <a@b>") == "a@b"
    assert envelope_address("a@b\rX-Injected: c") == "a@bX-Injected"
    assert envelope_address("a@b> NOTIFY=NEVER") == "a@b"


def test_checker_mail_bodies_in_keepalived_words() -> None:
    """ipwrapper.c do_vs_notifies and the checkers' bodies (keepalived 2.2.7; the
    conformance scenario vrrp_syncd_instance_flush_vs compares them with keepalived's)."""
    from types import SimpleNamespace

    from fastha.check.spec import MiscSpec, TcpSpec
    from fastha.runtime.alerts import quorum_mail_body, rs_mail_body

    plan = SimpleNamespace(quorum=3, hysteresis=1)
    assert quorum_mail_body(plan, False, True, 4, True) == (
        "=> Starting with quorum up 3+1=4 <= 4 <="
    )
    assert quorum_mail_body(plan, True, False, 1, False) == "=> Lost quorum 3+1=2 <= 1 <="
    assert quorum_mail_body(plan, False, True, 5, False) == "=> Gained quorum 3+1=4 <= 5 <="
    tcp = TcpSpec.__new__(TcpSpec)
    assert rs_mail_body(tcp, False) == "=> TCP CHECK failed on service <="
    misc = MiscSpec.__new__(MiscSpec)
    assert rs_mail_body(misc, True) == "=> MISC CHECK succeeded on service <="


class Refusing(Inbox):
    """Refuses one recipient, as a server that does not know it."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("pager@"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_a_refused_command_is_logged_in_keepalived_words(caplog: pytest.LogCaptureFixture) -> None:
    """A reply code other than the stage's: keepalived's line (core/smtp.c), QUIT, no mail."""
    caplog.set_level(logging.INFO, "fastha.smtp")

    async def go() -> tuple[bool, int, Refusing]:
        inbox = Refusing()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTPProtocol(inbox, hostname="mx.test"), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        try:
            alerts = SmtpAlerts(replace(SETTINGS, port=port))
            ok = await alerts.vrrp("VI_1", "MASTER")
            assert alerts.failed == 1 and alerts.sent == 0
        finally:
            server.close()
            await server.wait_closed()
        return ok, port, inbox

    ok, port, inbox = run(go)
    assert ok is False and inbox.messages == []
    line = f"Error processing RCPT cmd on SMTP server [127.0.0.1]:{port}. SMTP status code = 550"
    assert line in caplog.text


def test_a_line_starting_with_a_dot_arrives_whole() -> None:
    """The data is dot-stuffed on the wire and arrives as written."""
    got = received(SETTINGS, lambda a: a.other("x", ".starts with a dot\r\n."))
    assert got["content"].endswith(b"\r\n\r\n.starts with a dot\r\n.\r\n\r\n")
