"""Health, readiness, metrics, the OpenAPI document, generic errors, CORS, rate limits."""

from __future__ import annotations

from typing import Any

import pytest
import redis as redis_lib
from flask import Flask

from app import create_app


class TestHealth:
    def test_healthz(self, client: Any) -> None:
        assert client.get("/healthz").get_json() == {"status": "ok"}

    def test_readyz_ok(self, client: Any) -> None:
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}

    def test_readyz_503_when_redis_is_down(
        self, client: Any, runtime: Any, monkeypatch: Any
    ) -> None:
        def down() -> None:
            raise redis_lib.ConnectionError("down")

        monkeypatch.setattr(runtime.redis, "ping", down)
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["checks"]["redis"].startswith("error")


class TestMetrics:
    def test_prometheus_text(self, client: Any, catalog: Any) -> None:
        client.get("/api/products")
        text = client.get("/metrics").get_data(as_text=True)
        assert "checkout_http_requests_total" in text
        assert 'endpoint="/api/products"' in text
        assert "checkout_submits_total" in text or "checkout_out_of_stock_total" in text


class TestOpenAPI:
    def test_document_covers_every_route(self, app: Flask, client: Any) -> None:
        spec = client.get("/openapi.json").get_json()
        assert spec["openapi"] == "3.0.3"
        documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
        for rule in app.url_map.iter_rules():
            if rule.endpoint.startswith(("web.", "console.")) or rule.endpoint == "static":
                continue  # the reference page and the console are HTML, not API
            path = (
                rule.rule.replace("<order_id>", "{orderId}")
                .replace("<sku>", "{sku}")
                .replace("<event_id>", "{eventId}")
                .replace("<payment_method_id>", "{paymentMethodId}")
                .replace("<code>", "{code}")
            )
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in documented, (path, method)

    def test_schemas_resolve_and_errors_are_documented(self, client: Any) -> None:
        spec = client.get("/openapi.json").get_json()
        schemas = spec["components"]["schemas"]
        for ops in spec["paths"].values():
            for op in ops.values():
                assert op["responses"], op
                for response in op["responses"].values():
                    for media in response.get("content", {}).values():
                        ref = media["schema"].get("$ref") or media["schema"].get("items", {}).get(
                            "$ref"
                        )
                        if ref:
                            assert ref.rsplit("/", 1)[-1] in schemas
        submit = spec["paths"]["/api/checkout/payment-intent"]["post"]
        assert {"202", "400", "409", "422", "429"} <= set(map(str, submit["responses"]))
        assert "postalCode" in str(schemas)

    def test_docs_page_is_offline(self, client: Any) -> None:
        response = client.get("/docs")
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert "/api/checkout/payment-intent" in html
        assert "http://" not in html and "https://" not in html and "<script" not in html


class TestGenericErrors:
    def test_unknown_route_is_json_404(self, client: Any) -> None:
        response = client.get("/nope")
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "not_found"

    def test_wrong_method_is_json_405(self, client: Any) -> None:
        response = client.delete("/api/products")
        assert response.status_code == 405
        assert response.get_json()["error"]["code"] == "method_not_allowed"

    @pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    def test_unmatched_path_is_404_whatever_the_method(self, client: Any, method: str) -> None:
        for path in ("/nope", "/api/nope", "/api/checkout/quote/extra", "/api/admin/nope/1"):
            response = client.open(path, method=method)
            assert response.status_code == 404, (path, method)
            assert response.get_json()["error"]["code"] == "not_found"

    @pytest.mark.parametrize(
        ("method", "path", "allow"),
        [
            ("DELETE", "/api/products", {"GET", "HEAD", "OPTIONS"}),
            ("PUT", "/api/products/MUG", {"GET", "HEAD", "OPTIONS"}),
            ("GET", "/api/webhooks/stripe", {"POST", "OPTIONS"}),
            ("POST", "/api/admin/products", {"PUT", "OPTIONS"}),
            # /api/orders/<orderId> matches too: its GET is allowed as well.
            ("PATCH", "/api/orders/track", {"GET", "HEAD", "POST", "OPTIONS"}),
        ],
    )
    def test_wrong_method_names_the_allowed_ones(
        self, client: Any, method: str, path: str, allow: set[str]
    ) -> None:
        response = client.open(path, method=method)
        assert response.status_code == 405
        assert {m.strip() for m in response.headers["Allow"].split(",")} == allow
        error = response.get_json()["error"]
        assert (error["type"], error["code"]) == ("invalid_request_error", "method_not_allowed")

    def test_unexpected_exception_is_a_generic_500(
        self, client: Any, monkeypatch: Any, capsys: Any
    ) -> None:
        from app.services import catalog

        def boom(*_args: Any, **_kwargs: Any) -> Any:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(catalog, "list_products", boom)
        response = client.get("/api/products")
        assert response.status_code == 500
        assert response.get_json()["error"]["code"] == "internal_error"
        assert "secret internals" not in response.get_data(as_text=True)

    def test_redis_outage_is_503(
        self, client: Any, runtime: Any, catalog: Any, monkeypatch: Any
    ) -> None:
        def down(*_a: Any, **_k: Any) -> Any:
            raise redis_lib.ConnectionError("down")

        monkeypatch.setattr(runtime.redis, "hmget", down)
        response = client.get("/api/products")
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "service_unavailable"

    def test_an_exhausted_database_pool_is_503(
        self, client: Any, catalog: Any, monkeypatch: Any
    ) -> None:
        from playhouse.pool import MaxConnectionsExceeded

        from app.services import catalog as catalog_service

        def busy(*_a: Any, **_k: Any) -> Any:
            raise MaxConnectionsExceeded(
                "Max connections exceeded, timed out attempting to connect."
            )

        monkeypatch.setattr(catalog_service, "list_products", busy)
        response = client.get("/api/products")
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "service_unavailable"


class TestCors:
    def test_allowed_origin(self, runtime: Any) -> None:
        app = create_app(
            runtime.config.with_overrides(frontend_origins=("https://shop.example",)),
            runtime=runtime,
        )
        client = app.test_client()
        ok = client.options("/api/checkout/quote", headers={"Origin": "https://shop.example"})
        assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example"
        assert "Idempotency-Key" in ok.headers["Access-Control-Allow-Headers"]
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers


class TestRateLimit:
    @pytest.fixture
    def limited(self, runtime: Any) -> Any:
        config = runtime.config.with_overrides(
            ratelimit_enabled=True, ratelimit_checkout="2/minute"
        )
        return create_app(config, runtime=runtime).test_client()

    def test_third_quote_is_429_with_retry_after(self, limited: Any, catalog: Any) -> None:
        body = {"items": [{"sku": "MUG", "quantity": 1}]}
        assert limited.post("/api/checkout/quote", json=body).status_code == 200
        assert limited.post("/api/checkout/quote", json=body).status_code == 200
        response = limited.post("/api/checkout/quote", json=body)
        assert response.status_code == 429
        assert response.get_json()["error"]["code"] == "rate_limited"
        assert 1 <= int(response.headers["Retry-After"]) <= 60

    def test_the_limiters_headers_on_limited_routes_only(self, limited: Any, catalog: Any) -> None:
        """flask-limiter's hooks run on the blueprints of the limited views, not on every
        request (app._scope_limiter_hooks)."""
        body = {"items": [{"sku": "MUG", "quantity": 1}]}
        quote = limited.post("/api/checkout/quote", json=body)
        assert quote.headers["X-RateLimit-Limit"] == "2"
        assert quote.headers["X-RateLimit-Remaining"] == "1"
        assert "X-RateLimit-Limit" not in limited.get("/healthz").headers
        app = limited.application
        limiter = app.extensions["checkout_limiter"]
        for table in (app.before_request_funcs, app.after_request_funcs):
            assert not any(
                limiter in (getattr(hook, "__self__", None), *getattr(hook, "args", ()))
                for hook in table[None]
            )

    def test_the_limiters_hooks_skip_the_views_without_a_limit(
        self, limited: Any, catalog: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """On the checkout blueprint only its limited views reach flask-limiter's
        per-request context (its after_request and teardown read and reset it)."""
        from flask_limiter import Limiter

        reads: list[str] = []
        context = Limiter.context

        def counted(limiter: Limiter) -> Any:
            reads.append("context")
            return context.fget(limiter)  # type: ignore[attr-defined]

        monkeypatch.setattr(Limiter, "context", property(counted))
        assert limited.get("/api/checkout/ord_missing").status_code == 404
        assert limited.post("/api/checkout/payment-intent", json={}).status_code == 400
        assert reads == []
        body = {"items": [{"sku": "MUG", "quantity": 1}]}
        quote = limited.post("/api/checkout/quote", json=body)
        assert quote.headers["X-RateLimit-Remaining"] == "1"
        assert reads

    def test_limit_is_per_client_ip(self, limited: Any, catalog: Any) -> None:
        body = {"items": [{"sku": "MUG", "quantity": 1}]}
        for _ in range(2):
            limited.post("/api/checkout/quote", json=body)
        other = limited.post(
            "/api/checkout/quote", json=body, environ_base={"REMOTE_ADDR": "10.0.0.9"}
        )
        assert other.status_code == 200

    def test_submit_is_limited_too(self, limited: Any, catalog: Any) -> None:
        codes = [
            limited.post("/api/checkout/payment-intent", json={}).status_code for _ in range(3)
        ]
        assert codes == [400, 400, 429]

    def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
        self, runtime: Any, catalog: Any
    ) -> None:
        config = runtime.config.with_overrides(
            ratelimit_enabled=True, ratelimit_checkout="2/minute", trusted_proxy_hops=1
        )
        client = create_app(config, runtime=runtime).test_client()
        body = {"items": [{"sku": "MUG", "quantity": 1}]}
        for _ in range(2):
            client.post("/api/checkout/quote", json=body, headers={"X-Forwarded-For": "1.1.1.1"})
        first = client.post(
            "/api/checkout/quote", json=body, headers={"X-Forwarded-For": "1.1.1.1"}
        )
        second = client.post(
            "/api/checkout/quote", json=body, headers={"X-Forwarded-For": "2.2.2.2"}
        )
        # A client forging an extra entry is still counted by what the proxy saw.
        forged = client.post(
            "/api/checkout/quote", json=body, headers={"X-Forwarded-For": "9.9.9.9, 1.1.1.1"}
        )
        assert (first.status_code, second.status_code, forged.status_code) == (429, 200, 429)

    def test_without_trusted_proxies_forwarded_for_is_ignored(
        self, limited: Any, catalog: Any
    ) -> None:
        body = {"items": [{"sku": "MUG", "quantity": 1}]}
        codes = [
            limited.post(
                "/api/checkout/quote", json=body, headers={"X-Forwarded-For": f"3.3.3.{n}"}
            ).status_code
            for n in range(3)
        ]
        assert codes == [200, 200, 429]

    def test_disabled_means_no_limit(self, client: Any, catalog: Any) -> None:
        body = {"items": [{"sku": "MUG", "quantity": 1}]}
        assert all(
            client.post("/api/checkout/quote", json=body).status_code == 200 for _ in range(5)
        )


class TestPreflightIsNotLimited:
    def test_options_requests_do_not_use_up_the_limit(self, runtime: Any, catalog: Any) -> None:
        config = runtime.config.with_overrides(
            ratelimit_enabled=True,
            ratelimit_checkout="2/minute",
            frontend_origins=("https://s.example",),
        )
        client = create_app(config, runtime=runtime).test_client()
        for _ in range(3):
            preflight = client.options(
                "/api/checkout/quote", headers={"Origin": "https://s.example"}
            )
            assert preflight.status_code == 200
        body = {"items": [{"sku": "MUG", "quantity": 1}]}
        assert client.post("/api/checkout/quote", json=body).status_code == 200
