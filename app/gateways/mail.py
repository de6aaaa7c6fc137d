"""Outgoing e-mail: the Mailer Protocol, an SMTP mailer and a console mailer."""

from __future__ import annotations

import logging
import re
import smtplib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol, runtime_checkable
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from app.config import Config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One e-mail: plain text, optionally with an HTML alternative."""

    to: str
    subject: str
    text: str
    html: str | None = None
    sender: str = "orders@example.com"


@runtime_checkable
class Mailer(Protocol):
    """Sends e-mail; raises on failure so the caller can retry."""

    def send(self, message: Message) -> None:
        """Deliver ``message``."""
        ...


class SMTPMailer:
    """Sends through an SMTP server (``smtp://[user:pass@]host:port``, ``smtps://`` for TLS)."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        username: str | None = None,
        password: str | None = None,
        use_ssl: bool = False,
        starttls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.username, self.password = username, password
        self.use_ssl, self.starttls, self.timeout = use_ssl, starttls, timeout
        self._local = threading.local()  # each thread's open session (smtplib is not shared)

    def send(self, message: Message) -> None:
        """Deliver ``message`` on this thread's SMTP session, kept open for the next one.

        A session costs a connection, the greeting, EHLO (and TLS, login) before the first
        mail: about half the CPU of sending a receipt, once per worker thread now. A kept
        session the server has closed meanwhile (idle timeout, 421) is replaced once;
        any other failure closes it and raises (the actor retries).
        """
        submit = _submission(message)
        kept = getattr(self._local, "smtp", None)
        if kept is not None:
            try:
                submit(kept)
                return
            except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
                log.info("SMTP session closed by the server (%s); opening another", exc)
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code != 421:  # 421: the server is closing this session
                    self._drop()
                    raise
            except Exception:
                self._drop()
                raise
            self._drop()
        smtp = self._open()
        try:
            submit(smtp)
        except Exception:
            _close_quietly(smtp)
            raise
        self._local.smtp = smtp

    def _open(self) -> smtplib.SMTP:
        smtp_class = smtplib.SMTP_SSL if self.use_ssl else smtplib.SMTP
        smtp = smtp_class(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
        except Exception:
            _close_quietly(smtp)
            raise
        return smtp

    def _drop(self) -> None:
        smtp = getattr(self._local, "smtp", None)
        self._local.smtp = None
        if smtp is not None:
            _close_quietly(smtp)


def _close_quietly(smtp: smtplib.SMTP) -> None:
    """End a session (QUIT, else just the socket); a dead one raises nothing."""
    try:
        smtp.quit()
    except Exception:
        smtp.close()


class ConsoleMailer:
    """Writes e-mails to the log instead of sending them (local use without MAIL_URL)."""

    def send(self, message: Message) -> None:
        """Log ``message``."""
        log.info("email to=%s subject=%r\n%s", message.to, message.subject, message.text)


@dataclass(frozen=True)
class Stamp:
    """The headers a mail gets when it is sent: ``Date`` (RFC 5322 requires one) and
    ``Message-ID`` (spam filters penalise a mail without)."""

    date: str
    message_id: str


def stamp(sender: str) -> Stamp:
    """Now, in UTC as ``+0000`` (RFC 5322's zone: ``GMT`` is its obsolete form, which the
    email package rewrites to ``+0000``), and a new Message-ID at the sender's domain
    (``make_msgid`` without one asks the resolver for this host's name)."""
    return Stamp(_date(int(time.time())), make_msgid(domain=_domain(sender)))


@lru_cache(maxsize=1)
def _date(second: int) -> str:
    """A Date header's value for ``second`` (Unix time): formatted once a second, not once
    a mail (``format_datetime`` is most of a stamp's 15 µs)."""
    return format_datetime(datetime.fromtimestamp(second, UTC))


@lru_cache(maxsize=16)
def _domain(sender: str) -> str:
    """The domain of the sender's address (the configured MAIL_FROM: read once)."""
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


def _submission(message: Message) -> Callable[[smtplib.SMTP], object]:
    """How ``message`` goes out on a session: written by :func:`_plain_text` when it can
    be, else built by the email package (``send_message``, as every mail was before)."""
    stamped = stamp(message.sender)
    plain = _plain_text(message, stamped)
    if plain is None:
        email = _to_email(message, stamped)
        return lambda smtp: smtp.send_message(email)
    sender, recipient, data = plain
    return lambda smtp: smtp.sendmail(sender, [recipient], data)


# What the email package (policy.default) writes out unchanged, RFC 5322 needing no more:
# an address as ``local@domain`` or ``Display Name <local@domain>`` made of atoms (no
# quotes, comments, groups or lists), any other header printable ASCII; a header on one
# line with its name. ``=?`` (an encoded word) is left to the package, which decodes it.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDRESS = rf"{_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*"
_MAILBOX = re.compile(rf"{_ATOM}(?: {_ATOM})* <(?P<named>{_ADDRESS})>|(?P<bare>{_ADDRESS})")
_TEXT = re.compile(r"[ -~]+")
_MAX_LINE = 78  # policy.default's max_line_length: longer headers and body lines are folded
# A text/plain part's headers in UTF-8, as the email package writes them.
_TEXT_PART = 'Content-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: {}\r\n'
_HEAD_END = {
    cte: (_TEXT_PART.format(cte) + "MIME-Version: 1.0\r\n\r\n").encode() for cte in ("7bit", "8bit")
}


def _plain_text(message: Message, stamped: Stamp) -> tuple[str, str, bytes] | None:
    """(Envelope sender, recipient, bytes) of ``message`` as ``send_message`` sends its
    :func:`_to_email` (with the same ``stamped`` headers), written directly; None unless it
    is one text part whose headers the email package would leave as they are and whose
    lines fit (no folding, no encoding). ``stamped`` is :func:`stamp`'s, which the package
    writes as given.

    The package parses and refolds every header through its modern header classes, the
    hottest frames of a worker sending receipts; a receipt needs none of that.
    """
    sender, to = _MAILBOX.fullmatch(message.sender), _MAILBOX.fullmatch(message.to)
    if message.html or sender is None or to is None or not _TEXT.fullmatch(message.subject):
        return None
    fields = (
        ("From", message.sender),
        ("To", message.to),
        ("Subject", message.subject),
        ("Date", stamped.date),
        ("Message-ID", stamped.message_id),
    )
    head = "".join(f"{name}: {value}\r\n" for name, value in fields)
    if "=?" in head or any(len(name) + 2 + len(value) > _MAX_LINE for name, value in fields):
        return None
    lines = message.text.encode().splitlines()
    if any(len(line) > _MAX_LINE for line in lines):
        return None
    body = b"".join(_from_quoted(line) + b"\r\n" for line in lines) or b"\r\n"
    data = head.encode() + _HEAD_END["7bit" if body.isascii() else "8bit"] + body
    return sender["named"] or sender["bare"], to["named"] or to["bare"], data


def _from_quoted(line: bytes) -> bytes:
    """``>From …`` for a line starting ``From `` (mbox's quoting, which ``send_message``'s
    generator applies), else ``line``."""
    return b">" + line if line.startswith(b"From ") else line


def _to_email(message: Message, stamped: Stamp) -> EmailMessage:
    """``message`` built by the email package, with the ``stamped`` headers."""
    email = EmailMessage()
    email["From"] = message.sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = stamped.date
    email["Message-ID"] = stamped.message_id
    email.set_content(message.text)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


def smtp_mailer_from_url(url: str) -> SMTPMailer:
    """An SMTPMailer for ``smtp://``, ``smtp+starttls://`` or ``smtps://`` URLs."""
    parsed = urlparse(url)
    use_ssl = parsed.scheme == "smtps"
    default_port = 465 if use_ssl else 25
    return SMTPMailer(
        parsed.hostname or "127.0.0.1",
        parsed.port or default_port,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        use_ssl=use_ssl,
        starttls=parsed.scheme == "smtp+starttls",
    )


def mailer_from_url(config: Config) -> Mailer:
    """The mailer for ``config.mail_url``: SMTP when set, the console otherwise."""
    if config.mail_url:
        return smtp_mailer_from_url(config.mail_url)
    return ConsoleMailer()
