"""The reference checkout page as served: templates, assets and the CSP header."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from app.config import Config
from app.web import bp
from app.web.csp import content_security_policy

EMULATOR = "http://127.0.0.1:12111"


def _app(config: Config) -> Flask:
    app = Flask(__name__)
    app.extensions["checkout_config"] = config
    app.register_blueprint(bp)
    return app


@pytest.fixture
def offline() -> Config:
    """The configuration `make demo` runs with: the emulator's Stripe.js stand-in."""
    return Config(
        stripe_api_base=EMULATOR,
        stripe_js_url=f"{EMULATOR}/js.stripe.com/v3/",
        stripe_publishable_key="pk_test_emulator",
    )


@pytest.fixture
def web(offline: Config) -> Any:
    return _app(offline).test_client()


def _directives(header: str) -> dict[str, list[str]]:
    return {d.split()[0]: d.split()[1:] for d in header.split("; ")}


class TestCheckoutUi:
    """CHECKOUT_UI: which buttons the page offers (the API refuses the rest)."""

    @pytest.mark.parametrize(
        ("ui", "hosted_button", "pay_hidden"),
        [("both", True, False), ("elements", False, False), ("hosted", True, True)],
    )
    def test_the_buttons_follow_checkout_ui(
        self, offline: Config, ui: str, hosted_button: bool, pay_hidden: bool
    ) -> None:
        import dataclasses
        import re

        html = _app(dataclasses.replace(offline, checkout_ui=ui)).test_client().get("/").text
        assert ("Pay on Stripe's page" in html) == hosted_button
        pay = re.search(r'<button id="pay"[^>]*>', html)
        assert pay is not None and ("hidden" in pay.group(0)) == pay_hidden

    def test_the_return_page_runs_the_session_lookup(self, web: Any) -> None:
        html = web.get("/checkout/return?session_id=cs_test_1").get_data(as_text=True)
        assert "/static/web/js/return.js" in html
        script = web.get("/static/web/js/return.js").get_data(as_text=True)
        assert "/api/checkout/lookup?session_id=" in script


class TestCheckoutPage:
    def test_loads_stripe_js_from_the_configured_url_and_the_publishable_key(self, web: Any):
        html = web.get("/").get_data(as_text=True)
        assert f'<script src="{EMULATOR}/js.stripe.com/v3/"></script>' in html
        assert 'data-publishable-key="pk_test_emulator"' in html

    def test_every_input_has_a_label(self, web: Any):
        import re

        html = web.get("/").get_data(as_text=True)
        ids = re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', html)
        assert ids, "the form has inputs"
        for input_id in ids:
            assert f'for="{input_id}"' in html, input_id

    def test_has_a_promotion_code_field_and_a_shipping_method_group(self, web: Any):
        html = web.get("/").get_data(as_text=True)
        assert '<label for="promotionCode">Promotion code</label>' in html
        assert '<button id="apply-promotion" class="button" type="button">Apply</button>' in html
        assert "<legend>Shipping method</legend>" in html
        assert 'id="discount-row" hidden' in html

    def test_has_an_announced_error_region_and_a_status_region(self, web: Any):
        html = web.get("/").get_data(as_text=True)
        assert 'id="error-summary" class="alert" role="alert" tabindex="-1"' in html
        assert 'role="status" aria-live="polite"' in html

    def test_is_responsive(self, web: Any):
        html = web.get("/").get_data(as_text=True)
        assert 'name="viewport" content="width=device-width, initial-scale=1"' in html

    def test_scripts_are_modules_served_by_the_blueprint(self, web: Any):
        for path in ("checkout.js", "api.js", "errors.js", "storage.js", "ui.js", "money.js"):
            with web.get(f"/static/web/js/{path}") as response:
                assert response.status_code == 200, path
                assert "javascript" in response.content_type


class TestOtherPages:
    def test_order_page_carries_the_order_id(self, web: Any):
        html = web.get("/order/ord_123").get_data(as_text=True)
        assert 'data-order-id="ord_123"' in html

    def test_order_page_escapes_the_order_id(self, web: Any):
        html = web.get("/order/%22%3E%3Cscript%3E").get_data(as_text=True)
        assert '"><script>' not in html
        assert "&#34;&gt;&lt;script&gt;" in html

    def test_failure_page_offers_the_next_step(self, web: Any):
        html = web.get("/checkout/failed?reason=expired").get_data(as_text=True)
        assert "Back to the shop" in html


class TestContentSecurityPolicy:
    def test_offline_allows_only_self_and_the_emulator(self, offline: Config):
        csp = _directives(content_security_policy(offline))
        assert csp["default-src"] == ["'self'"]
        assert csp["script-src"] == ["'self'", EMULATOR]
        assert csp["connect-src"] == ["'self'", EMULATOR]
        assert csp["frame-ancestors"] == ["'none'"]
        assert csp["object-src"] == ["'none'"]

    def test_real_stripe_allows_stripe_js_and_its_api(self):
        csp = _directives(content_security_policy(Config()))
        assert csp["script-src"] == ["'self'", "https://js.stripe.com"]
        assert "https://api.stripe.com" in csp["connect-src"]
        assert "https://hooks.stripe.com" in csp["frame-src"]
        assert not any("127.0.0.1" in v for values in csp.values() for v in values)

    def test_sent_on_pages_and_assets(self, web: Any):
        for path in ("/", "/order/x", "/checkout/failed", "/static/web/css/checkout.css"):
            with web.get(path) as response:
                csp = response.headers["Content-Security-Policy"]
                assert "connect-src 'self' " + EMULATOR in csp
                assert response.headers["X-Content-Type-Options"] == "nosniff"
