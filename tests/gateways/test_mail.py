"""app/gateways/mail.SMTPMailer against a local SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from app.gateways.mail import Message, SMTPMailer
from devstack.serving import free_port

MAIL = Message(to="ada@example.com", subject="Your order", text="Thanks.")


class Recorder:
    """Counts sessions (EHLOs) and keeps the recipients of accepted mails."""

    def __init__(self) -> None:
        self.sessions = 0
        self.delivered: list[str] = []

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("refused@"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.delivered.extend(envelope.rcpt_tos)
        return "250 OK"


class Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.recorder = Recorder()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)

    def restart(self) -> None:
        """What an idle timeout or a relay's restart does to a kept session."""
        self.controller.stop()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port)
        self.controller.start()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.controller.start()
    yield srv
    srv.controller.stop()


class TestSMTPMailer:
    def test_a_thread_keeps_its_session_for_the_next_mail(self, server: Server) -> None:
        mailer = SMTPMailer("127.0.0.1", server.port)
        for _ in range(3):
            mailer.send(MAIL)
        assert server.recorder.delivered == ["ada@example.com"] * 3
        assert server.recorder.sessions == 1

    def test_a_session_the_server_closed_is_replaced_once(self, server: Server) -> None:
        mailer = SMTPMailer("127.0.0.1", server.port)
        mailer.send(MAIL)
        server.restart()
        mailer.send(MAIL)
        assert server.recorder.delivered == ["ada@example.com"] * 2
        assert server.recorder.sessions == 2

    def test_a_refusal_raises_and_the_next_mail_opens_a_new_session(self, server: Server) -> None:
        mailer = SMTPMailer("127.0.0.1", server.port)
        mailer.send(MAIL)
        with pytest.raises(Exception, match="no such user"):
            mailer.send(Message(to="refused@example.com", subject="x", text="x"))
        mailer.send(MAIL)
        assert server.recorder.delivered == ["ada@example.com"] * 2
        assert server.recorder.sessions == 2
