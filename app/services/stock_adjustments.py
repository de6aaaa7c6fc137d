"""Stock adjustments: "+/- N units with a reason", beside the catalog's "set on hand".

An adjustment is a DELTA, not a count: "+12 received", "-2 damaged". It moves the
database's ``products.stock_on_hand`` and the Redis counter (``{shop}:avail``, or the
parked ``{shop}:avail:inactive``) by the same amount in one step, and records who did it
and why in ``stock_adjustments`` (the product's history, its audit). Like a catalog
upsert (:mod:`app.services.catalog`): one transaction locks the product row, writes the
row and the history, and inside it ``catalog.lua`` moves the counter — or refuses,
changing nothing, when the counter would go below zero (the units held by open checkouts
stay held; I1). A commit that fails after Redis moved is undone in Redis, so database
and Redis stay in step and ``inventory rebuild`` finds the same numbers (I9).

Idempotent per key: the same key with the same request answers the first adjustment
again (``replayed``) and moves nothing; with another request it is 422
``idempotency_key_reused``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import peewee
import structlog
from redis import Redis

from app.errors import (
    IdempotencyKeyReused,
    InsufficientStock,
    InvalidRequest,
    InvalidState,
    NotFound,
)
from app.schemas.products import MAX_UNITS
from app.services.inventory import CounterChange, Inventory
from app.services.order_body import iso_utc
from models import Product, StockAdjustment
from models.db import database, is_postgres, utcnow
from models.stock_adjustment import ADJUSTMENT_REASONS

log = structlog.get_logger("app.services.stock_adjustments")

# One adjustment moves at most this many units either way (the upsert's stock limit).
MAX_DELTA = MAX_UNITS
NOTE_MAX = 200
HISTORY_LIMIT = 50


@dataclass(frozen=True)
class AdjustmentRequest:
    """What an admin asks: move ``sku``'s stock by ``delta`` for ``reason`` (+ ``note``)."""

    sku: str
    delta: int
    reason: str
    note: str = ""


@dataclass(frozen=True)
class AdjustmentResult:
    """The adjustment as recorded, and whether this call only replayed it."""

    adjustment: dict[str, Any]
    replayed: bool


def validate(request: AdjustmentRequest) -> None:
    """InvalidRequest naming each bad field: a non-zero whole delta within the limit, a
    reason of the list, a note of at most 200 characters (required for "other")."""
    fields: dict[str, list[str]] = {}
    delta = request.delta
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        fields["delta"] = ["Enter a whole number of units other than 0, like 12 or -2."]
    elif abs(delta) > MAX_DELTA:
        fields["delta"] = [f"At most {MAX_DELTA:,} units at a time."]
    if request.reason not in ADJUSTMENT_REASONS:
        fields["reason"] = [f"Choose one of: {', '.join(ADJUSTMENT_REASONS)}."]
    elif request.reason == "other" and not request.note.strip():
        fields["note"] = ['Say why in the note when the reason is "other".']
    if len(request.note) > NOTE_MAX:
        fields["note"] = [f"At most {NOTE_MAX} characters."]
    if fields:
        raise InvalidRequest("The stock adjustment is not valid.", fields=fields)


def adjust_stock(
    redis: Redis, request: AdjustmentRequest, *, actor: str, idempotency_key: str
) -> AdjustmentResult:
    """Apply ``request`` once per ``idempotency_key`` (database and Redis together).

    Raises InvalidRequest (bad fields), NotFound (no such product), InsufficientStock
    (409 ``insufficient_stock``: fewer units are free than a negative delta takes;
    nothing changed) or IdempotencyKeyReused (the key came with another request).
    """
    validate(request)
    try:
        return _adjust_once(redis, request, actor, idempotency_key)
    except peewee.IntegrityError:
        # The same key committed by a concurrent request first (unique key): a replay now.
        return _adjust_once(redis, request, actor, idempotency_key)


def _adjust_once(
    redis: Redis, request: AdjustmentRequest, actor: str, key: str
) -> AdjustmentResult:
    inventory = Inventory(redis)
    moved = False
    try:
        with database().atomic():
            product = _locked_product(request.sku)
            # After the row lock: a concurrent request with this key has committed.
            previous = StockAdjustment.get_or_none(StockAdjustment.idempotency_key == key)
            if previous is not None:
                return AdjustmentResult(_replayed(previous, request), replayed=True)
            after = product.stock_on_hand + request.delta
            if after < 0:
                raise InsufficientStock(
                    f"{request.sku} cannot drop by {-request.delta}: "
                    f"only {product.stock_on_hand} units are on hand."
                )
            row = StockAdjustment.create(
                sku=request.sku,
                delta=request.delta,
                reason=request.reason,
                note=request.note.strip(),
                actor=actor,
                on_hand_after=after,
                idempotency_key=key,
            )
            Product.update(stock_on_hand=after, updated_at=utcnow()).where(
                Product.sku == request.sku
            ).execute()
            _move_counter(inventory, request.sku, request.delta)
            moved = True
    except Exception:
        if moved:
            inventory.sync([CounterChange(request.sku, -request.delta)])  # commit failed
        raise
    log.info("stock_adjusted", sku=request.sku, delta=request.delta, actor=actor)
    return AdjustmentResult(adjustment_view(row), replayed=False)


def _locked_product(sku: str) -> Product:
    """The product's row, locked until the transaction ends (PostgreSQL); NotFound."""
    query = Product.select().where(Product.sku == sku)
    if is_postgres(database()):
        query = query.for_update()
    product = query.first()
    if product is None:
        raise NotFound(f"No product {sku}.")
    return product


def _move_counter(inventory: Inventory, sku: str, delta: int) -> None:
    """``catalog.lua``: the counter moves by ``delta`` unless it would go below zero."""
    try:
        inventory.sync([CounterChange(sku, delta)])
    except InvalidState as exc:
        free = inventory.counters([sku]).get(sku, 0)  # for the message only
        raise InsufficientStock(
            f"{sku} cannot drop by {-delta}: only {max(free, 0)} units are free "
            "(the others are held by open checkouts)."
        ) from exc


def _replayed(previous: StockAdjustment, request: AdjustmentRequest) -> dict[str, Any]:
    """The first adjustment of this key, if ``request`` is the one it was made for."""
    same = (previous.sku, previous.delta, previous.reason, previous.note) == (
        request.sku,
        request.delta,
        request.reason,
        request.note.strip(),
    )
    if not same:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used for another stock adjustment."
        )
    return adjustment_view(previous)


def adjustment_view(row: StockAdjustment) -> dict[str, Any]:
    """One adjustment as the console and the API show it."""
    return {
        "id": row.id,
        "sku": row.sku,
        "delta": row.delta,
        "reason": row.reason,
        "note": row.note,
        "actor": row.actor,
        "onHandAfter": row.on_hand_after,
        "createdAt": iso_utc(row.created_at),
    }


def history(sku: str, limit: int = HISTORY_LIMIT) -> list[dict[str, Any]]:
    """The product's adjustments, newest first (at most ``limit``)."""
    rows = (
        StockAdjustment.select()
        .where(StockAdjustment.sku == sku)
        .order_by(StockAdjustment.id.desc())
        .limit(limit)
    )
    return [adjustment_view(row) for row in rows]


def reasons() -> Sequence[str]:
    """The reasons an adjustment may give, in the order the console lists them."""
    return ADJUSTMENT_REASONS
