"""app/gateways/mail.SMTPMailer against a local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import policy
from email.generator import BytesGenerator
from email.utils import getaddresses
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from app.gateways import mail
from app.gateways.mail import Message, SMTPMailer, Stamp, _plain_text, _to_email, stamp
from devstack.serving import free_port

MAIL = Message(to="ada@example.com", subject="Your order", text="Thanks.")


class Recorder:
    """Counts sessions (EHLOs) and keeps the recipients and contents of accepted mails."""

    def __init__(self) -> None:
        self.sessions = 0
        self.delivered: list[str] = []
        self.envelopes: list[tuple[str, list[str], bytes]] = []

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
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
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


RECEIPT = Message(
    to="ada@example.com",
    subject="Your receipt for order CO-1A2B3C4D",
    text="Thank you for your order CO-1A2B3C4D.\n\n2 x Mug  24.00 USD\n\nTotal     24.00 USD",
    sender="Shop <orders@example.com>",
)
NON_ASCII = Message(
    to="Zoë Łukasz <zoe@example.com>",
    subject="Votre reçu — commande CO-1A2B3C4D",
    text="Merci Zoë.\n\n1 x Tasse à café  12,00 €",
    sender="Café Crème <orders@example.com>",
)


def as_sent(message: Message, stamped: Stamp) -> tuple[str, list[str], bytes]:
    """What ``smtplib``'s ``send_message`` sends for the email package's build of
    ``message``: envelope sender, recipients and bytes."""
    built = _to_email(message, stamped)
    out = io.BytesIO()
    BytesGenerator(out).flatten(built, linesep="\r\n")
    sender = getaddresses([str(built["From"])])[0][1]
    return sender, [a[1] for a in getaddresses([str(built["To"])])], out.getvalue()


def parse(data: bytes) -> Any:
    """The email package's reading of mail bytes sent on the wire (CRLF)."""
    return email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=policy.default)


FIXED = Stamp("Mon, 07 Dec 2026 05:52:41 +0000", "<179662276100.42.7@example.com>")


class TestMessages:
    def test_a_receipt_on_the_wire(self, server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(mail, "stamp", lambda sender: FIXED)
        SMTPMailer("127.0.0.1", server.port).send(RECEIPT)
        ((sender, recipients, data),) = server.recorder.envelopes
        assert (sender, recipients) == ("orders@example.com", ["ada@example.com"])
        assert data == (
            b"From: Shop <orders@example.com>\r\n"
            b"To: ada@example.com\r\n"
            b"Subject: Your receipt for order CO-1A2B3C4D\r\n"
            b"Date: Mon, 07 Dec 2026 05:52:41 +0000\r\n"
            b"Message-ID: <179662276100.42.7@example.com>\r\n"
            b'Content-Type: text/plain; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: 7bit\r\n"
            b"MIME-Version: 1.0\r\n"
            b"\r\n"
            b"Thank you for your order CO-1A2B3C4D.\r\n\r\n2 x Mug  24.00 USD\r\n\r\n"
            b"Total     24.00 USD\r\n"
        )

    @pytest.mark.parametrize("message", [RECEIPT, NON_ASCII], ids=["direct", "package"])
    def test_every_mail_is_dated_and_has_its_own_id(self, server: Server, message: Message) -> None:
        before = datetime.now(UTC).replace(microsecond=0)
        for _ in range(2):
            SMTPMailer("127.0.0.1", server.port).send(message)
        mails = [parse(data) for _, _, data in server.recorder.envelopes]
        for parsed in mails:
            assert before <= parsed["Date"].datetime <= datetime.now(UTC)
            assert parsed["Date"].datetime.utcoffset() == timedelta(0)
            assert parsed["Message-ID"].endswith("@example.com>")  # the sender's domain
        assert mails[0]["Message-ID"] != mails[1]["Message-ID"]

    def test_non_ascii_names_and_subjects_are_encoded_words(self, server: Server) -> None:
        SMTPMailer("127.0.0.1", server.port).send(NON_ASCII)
        ((sender, recipients, data),) = server.recorder.envelopes
        assert (sender, recipients) == ("orders@example.com", ["zoe@example.com"])
        head = data.split(b"\r\n\r\n")[0]
        assert head.isascii() and b"=?utf-8?" in head  # RFC 2047, not raw UTF-8
        parsed = parse(data)
        assert parsed["From"] == "Café Crème <orders@example.com>"
        assert parsed["To"].addresses[0].display_name == "Zoë Łukasz"
        assert parsed["Subject"] == "Votre reçu — commande CO-1A2B3C4D"
        assert parsed.get_content_type() == "text/plain"
        assert parsed.get_content_charset() == "utf-8"
        assert parsed.get_content() == NON_ASCII.text + "\n"

    def test_an_html_alternative_is_a_multipart(self, server: Server) -> None:
        SMTPMailer("127.0.0.1", server.port).send(
            Message(to="ada@example.com", subject="Hi", text="Hi", html="<p>Hi</p>")
        )
        parsed = parse(server.recorder.envelopes[0][2])
        assert parsed.get_content_type() == "multipart/alternative"
        html = parsed.get_body(preferencelist=("html",))
        assert html is not None and html.get_content() == "<p>Hi</p>\n"

    @pytest.mark.parametrize(
        "message",
        [
            RECEIPT,
            Message(to="a.b+c@mail.example.com", subject=" x ", text="", sender="o@example.com"),
            Message(to="ada@example.com", subject="x" * 69, text="x" * 78),  # just fits
            Message(to="ada@example.com", subject="x", text="é" * 39),  # 78 bytes, 8bit
            Message(to="ada@example.com", subject="x", text="Café\r\nFrom here\n.\n\n"),
        ],
    )
    def test_written_directly_as_the_email_package_would(self, message: Message) -> None:
        stamped = stamp(message.sender)  # the same Date and Message-ID on both paths
        plain = _plain_text(message, stamped)
        assert plain is not None
        sender, recipient, data = plain
        assert (sender, [recipient], data) == as_sent(message, stamped)
        assert f"Date: {stamped.date}\r\n".encode() in data

    @pytest.mark.parametrize(
        "message",
        [
            NON_ASCII,
            Message(to="Ada B. <ada@example.com>", subject="x", text="x"),  # "." needs quotes
            Message(to='"Lovelace, Ada" <ada@example.com>', subject="x", text="x"),
            Message(to="ada@example.com", subject="x" * 70, text="x"),  # folded
            Message(to="ada@example.com", subject="x", text="x" * 79),  # quoted-printable
            Message(to="ada@example.com", subject="=?utf-8?q?x?=", text="x"),  # an encoded word
            Message(to="ada@example.com", subject="x\r\nBcc: eve@example.com", text="x"),
            Message(to="ada@example.com\r\nBcc: eve@example.com", subject="x", text="x"),
            Message(to="ada@example.com", subject="x", text="x", html="<p>x</p>"),
            Message(to="ada@example.com", subject="x", text="x", sender=f"o@{'d' * 40}.com"),
        ],
    )
    def test_anything_else_is_left_to_the_email_package(self, message: Message) -> None:
        assert _plain_text(message, stamp(message.sender)) is None
