"""The quote over HTTP with ``TAX_PROVIDER=stripe``: Stripe's tax in the totals, and a
503 ``tax_unavailable`` (never a total without its tax) while Stripe Tax is down."""

from __future__ import annotations

from typing import Any

import pytest

from app.errors import PaymentProviderError

QUOTE = "/api/checkout/quote"
BODY = {
    "items": [{"sku": "TEE-M", "quantity": 2}],
    "shippingAddress": {"country": "US", "state": "CA"},
}


@pytest.fixture
def config(config: Any) -> Any:
    """This module's app runs with ``TAX_PROVIDER=stripe``."""
    return config.with_overrides(tax_provider="stripe")


class TestQuoteWithStripeTax:
    def test_the_tax_is_stripes(self, client: Any, catalog: Any, gateway: Any) -> None:
        quote = client.post(QUOTE, json=BODY).get_json()
        # The fake's 8 % on 50.00 (the table would say 7.25 %: 3.63).
        assert (quote["tax"], quote["total"]) == (400, 5400)
        assert quote["totalsDecimal"]["tax"] == "4.00"

    def test_stripe_tax_down_is_503_tax_unavailable(
        self, client: Any, catalog: Any, gateway: Any
    ) -> None:
        gateway.fail_next(
            "calculate_tax", PaymentProviderError("down", retryable=True, provider_code=None)
        )
        response = client.post(QUOTE, json=BODY)
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "tax_unavailable"
        assert client.post(QUOTE, json=BODY).status_code == 200
