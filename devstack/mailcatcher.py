"""A mail catcher for development: an SMTP server that keeps every message in memory
and a small web page that lists them (``/``) plus the same as JSON (``/messages.json``).

The app is pointed at it with ``MAIL_URL=smtp://127.0.0.1:<smtp port>``. Run on its
own: ``python -m devstack.mailcatcher --smtp-port 1025 --http-port 1080``.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import json
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from devstack.serving import free_port, wait_for_stop_signal


@dataclass(frozen=True)
class CaughtMail:
    """One message as received: envelope, headers of interest and the text body."""

    id: int
    received_at: str
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    text: str


class MailBox:
    """A thread-safe list of caught messages (the SMTP side writes, HTTP reads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[CaughtMail] = []

    def add(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> CaughtMail:
        """Parse ``raw`` and keep it; return the stored message."""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
        with self._lock:
            caught = CaughtMail(
                id=len(self._messages) + 1,
                received_at=datetime.now(UTC).isoformat(timespec="seconds"),
                mail_from=mail_from,
                rcpt_tos=list(rcpt_tos),
                subject=str(message.get("Subject", "")),
                text=text,
            )
            self._messages.append(caught)
        return caught

    def all(self) -> list[CaughtMail]:
        """Every message, oldest first."""
        with self._lock:
            return list(self._messages)


class _SMTPHandler:
    """aiosmtpd handler: store each message in the mailbox."""

    def __init__(self, box: MailBox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Accept the message (aiosmtpd's hook name)."""
        self.box.add(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)
        return "250 Message accepted for delivery"


def _page(messages: list[CaughtMail]) -> str:
    """The HTML listing of caught mail, newest first."""
    template = (
        "<article><h2>{subject}</h2><p>From {frm} to {to} at {at}</p><pre>{text}</pre></article>"
    )
    rows = "".join(
        template.format(
            subject=html.escape(m.subject or "(no subject)"),
            frm=html.escape(m.mail_from),
            to=html.escape(", ".join(m.rcpt_tos)),
            at=html.escape(m.received_at),
            text=html.escape(m.text),
        )
        for m in reversed(messages)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="refresh" content="5"><title>Caught mail</title></head>'
        f"<body><main><h1>Caught mail ({len(messages)})</h1>"
        f"{rows or '<p>No mail yet.</p>'}</main></body></html>"
    )


def _http_handler(box: MailBox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/messages.json"):
                body = json.dumps([asdict(m) for m in box.all()]).encode()
                self._send(200, "application/json", body)
            elif self.path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", _page(box.all()).encode())
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the demo's log is for the checkout, not for mail page refreshes."""

    return Handler


class MailCatcher:
    """SMTP on ``smtp_port`` and the listing page on ``http_port`` (0 picks free ports)."""

    def __init__(self, host: str = "127.0.0.1", smtp_port: int = 0, http_port: int = 0) -> None:
        self.host = host
        self.box = MailBox()
        self._http = ThreadingHTTPServer((host, http_port), _http_handler(self.box))
        self._http.daemon_threads = True
        self.http_port = int(self._http.server_address[1])
        self._smtp = Controller(
            _SMTPHandler(self.box), hostname=host, port=smtp_port or free_port()
        )
        self.smtp_port = int(self._smtp.port)

    @property
    def mail_url(self) -> str:
        """The ``MAIL_URL`` the app sends through."""
        return f"smtp://{self.host}:{self.smtp_port}"

    @property
    def web_url(self) -> str:
        """Where a person reads caught mail."""
        return f"http://{self.host}:{self.http_port}/"

    def start(self) -> MailCatcher:
        """Start both servers on background threads."""
        self._smtp.start()
        threading.Thread(target=self._http.serve_forever, name="mail-web", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop both servers."""
        self._smtp.stop()
        self._http.shutdown()
        self._http.server_close()


def main(argv: list[str] | None = None) -> None:
    """Run the catcher in the foreground until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=1080)
    args = parser.parse_args(argv)
    catcher = MailCatcher(args.host, args.smtp_port, args.http_port).start()
    print(f"SMTP on {catcher.mail_url}; caught mail at {catcher.web_url}", flush=True)
    wait_for_stop_signal()
    catcher.stop()


if __name__ == "__main__":
    main()
