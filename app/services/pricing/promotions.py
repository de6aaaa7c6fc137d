"""Promotion terms: what a code takes off a cart, and whether it applies.

Pure arithmetic, no storage: the terms are read from the database at quote, from
``{shop}:promo:<code>`` by admit.lua at submit, and travel with the submission so the
worker prices exactly what admission accepted (``to_json`` / ``from_json``).

Rules: the discount comes off the goods (never shipping, never below zero); a percentage
is rounded half up on the subtotal; the discount is then spread over the lines in
proportion to their amounts by the largest-remainder method, in integer minor units, so
the lines' shares add up to it exactly and each line is taxed on what is left of it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from app.errors import InvalidRequest, PromotionUnavailable
from app.services.money import format_amount, round_half_up

PROMOTION_FIELD = "promotionCode"
# admit.lua's refusal reasons, in the buyer's words.
INVALID_REASONS = {
    "unknown": "Unknown promotion code.",
    "inactive": "This promotion code is not active.",
    "not_yet_valid": "This promotion code is not valid yet.",
    "expired": "This promotion code has expired.",
    "minimum": "This promotion code needs a higher subtotal.",
}
UNAVAILABLE_REASONS = {
    "used_up": "This promotion code has been used up.",
    "buyer_limit": "This promotion code was already used as often as it allows for you.",
}


@dataclass(frozen=True)
class PromotionTerms:
    """A code's terms; exactly one of ``percent_off`` and ``amount_off`` is set. Times
    are unix seconds (None: open-ended); limits None: unlimited."""

    code: str
    currency: str
    percent_off: int | None = None
    amount_off: int | None = None
    min_subtotal: int | None = None
    starts_at: int | None = None
    ends_at: int | None = None
    max_redemptions: int | None = None
    per_buyer_limit: int | None = None
    active: bool = True

    def description(self) -> str:
        """Words for the buyer: ``10% off`` or ``5.00 USD off`` (and the minimum)."""
        if self.percent_off is not None:
            text = f"{self.percent_off}% off"
        else:
            text = f"{format_amount(self.amount_off or 0, self.currency)} off"
        if self.min_subtotal:
            text += f" orders of {format_amount(self.min_subtotal, self.currency)} or more"
        return text

    def summary(self) -> dict[str, str]:
        """The contract's ``promotion: {code, description}``."""
        return {"code": self.code, "description": self.description()}

    def discount(self, subtotal: int) -> int:
        """The discount on goods worth ``subtotal``: never more than the goods."""
        if self.percent_off is not None:
            return min(subtotal, round_half_up(subtotal * self.percent_off, 100))
        return min(subtotal, self.amount_off or 0)

    def refusal(self, now: int, subtotal: int) -> str | None:
        """Why the code does not apply to this cart now (None: it does). The count of
        redemptions is not the terms' to know; the caller checks it."""
        if not self.active:
            return "This promotion code is not active."
        if self.starts_at is not None and now < self.starts_at:
            return "This promotion code is not valid yet."
        if self.ends_at is not None and now >= self.ends_at:
            return "This promotion code has expired."
        if self.min_subtotal is not None and subtotal < self.min_subtotal:
            minimum = format_amount(self.min_subtotal, self.currency)
            return f"This promotion code needs a subtotal of at least {minimum}."
        return None

    def to_json(self) -> str:
        """The terms as they travel with a submission (and sit in ``{shop}:promo:<code>``)."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> PromotionTerms:
        """Terms written by :meth:`to_json` (or already decoded)."""
        data = json.loads(text) if isinstance(text, str) else text
        return cls(**data)


def refused(message: str) -> InvalidRequest:
    """``validation_failed`` on ``promotionCode`` with the reason."""
    return InvalidRequest(message, fields={PROMOTION_FIELD: [message]})


def admission_refusal(kind: str, reason: str) -> InvalidRequest | PromotionUnavailable | None:
    """The error for admit.lua's ``PROMO_INVALID`` / ``PROMO_UNAVAILABLE`` replies."""
    if kind == "PROMO_INVALID":
        return refused(INVALID_REASONS.get(reason, INVALID_REASONS["unknown"]))
    if kind == "PROMO_UNAVAILABLE":
        return PromotionUnavailable(UNAVAILABLE_REASONS.get(reason, UNAVAILABLE_REASONS["used_up"]))
    return None


def buyer_keys(email: str, user_id: str | None) -> str:
    """The keys the per-buyer limit counts under, space separated: the e-mail (case
    folded) and the user id when signed in, each hashed (no personal data in Redis)."""
    keys = ["e:" + hashlib.sha256(email.strip().casefold().encode()).hexdigest()[:32]]
    if user_id:
        keys.append("u:" + hashlib.sha256(user_id.encode()).hexdigest()[:32])
    return " ".join(keys)


def allocate(amounts: Sequence[int], discount: int) -> list[int]:
    """Spread ``discount`` over lines worth ``amounts`` in proportion, in whole minor
    units (largest remainder, earlier lines first on a tie): the shares add up to
    ``discount`` exactly and no share exceeds its line."""
    total = sum(amounts)
    if discount <= 0 or total <= 0:
        return [0] * len(amounts)
    discount = min(discount, total)
    shares = [amount * discount // total for amount in amounts]
    remainders = [amount * discount % total for amount in amounts]
    left = discount - sum(shares)
    order = sorted(range(len(amounts)), key=lambda i: (-remainders[i], i))
    for index in order[:left]:
        shares[index] += 1
    return shares
