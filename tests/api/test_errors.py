"""The JSON error body for werkzeug's own errors (app/api/errors.py)."""

from __future__ import annotations

from typing import Any


class TestNotFound:
    def test_names_the_path_it_did_not_find(self, client: Any) -> None:
        response = client.get("/api/api/products?category=home")
        assert response.status_code == 404
        error = response.get_json()["error"]
        assert error["code"] == "not_found"
        # A shop that doubled its /api prefix sees what it asked for (not its query).
        assert error["message"] == "No such resource: GET /api/api/products."

    def test_names_the_method_too(self, client: Any) -> None:
        message = client.post("/api/nope", json={}).get_json()["error"]["message"]
        assert message == "No such resource: POST /api/nope."

    def test_a_card_number_in_the_path_is_never_echoed(self, client: Any) -> None:
        response = client.get("/api/cards/4242-4242-4242-4242")
        assert response.status_code == 404
        assert "4242" not in response.get_data(as_text=True)
        assert response.get_json()["error"]["message"] == "No such resource."

    def test_a_long_path_is_cut(self, client: Any) -> None:
        message = client.get("/" + "a" * 5000).get_json()["error"]["message"]
        assert len(message) < 300 and message.endswith("….")
