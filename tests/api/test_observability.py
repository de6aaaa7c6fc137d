"""Request logs as production writes them: one JSON line per request, straight to the
stream (structlog's own writer, not the standard library's handlers)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from app import create_app
from app.api.observability import configure_logging


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
