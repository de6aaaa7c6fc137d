"""Running the emulator: a keep-alive HTTP/1.1 server, in its own thread or the foreground.

``EmulatorServer(port=0)`` picks a free port, so tests can start one per session::

    with EmulatorServer(port=0, webhook_url=url, webhook_secret="whsec_x") as emu:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": emu.url})
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from types import TracebackType

from .app import create_app
from .chaos import ChaosConfig
from .emulator import Emulator, Settings
from .httpserver import KeepAliveWSGIServer
from .payments import Timing
from .webhooks import ALL_EVENTS, WebhookConfig, enabled_events

log = logging.getLogger(__name__)


class EmulatorServer:
    """The emulator behind an HTTP server on 127.0.0.1, runnable in a background thread."""

    def __init__(
        self,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        webhook_max_attempts: int = 6,
        webhook_first_retry: float = 1.0,
        webhook_timeout: float = 5.0,
        webhook_events: Sequence[str] = (ALL_EVENTS,),
        async_delay: float = 1.0,
        authorization_window: float = 7 * 86400,
        bank_debit_settle: float | None = None,
        chaos: ChaosConfig | None = None,
        access_log: bool = False,
    ) -> None:
        settings = Settings(
            webhook=WebhookConfig(
                url=webhook_url,
                secret=webhook_secret,
                max_attempts=webhook_max_attempts,
                first_retry=webhook_first_retry,
                timeout=webhook_timeout,
                events=enabled_events(webhook_events),
            ),
            chaos=chaos or ChaosConfig(),
            timing=Timing(
                async_delay=async_delay,
                authorization_window=authorization_window,
                bank_debit_settle=bank_debit_settle,
            ),
        )
        self.emulator = Emulator(settings)
        self.app = create_app(self.emulator)
        self._server = KeepAliveWSGIServer(host, port, self.app, access_log=access_log)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (useful with ``port=0``)."""
        return self._server.port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:12111``."""
        host = self._server.server_address[0]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{self.port}"

    def start(self) -> EmulatorServer:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="stripe-emulator-http", daemon=True
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()
            self._server.close_all()
            self.emulator.close()

    def stop(self) -> None:
        """Stop serving and the background threads."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()
        self._server.close_all()
        self.emulator.close()

    def reset(self) -> None:
        """Forget all state (same as ``POST /_emulator/reset``)."""
        self.emulator.reset()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmulatorServer(url={self.url!r})"
