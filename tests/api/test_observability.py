"""Request logs as production writes them: one JSON line per request, straight to the
stream (structlog's own writer, not the standard library's handlers)."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from app import create_app
from app.api import observability
from app.api.observability import REQUEST_ID, configure_logging


@pytest.fixture
def production_log(runtime: Any) -> Iterator[tuple[Any, io.BytesIO]]:
    stream = io.BytesIO()
    app = create_app(runtime.config, runtime=runtime)
    configure_logging(testing=False, stream=stream, cache=False)
    yield app.test_client(), stream
    structlog.reset_defaults()
    configure_logging(testing=True)


class TestProductionRequestLog:
    def test_one_json_line_per_request_with_its_id(
        self, production_log: tuple[Any, io.BytesIO]
    ) -> None:
        client, stream = production_log
        client.get("/healthz", headers={"X-Request-Id": "req-abc-123"})
        client.get("/no/such/path")
        lines = [json.loads(line) for line in stream.getvalue().decode().splitlines()]
        requests = [line for line in lines if line["event"] == "request"]
        assert [(r["route"], r["status"]) for r in requests] == [
            ("/healthz", 200),
            ("unmatched", 404),
        ]
        assert requests[0]["request_id"] == "req-abc-123"
        assert requests[0]["level"] == "info" and requests[0]["timestamp"].endswith("Z")

    def test_a_card_number_sent_as_request_id_is_not_written(
        self, production_log: tuple[Any, io.BytesIO]
    ) -> None:
        client, stream = production_log
        client.get("/healthz", headers={"X-Request-Id": "4111111111111111"})
        assert "4111111111111111" not in stream.getvalue().decode()
        assert '"route":"/healthz"' in stream.getvalue().decode()

    def test_the_request_line_is_what_structlog_writes(
        self, production_log: tuple[Any, io.BytesIO], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """LogLine runs the configured processors itself: the same bytes as ``log.info``."""
        _, stream = production_log
        monkeypatch.setattr(observability.time, "time", lambda: 1_700_000_000.25)
        fields = {"method": "GET", "route": "/healthz", "status": 200, "duration_ms": 0.12}
        token = REQUEST_ID.set("req-same-1")
        try:
            assert observability._request_line is not None
            observability._request_line(**fields)
            observability.log.info("request", **fields)
        finally:
            REQUEST_ID.reset(token)
        ours, structlogs = stream.getvalue().splitlines()
        assert ours == structlogs
        assert json.loads(ours)["timestamp"] == "2023-11-14T22:13:20.250000Z"

    def test_the_headers_a_view_set_are_kept_or_replaced(self, runtime: Any) -> None:
        """nosniff is added only where missing; CORS replaces a view's own values."""
        config = dataclasses.replace(runtime.config, frontend_origins=("https://shop.example",))
        app = create_app(config, runtime=runtime)

        @app.get("/own-headers")
        def own_headers() -> Any:
            return "", 204, {"X-Content-Type-Options": "own", "Vary": "Cookie"}

        answer = app.test_client().get("/own-headers", headers={"Origin": "https://shop.example"})
        assert answer.headers.getlist("X-Content-Type-Options") == ["own"]
        assert answer.headers.getlist("Vary") == ["Origin"]
        assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"


class TestLogProcessors:
    def test_timestamp_is_iso_utc_with_microseconds(self) -> None:
        import re
        import time
        from datetime import UTC, datetime

        from app.api.observability import UtcTimestamp

        stamp = UtcTimestamp()
        before = datetime.now(UTC)
        first = stamp(None, "info", {})["timestamp"]
        time.sleep(1.1)  # the next second: its prefix is formatted anew
        second = stamp(None, "info", {})["timestamp"]
        for text in (first, second):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
        parsed = [datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (first, second)]
        assert before.replace(microsecond=0) <= parsed[0] < parsed[1]
        assert (parsed[1] - parsed[0]).total_seconds() >= 1

    def test_every_line_of_a_request_carries_its_id(
        self, production_log: tuple[Any, io.BytesIO], gateway: Any
    ) -> None:
        client, stream = production_log
        event = gateway.event("payment_intent.succeeded", {"id": "pi_1", "metadata": {}})
        body, header = gateway.signed(event)
        client.post(
            "/api/webhooks/stripe",
            data=body,
            headers={"Stripe-Signature": header, "X-Request-Id": "req-hook-1"},
        )
        client.get("/healthz", headers={"X-Request-Id": "req-next-2"})
        lines = [json.loads(line) for line in stream.getvalue().decode().splitlines()]
        ids = {(line["event"], line.get("request_id")) for line in lines}
        # The view's own line (another logger) and the request line: one id, then the next.
        assert ids >= {("webhook_received", "req-hook-1"), ("request", "req-hook-1")}
        assert ("request", "req-next-2") in ids
