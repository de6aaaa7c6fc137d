"""The shop's own backend as the browser tests' stack sees it: an HTTP endpoint on
127.0.0.1 that takes every shop webhook delivery (204) and remembers the event ids.

The stack delivers every order change here (``SHOP_WEBHOOK_URLS``), so the console's
"Resend" has a real endpoint to send to.
"""

from __future__ import annotations

import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from app.gateways.shop_webhooks import EVENT_ID_HEADER

SECRET = "whsec_browser_tests_shop"


class ShopHookReceiver:
    """A threaded HTTP server answering 204 to every POST; ``received`` counts event ids."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where the stack posts (``SHOP_WEBHOOK_URLS``)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/shop-hooks"

    def start(self) -> ShopHookReceiver:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()

    def count(self, event_id: str) -> int:
        """How many deliveries of ``event_id`` arrived."""
        with self._lock:
            return self.received[event_id]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received[self.headers.get(EVENT_ID_HEADER, "")] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return  # quiet: the stack's log says what it delivered

        return Handler
