"""The shop's own backend: signed POSTs of shop events (the only code that posts them).

One adapter per outside system: :class:`ShopWebhookSender` is the port, with the domain's
one verb; :class:`RequestsShopWebhookSender` posts with ``requests``. The signature is
the scheme Stripe uses for ours (``app.gateways.signatures``), so a shop verifies it with
the code it already has: ``Checkout-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"<t>.<raw body>")>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import requests

from app.gateways.signatures import sign_payload

SIGNATURE_HEADER = "Checkout-Signature"
EVENT_ID_HEADER = "Checkout-Event-Id"
TIMEOUT_SECONDS = 10.0
# What a delivery row keeps of a refusal's body (enough to tell an error page).
ANSWER_EXCERPT = 300


@dataclass(frozen=True)
class Answer:
    """What the endpoint answered: its HTTP status (None without an answer) and an error."""

    status_code: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx: delivered."""
        return self.status_code is not None and 200 <= self.status_code < 300


class ShopWebhookSender(Protocol):
    """Posts one signed event to one endpoint of the shop's backend."""

    def deliver(self, url: str, *, secret: str, event_id: str, body: bytes) -> Answer:
        """POST ``body`` signed with ``secret``; never raises for the endpoint's faults."""


def signed_headers(body: bytes, secret: str, event_id: str, timestamp: int | None = None) -> dict:
    """The headers of one delivery: JSON, the signature over the raw body, the event id."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign_payload(body, secret, timestamp),
        EVENT_ID_HEADER: event_id,
        "User-Agent": "checkout-service-webhooks/1",
    }


class RequestsShopWebhookSender:
    """:class:`ShopWebhookSender` over ``requests``: 10 s timeout, no redirects followed."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self.timeout = timeout

    def deliver(self, url: str, *, secret: str, event_id: str, body: bytes) -> Answer:
        """POST once; a 2xx is delivered, anything else (or no answer) an error to retry."""
        headers = signed_headers(body, secret, event_id)
        try:
            # A redirect is not a delivery: the shop must configure the final URL.
            with requests.post(
                url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            ) as response:
                if 200 <= response.status_code < 300:
                    return Answer(response.status_code)
                excerpt = response.raw.read(ANSWER_EXCERPT, decode_content=True)
                text = excerpt.decode("utf-8", "replace").strip()
                return Answer(response.status_code, f"HTTP {response.status_code}: {text}")
        except requests.RequestException as exc:
            return Answer(None, f"{exc.__class__.__name__}: {exc}"[:ANSWER_EXCERPT])


# What a shop runs to check a delivery (``flask webhooks verify-example``, and
# docs/integration.md, which a test keeps identical): the raw body, not re-serialised JSON.
VERIFY_PYTHON = '''\
import hashlib, hmac, time


def verify(raw_body: bytes, header: str, secret: str, tolerance: int = 300) -> bool:
    """True when the Checkout-Signature header signs this raw request body."""
    parts = [p.strip().split("=", 1) for p in header.split(",") if "=" in p]
    t = next((v for k, v in parts if k == "t"), "")
    signed = t.encode() + b"." + raw_body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    fresh = t.isdigit() and abs(time.time() - int(t)) <= tolerance
    return fresh and any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")
'''

VERIFY_NODE = """\
const crypto = require("crypto");

function verify(rawBody, header, secret, tolerance = 300) {
  const parts = header.split(",").map((p) => p.trim().split("="));
  const t = (parts.find(([k]) => k === "t") || [])[1] || "";
  const hmac = crypto.createHmac("sha256", secret).update(t + ".").update(rawBody);
  const expected = hmac.digest("hex");
  const fresh = /^\\d+$/.test(t) && Math.abs(Date.now() / 1000 - Number(t)) <= tolerance;
  return fresh && parts.some(([k, v]) => k === "v1" && v.length === expected.length &&
    crypto.timingSafeEqual(Buffer.from(v), Buffer.from(expected)));
}
"""

VERIFY_EXAMPLES = {"python": VERIFY_PYTHON, "node": VERIFY_NODE}
