"""Promotion codes: the admin's upsert and listing, the quote's checks, the give-back of
a redemption, and the rebuild from the database (I9).

The terms live in the ``promotions`` table and, for admit.lua, in ``{shop}:promo:<code>``
(written together, as the catalog writes products). A redemption is taken by admit.lua
with the hold and recorded as ``{shop}:promo:<code>:orders[orderId]``; an order that
ends FAILED or CANCELED, or a submission never written, gives it back
(``unredeem.lua``, once); a PAID order keeps it, refunded or not.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from app import keys, lua
from app.errors import InvalidRequest
from app.services.pricing.promotions import (
    INVALID_REASONS,
    UNAVAILABLE_REASONS,
    PromotionTerms,
    buyer_keys,
    refused,
)
from app.services.state_machine import CANCELED, FAILED
from models import Order, Promotion, database, utcnow

ENDED = (FAILED, CANCELED)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromotionInput:
    """A validated ``PUT /api/admin/promotions/<code>`` body."""

    code: str
    percent_off: int | None
    amount_off: int | None
    currency: str
    min_subtotal: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    max_redemptions: int | None
    per_buyer_limit: int | None
    active: bool


def unix(moment: datetime | None) -> int | None:
    """A stored naive-UTC (or aware) datetime as unix seconds."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp())


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with a Z, to the second."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def terms_of(row: Promotion) -> PromotionTerms:
    """A row's terms (what pricing and admit.lua apply)."""
    return PromotionTerms(
        code=row.code,
        currency=row.currency,
        percent_off=row.percent_off,
        amount_off=row.amount_off,
        min_subtotal=row.min_subtotal,
        starts_at=unix(row.starts_at),
        ends_at=unix(row.ends_at),
        max_redemptions=row.max_redemptions,
        per_buyer_limit=row.per_buyer_limit,
        active=bool(row.active),
    )


def redis_fields(terms: PromotionTerms) -> dict[str, str]:
    """``{shop}:promo:<code>`` as admit.lua reads it ('' for none)."""

    def text(value: int | None) -> str:
        return "" if value is None else str(value)

    return {
        "terms": terms.to_json(),
        "active": "1" if terms.active else "0",
        "startsAt": text(terms.starts_at),
        "endsAt": text(terms.ends_at),
        "minSubtotal": text(terms.min_subtotal),
        "max": text(terms.max_redemptions),
        "perBuyer": text(terms.per_buyer_limit),
    }


def redemptions_held(redis: Redis, code: str) -> int:
    """Redemptions held now: orders not FAILED or CANCELED, and admitted submissions."""
    return int(redis.hlen(keys.promotion_orders(code)))


def view(row: Promotion, used: int) -> dict[str, Any]:
    """The admin's promotion object, with the redemptions ``used`` and ``left``."""
    terms = terms_of(row)
    amount_off = (
        None if row.amount_off is None else {"amount": row.amount_off, "currency": row.currency}
    )
    return {
        "code": row.code,
        "description": terms.description(),
        "percentOff": row.percent_off,
        "amountOff": amount_off,
        "minSubtotal": row.min_subtotal,
        "startsAt": iso(row.starts_at),
        "endsAt": iso(row.ends_at),
        "maxRedemptions": row.max_redemptions,
        "perBuyerLimit": row.per_buyer_limit,
        "active": bool(row.active),
        "used": used,
        "left": None if row.max_redemptions is None else max(0, row.max_redemptions - used),
    }


def upsert(redis: Redis, data: PromotionInput) -> dict[str, Any]:
    """Create or replace a code's terms: the row, then ``{shop}:promo:<code>`` (its
    redemptions are kept)."""
    values = {
        "percent_off": data.percent_off,
        "amount_off": data.amount_off,
        "currency": data.currency,
        "min_subtotal": data.min_subtotal,
        "starts_at": _naive(data.starts_at),
        "ends_at": _naive(data.ends_at),
        "max_redemptions": data.max_redemptions,
        "per_buyer_limit": data.per_buyer_limit,
        "active": data.active,
        "updated_at": utcnow(),
    }
    with database().atomic():
        row = Promotion.get_or_none(Promotion.code == data.code)
        if row is None:
            row = Promotion.create(code=data.code, **values)
        else:
            Promotion.update(**values).where(Promotion.code == data.code).execute()
            row = Promotion.get_by_id(data.code)
    # After the commit, as the catalog does: if Redis fails here the PUT answers 503 and
    # admit.lua keeps the old terms until the PUT is repeated or the rebuild runs.
    redis.hset(keys.promotion(row.code), mapping=redis_fields(terms_of(row)))  # type: ignore[arg-type]
    return view(row, redemptions_held(redis, row.code))


def listing(redis: Redis) -> list[dict[str, Any]]:
    """Every code, by code, with its redemptions used and left."""
    return [
        view(row, redemptions_held(redis, row.code))
        for row in Promotion.select().order_by(Promotion.code)
    ]


def quote_terms(redis: Redis, code: str) -> PromotionTerms:
    """The terms the quote prices with; InvalidRequest on ``promotionCode`` when the code
    is unknown or used up (the window and the minimum are the terms' own check)."""
    row = Promotion.get_or_none(Promotion.code == code)
    if row is None:
        raise refused(INVALID_REASONS["unknown"])
    terms = terms_of(row)
    if terms.max_redemptions is not None and redemptions_held(redis, code) >= terms.max_redemptions:
        raise refused(UNAVAILABLE_REASONS["used_up"])
    return terms


def give_back(redis: Redis, order_id: str, code: str | None) -> bool:
    """Give back ``order_id``'s redemption of ``code`` (idempotent): True when one was."""
    if not code:
        return False
    names = [keys.promotion_orders(code), keys.promotion_buyers(code)]
    return bool(lua.run(redis, "unredeem", names, [order_id]))


def give_back_after_commit(redis: Redis, order: Order) -> None:
    """Give back ``order``'s redemption once the transaction ending it has committed (a
    rolled-back end keeps it; the rebuild repairs a give-back lost to a crash)."""
    if not order.promotion_code:
        return
    code, order_id = order.promotion_code, order.id

    def run() -> None:
        try:
            give_back(redis, order_id, code)
        except Exception:  # the order is ended in the record; the rebuild recounts
            log.exception("could not give back the redemption of %s by %s", code, order_id)

    database().after_commit(run)


def retake_after_commit(redis: Redis, order: Order) -> None:
    """``order`` gave its redemption back and was paid after all (a late payment): once
    the transaction has committed it holds the redemption again (``reredeem.lua``)."""
    if not order.promotion_code:
        return
    code, order_id = order.promotion_code, order.id
    buyers = buyer_keys(order.email, order.user_id)

    def run() -> None:
        try:
            names = [keys.promotion_orders(code), keys.promotion_buyers(code)]
            lua.run(redis, "reredeem", names, [order_id, buyers])
        except Exception:  # the order is PAID in the record; the rebuild recounts
            log.exception("could not take back the redemption of %s by %s", code, order_id)

    database().after_commit(run)


def rebuild_from_db(redis: Redis) -> int:
    """I9: every code's terms and redemptions held, from the database (orders with the
    code, not FAILED or CANCELED), keeping those admitted but not written yet. Returns
    the number of codes."""
    rows = list(Promotion.select())
    for row in rows:
        holders = Order.select(Order.id, Order.email, Order.user_id).where(
            (Order.promotion_code == row.code) & Order.state.not_in(ENDED)
        )
        terms: list[str] = []
        for name, value in redis_fields(terms_of(row)).items():
            terms += [name, value]
        held: list[str] = []
        for order in holders:
            held += [order.id, buyer_keys(order.email, order.user_id)]
        names = [
            keys.promotion(row.code),
            keys.promotion_orders(row.code),
            keys.promotion_buyers(row.code),
            keys.PENDING,
        ]
        lua.run(redis, "promo_rebuild", names, [len(terms), *terms, *held])
    return len(rows)


def normalise_code(code: str) -> str:
    """Codes are case-insensitive: stored and compared in upper case."""
    return code.strip().upper()


def _naive(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def require_currency(data: Mapping[str, Any], store_currency: str) -> None:
    """InvalidRequest on ``amountOff.currency`` when it is not the store's currency."""
    amount_off = data.get("amount_off")
    if amount_off and amount_off["currency"].lower() != store_currency.lower():
        message = f"This store sells in {store_currency.upper()}."
        raise InvalidRequest(message, fields={"amountOff.currency": [message]})
