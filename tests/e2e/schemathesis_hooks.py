"""Schemathesis hooks for ``tests/e2e/test_schemathesis.py`` (loaded by the CLI through
``SCHEMATHESIS_HOOKS``; the fixture order comes in the environment).

- The status long-poll's ``?wait`` is capped at 1 s: a generated ``since`` above the
  order's version would otherwise hold every such request for up to 25 s (the bound is
  the point of the parameter, not what this run is about).
- Half of the order reads (chosen by a checksum of the generated id, so a seed replays
  the same run) go to the fixture order with its checkout token, and half of the lookups
  carry its intent and client secret: the 200 answers are checked against the document
  too, not only the 404s.
- Half of the carts (quote, submit) name the fixture SKUs (``ST-0`` ... line by line,
  where the generated SKU is a string), those submits with a key of their own, and half
  of the catalog syncs get distinct SKUs in the store's currency: a random SKU is
  unknown, random lines repeat one and a generated key is reused with other bodies, so
  the priced, admitted and upserted answers would otherwise hardly be reached.
"""

from __future__ import annotations

import os
import zlib
from typing import Any

import schemathesis

ORDER_READS = {("GET", "/api/checkout/{orderId}"), ("GET", "/api/orders/{orderId}")}
LOOKUP = ("GET", "/api/checkout/lookup")
SUBMIT = ("POST", "/api/checkout/payment-intent")
CARTS = {("POST", "/api/checkout/quote"), SUBMIT}
SYNC = ("PUT", "/api/admin/products")
FIXTURE_SKUS = 5  # ST-0 .. ST-4, put by the test


def _picked(value: Any) -> bool:
    return zlib.crc32(repr(value).encode("utf-8", "replace")) % 2 == 0


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    operation = (case.method.upper(), case.operation.path)
    query = case.query if isinstance(case.query, dict) else None
    wait = query.get("wait") if query is not None else None
    if query is not None and str(wait).isascii() and str(wait).isdigit() and int(str(wait)) > 1:
        query["wait"] = 1 if isinstance(wait, int) else "1"
    if operation in ORDER_READS and _picked(case.path_parameters):
        case.path_parameters["orderId"] = os.environ["ST_ORDER_ID"]
        if case.headers is None:
            case.headers = {}
        case.headers["X-Checkout-Token"] = os.environ["ST_TOKEN"]
    if operation == LOOKUP and query is not None and _picked(query):
        query["payment_intent"] = os.environ["ST_INTENT_ID"]
        query["payment_intent_client_secret"] = os.environ["ST_CLIENT_SECRET"]
    body = case.body if isinstance(case.body, dict) else None
    if operation in CARTS and body is not None and _picked(body):
        _rename(body.get("items"), lambda i: f"ST-{i}" if i < FIXTURE_SKUS else None)
        if operation == SUBMIT and isinstance((case.headers or {}).get("Idempotency-Key"), str):
            # One key per body: a key reused with another body is 422 (that is tested too,
            # by the cases left alone).
            key = f"st-{zlib.crc32(repr(body).encode('utf-8', 'replace')):08x}"
            case.headers["Idempotency-Key"] = key
            if isinstance(body.get("idempotencyKey"), str):
                body["idempotencyKey"] = key
    if operation == SYNC and body is not None and _picked(body):
        _rename(body.get("products"), lambda i: f"ST-SYNC-{i}", currency="usd")


def _rename(lines: Any, sku: Any, currency: str | None = None) -> None:
    """Give line ``i`` the SKU ``sku(i)`` (and the currency) where the generated one is
    a string, so the cases the document calls valid reach the catalog."""
    for index, line in enumerate(lines if isinstance(lines, list) else []):
        if isinstance(line, dict) and isinstance(line.get("sku"), str) and sku(index):
            line["sku"] = sku(index)
            price = line.get("price")
            if currency and isinstance(price, dict) and isinstance(price.get("currency"), str):
                price["currency"] = currency
