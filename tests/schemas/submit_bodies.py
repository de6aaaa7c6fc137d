"""Submit bodies the schema tests share: a base body and variants of it, all valid."""

from __future__ import annotations

from typing import Any

ADDRESS = {
    "name": " Ada Lovelace ",
    "line1": "1 Analytical Way",
    "line2": "  ",
    "city": "San Francisco",
    "state": "CA",
    "postalCode": "94107",
    "country": "us",
}
BASE: dict[str, Any] = {
    "items": [{"sku": "TEE-M", "quantity": 2}, {"sku": "MUG", "quantity": 1}],
    "email": " buyer@example.com ",
    "shippingAddress": ADDRESS,
}
VARIANTS: list[dict[str, Any]] = [
    {},
    {"billingAddress": {**ADDRESS, "line2": "Flat 2", "state": None}},
    {"billingAddress": None},
    {"idempotencyKey": "key-12345678"},
    {"confirmationTokenId": "ctoken_abc"},
    {"savePaymentMethod": False},
    {"shippingOptionId": "express", "promotionCode": " spring10 "},
    {"ui": "hosted", "successUrl": "https://shop.test/ok", "cancelUrl": "https://shop.test/no"},
    {"ui": "elements", "shippingAddress": {**ADDRESS, "name": "Zoë Ü"}},
]
