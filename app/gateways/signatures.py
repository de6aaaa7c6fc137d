"""Stripe-compatible webhook signatures: ``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``.

Shared by the Stripe adapter, the test fake and the local emulator so all three agree
byte for byte. Verification accepts several secrets (during a rotation) and several
``v1`` values (Stripe sends one per active endpoint secret).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable
from typing import Any

from app import strict_json
from app.errors import MalformedJSON, SignatureInvalid


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    """The hex ``v1`` signature of ``payload`` signed at ``timestamp`` with ``secret``."""
    signed = f"{timestamp}.".encode() + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload``."""
    ts = int(time.time()) if timestamp is None else timestamp
    return f"t={ts},v1={compute_signature(payload, secret, ts)}"


def parse_header(header: str) -> tuple[int, list[str]]:
    """The timestamp and the ``v1`` signatures of a header; SignatureInvalid if unusable."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        # ASCII digits, at most 12 (a unix time): "²" passes isdigit() but not int(),
        # and int() refuses thousands of digits.
        if key == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureInvalid("Stripe-Signature header has no timestamp or no v1 signature.")
    return timestamp, signatures


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Iterable[str],
    *,
    tolerance: int = 300,
    now: float | None = None,
) -> dict[str, Any]:
    """Verify ``header`` over the raw ``payload`` and return the parsed event.

    Raises SignatureInvalid when the header is missing, no secret matches any ``v1``
    value, or the timestamp is outside ``tolerance`` seconds; MalformedJSON when the
    body is correctly signed but is not a JSON object.
    """
    if not header:
        raise SignatureInvalid("Missing Stripe-Signature header.")
    timestamp, candidates = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureInvalid("Stripe-Signature timestamp is outside the tolerance.")
    if not _any_match(payload, timestamp, candidates, secrets):
        raise SignatureInvalid("No valid Stripe-Signature for this payload.")
    try:
        event = strict_json.loads(payload)  # no twice-given key, no deep nesting
    except ValueError as exc:
        raise MalformedJSON("Webhook body is not valid JSON.") from exc
    if not isinstance(event, dict):
        raise MalformedJSON("Webhook body is not a JSON object.")
    return event


def _any_match(
    payload: bytes, timestamp: int, candidates: list[str], secrets: Iterable[str]
) -> bool:
    matched = False
    for secret in secrets:
        expected = compute_signature(payload, secret, timestamp)
        for candidate in candidates:
            # Compare every pair (no early exit) so timing leaks nothing about which matched.
            matched |= hmac.compare_digest(expected, candidate)
    return matched
