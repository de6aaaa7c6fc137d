"""Lua-backed stock holds: hold / confirm / release / extend / restock / sync / rebuild.

``{shop}:avail`` counts the units that may still be held (on hand - confirmed - held);
every change to it runs in one Lua script (app/lua/), so concurrent web and worker
processes never oversell (I1). An inactive product's counter is parked in
``{shop}:avail:inactive``: the holds read ``{shop}:avail`` only and refuse it like an
unknown SKU (O(1), nothing added to the hold), while releases and restocks keep its
count exact. The database is the record: :meth:`Inventory.rebuild` restores the
counters from it after a Redis loss (I9).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import peewee
import structlog
from redis import Redis

from app import keys, lua
from app.errors import InvalidRequest, InvalidState, OutOfStock
from models import Order, OrderEvent, Product, Reservation
from models.db import is_bound
from models.statuses import OrderState, ReservationStatus

Line = tuple[str, int]
log = structlog.get_logger("app.services.inventory")

# Orders whose units are sold (stock confirmed) but still on the shelf: not yet shipped.
UNSHIPPED_STATES = (OrderState.AUTHORIZED, OrderState.PAID, OrderState.FULFILLING)


@dataclass(frozen=True)
class CounterChange:
    """One SKU's part of a catalog sync: the stock delta and, if it changes, ``active``."""

    sku: str
    delta: int
    active: bool | None = None  # None: sold or not as before
    price: int | None = None  # unit price in minor units; None: as before


@dataclass(frozen=True)
class HeldReservation:
    """A reservation the database holds as HELD, for :meth:`Inventory.rebuild`."""

    reservation_id: str
    order_id: str
    items: list[Line]
    expires_at: int  # unix seconds


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild wrote: SKUs, Redis-only holds kept, reservation records restored,
    and records still HELD in Redis that followed the database's CONFIRMED or RELEASED."""

    skus: int
    redis_only_holds: int
    restored: int
    settled: int = 0


def validate_lines(items: Sequence[Any]) -> list[Line]:
    """Check ``items`` are ``(sku, positive int)`` pairs; raise InvalidRequest otherwise."""
    if not items:
        raise InvalidRequest("A hold needs at least one line.", fields={"items": ["Empty."]})
    lines: list[Line] = []
    fields: dict[str, list[str]] = {}
    for i, line in enumerate(items):
        sku, qty = line
        if not isinstance(sku, str) or not sku:
            fields[f"items.{i}.sku"] = ["Must be a non-empty string."]
        if isinstance(qty, bool) or not isinstance(qty, int) or qty < 1:
            fields[f"items.{i}.quantity"] = ["Must be a positive integer."]
        lines.append((sku, qty))
    if fields:
        raise InvalidRequest("Invalid items.", fields=fields)
    return lines


def sum_lines(items: Iterable[Line]) -> list[Line]:
    """One line per SKU, quantities summed, in first-seen order."""
    totals: dict[str, int] = {}
    for sku, qty in items:
        totals[sku] = totals.get(sku, 0) + qty
    return list(totals.items())


def flat_lines(items: Iterable[Line]) -> list[Any]:
    """``[(sku, qty), ...]`` as the flat ``sku, qty, ...`` ARGV the scripts read."""
    return [part for line in items for part in line]


class Inventory:
    """Atomic stock operations on one Redis (all keys share the ``{shop}`` hash tag)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def hold(
        self, reservation_id: str, items: Sequence[Line], ttl_seconds: int, order_id: str = ""
    ) -> bool:
        """Hold every line or none; True if taken now, False if this id was seen before.

        Raises OutOfStock (the short lines) or InvalidRequest (unknown SKUs).
        """
        lines = validate_lines(items)
        expires_at = int(time.time()) + ttl_seconds
        reply = lua.run(
            self.redis,
            "hold",
            [keys.AVAIL, keys.reservation(reservation_id), keys.HOLDS],
            [
                reservation_id,
                order_id,
                expires_at,
                ttl_seconds + keys.RESERVATION_KEEP_SECONDS,
                *flat_lines(lines),
            ],
        )
        lua.raise_for_refusal(reply, lines)
        return lua.text(reply[0]) == "OK"

    def rehold(self, reservation_id: str, items: Sequence[Line], order_id: str = "") -> bool:
        """Sell a RELEASED reservation's lines again at once (a late payment), all or none.

        True if the units were taken now, False if it was already CONFIRMED (a retry).
        Raises OutOfStock (the short lines) or InvalidRequest (SKUs no longer sold).
        """
        lines = validate_lines(items)
        reply = lua.run(
            self.redis,
            "rehold",
            [keys.AVAIL, keys.reservation(reservation_id), keys.HOLDS],
            [reservation_id, order_id, keys.RESERVATION_KEEP_SECONDS, *flat_lines(lines)],
        )
        lua.raise_for_refusal(reply, lines)
        return lua.text(reply[0]) == "OK"

    def confirm(self, reservation_id: str) -> bool:
        """HELD → CONFIRMED; False (nothing changed) if not HELD or unknown."""
        names = [keys.reservation(reservation_id), keys.HOLDS]
        return int(lua.run(self.redis, "confirm", names, [reservation_id])) == 1

    def release(self, reservation_id: str) -> bool:
        """HELD → RELEASED with the units back; False (nothing changed) otherwise."""
        names = [keys.AVAIL, keys.reservation(reservation_id), keys.HOLDS, keys.AVAIL_INACTIVE]
        return int(lua.run(self.redis, "release", names, [reservation_id])) == 1

    def extend(self, reservation_id: str, ttl_seconds: int) -> bool:
        """Keep a HELD reservation until at least now + ``ttl_seconds``; False if not HELD."""
        expires_at = int(time.time()) + ttl_seconds
        names = [keys.reservation(reservation_id), keys.HOLDS]
        args = [reservation_id, expires_at, ttl_seconds + keys.RESERVATION_KEEP_SECONDS]
        return int(lua.run(self.redis, "extend", names, args)) == 1

    def restock(self, items: Sequence[Line], *, returned: str | None = None) -> None:
        """Put units back on sale (a refund with restock), all lines at once.

        ``returned`` names the reservation the units were sold from when it is returned
        whole (a voided or lapsed authorisation): its record goes CONFIRMED → RELEASED in
        the same script, as the database's row did. ``items`` may then be empty (every
        unit was restocked before).
        """
        lines = sum_lines(validate_lines(items)) if items or returned is None else []
        names = [keys.AVAIL, keys.AVAIL_INACTIVE]
        if returned is not None:
            names.append(keys.reservation(returned))
        lua.run(self.redis, "restock", names, flat_lines(lines))

    def reclaim(self, items: Sequence[Line], marker: str) -> dict[str, int]:
        """Take restocked units off sale again, as many as are still free: sku → taken.

        Once per ``marker`` (a retry gets the first answer and takes nothing more).
        """
        lines = sum_lines(validate_lines(items))
        names = [keys.AVAIL, keys.AVAIL_INACTIVE, marker]
        args = [keys.RECLAIM_KEEP_SECONDS, *flat_lines(lines)]
        flat = lua.run(self.redis, "reclaim", names, args)
        return {str(flat[i]): int(flat[i + 1]) for i in range(0, len(flat), 2)}

    def adjust(self, sku: str, delta: int) -> int:
        """Admin stock change of one SKU: available += delta; returns the new count.

        Raises InvalidState when the change would leave fewer units than are already
        held (the counter would go negative), so I1 holds; nothing changes then.
        """
        return self.sync([CounterChange(sku, delta)])[sku]

    def sync(self, changes: Sequence[CounterChange]) -> dict[str, int]:
        """A catalog sync's counter and price changes in ONE script, all or nothing:
        sku → new count.

        Raises InvalidState naming every SKU whose stock would drop below what is held or
        sold (the single upsert's rule); nothing changes then. Each SKU at most once.
        """
        args: list[Any] = []
        for change in changes:
            delta = change.delta
            if isinstance(delta, bool) or not isinstance(delta, int):
                raise InvalidRequest(
                    "Delta must be an integer.", fields={"delta": ["Not an integer."]}
                )
            active = "" if change.active is None else "1" if change.active else "0"
            price = "" if change.price is None else int(change.price)
            args += [change.sku, delta, active, price]
        if not args:
            return {}
        names = [keys.AVAIL, keys.AVAIL_INACTIVE, keys.PRICE]
        reply = lua.run(self.redis, "catalog", names, args)
        if lua.text(reply[0]) == "NEGATIVE":
            rest = list(reply[1:])
            free = {lua.text(rest[i]): int(rest[i + 1]) for i in range(0, len(rest), 2)}
            wanted = {c.sku: -c.delta for c in changes}
            detail = "; ".join(
                f"{sku} cannot drop by {wanted[sku]}: only {n} units are free"
                for sku, n in free.items()
            )
            raise InvalidState(f"Stock below what is held or sold: {detail}.")
        return {c.sku: int(n) for c, n in zip(changes, reply[1:], strict=True)}

    def available(self, skus: Sequence[str] | None = None) -> dict[str, int]:
        """Units that may still be held, per SKU (never negative); unknown SKUs left out."""
        pairs: list[tuple[str, Any]]
        if skus is None:
            raw = self.redis.hgetall(keys.AVAIL)
            pairs = [(lua.text(k), v) for k, v in raw.items()]
        else:
            if not skus:
                return {}
            pairs = list(zip(skus, self.redis.hmget(keys.AVAIL, list(skus)), strict=True))
        return {sku: max(int(v), 0) for sku, v in pairs if v is not None}

    def counters(self, skus: Sequence[str]) -> dict[str, int]:
        """Each SKU's counter wherever it lives (sold, or parked while inactive), as
        stored; SKUs without a counter left out. For display: holds read ``available``."""
        if not skus:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys.AVAIL, list(skus))
        pipe.hmget(keys.AVAIL_INACTIVE, list(skus))
        sold, parked = pipe.execute()
        found = {}
        for sku, active, inactive in zip(skus, sold, parked, strict=True):
            value = active if active is not None else inactive
            if value is not None:
                found[sku] = int(value)
        return found

    def status(self, reservation_id: str) -> str | None:
        """HELD, CONFIRMED, RELEASED, or None when Redis has no record."""
        value = self.redis.hget(keys.reservation(reservation_id), "status")
        return None if value is None else lua.text(value)

    def reservation(self, reservation_id: str) -> dict[str, Any] | None:
        """The reservation record: status, items, orderId, expiresAt; None if absent."""
        raw = self.redis.hgetall(keys.reservation(reservation_id))
        if not raw:
            return None
        record = {lua.text(k): lua.text(v) for k, v in raw.items()}
        return {
            "status": record["status"],
            "items": [(sku, int(qty)) for sku, qty in json.loads(record["items"])],
            "orderId": record.get("orderId", ""),
            "expiresAt": int(float(record.get("expiresAt", "0"))),
        }

    def overdue(self, now: float | datetime | None = None) -> list[tuple[str, str]]:
        """HELD reservations whose expiry has passed: ``[(reservation_id, order_id), ...]``."""
        cutoff = _unix(now) if now is not None else time.time()
        ids = [lua.text(r) for r in self.redis.zrangebyscore(keys.HOLDS, "-inf", cutoff)]
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for reservation_id in ids:
            pipe.hget(keys.reservation(reservation_id), "orderId")
        orders = pipe.execute()
        return [
            (rid, "" if oid is None else lua.text(oid))
            for rid, oid in zip(ids, orders, strict=True)
        ]

    def rebuild(
        self,
        counts: dict[str, int],
        reservations: Iterable[HeldReservation] = (),
        inactive: Iterable[str] = (),
        prices: dict[str, int] | None = None,
        settled: dict[str, str] | None = None,
    ) -> RebuildReport:
        """I9: replace ``{shop}:avail`` with the database's numbers, in one script.

        ``counts`` is on hand - confirmed - held per SKU as the database sees it;
        ``reservations`` are the database's HELD reservations, whose Redis records are
        restored when missing. Holds that exist only in Redis (orders not yet written)
        are subtracted as well, so a rebuild under traffic never oversells. The
        ``inactive`` SKUs' counters go to ``{shop}:avail:inactive`` (not sold).
        ``prices`` (unit prices, minor units) replace ``{shop}:price`` (None: kept).
        ``settled`` (reservation id → CONFIRMED or RELEASED) names reservations the
        database has settled: a Redis record of one still HELD (its confirm or release
        was lost with a failed-over primary) is not a Redis-only hold; it takes the
        database's status and leaves ``{shop}:holds``.
        """
        held = [
            {
                "id": r.reservation_id,
                "orderId": r.order_id,
                "items": [list(line) for line in r.items],
                "expiresAt": int(r.expires_at),
            }
            for r in reservations
        ]
        reply = lua.run(
            self.redis,
            "rebuild",
            [keys.AVAIL, keys.HOLDS, keys.AVAIL_INACTIVE, keys.PRICE],
            [
                json.dumps({sku: int(n) for sku, n in counts.items()}),
                json.dumps(held),
                keys.RESERVATION_KEEP_SECONDS,
                keys.RESERVATION_PREFIX,
                json.dumps(sorted(inactive)),
                "" if prices is None else json.dumps({s: int(n) for s, n in prices.items()}),
                json.dumps(settled or {}),
            ],
        )
        return RebuildReport(*(int(x) for x in reply))

    def held_ids(self) -> list[str]:
        """The reservation ids in ``{shop}:holds`` (HELD as far as Redis knows)."""
        return [lua.text(r) for r in self.redis.zrange(keys.HOLDS, 0, -1)]


def _unix(moment: float | datetime) -> float:
    """Unix seconds from a number or a datetime (naive datetimes are UTC)."""
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return aware.timestamp()
    return float(moment)


def rebuild_counts_from_db() -> tuple[dict[str, int], list[HeldReservation]]:
    """The rebuild input from the database: (on hand - held per SKU, HELD reservations).

    Assumes ``Product.stock_on_hand`` already excludes confirmed (sold) units, i.e. the
    order service decrements it when a reservation is confirmed.
    """
    counts = {p.sku: int(p.stock_on_hand) for p in Product.select()}
    held: list[HeldReservation] = []
    for r in Reservation.select().where(Reservation.status == ReservationStatus.HELD):
        items = [(str(sku), int(qty)) for sku, qty in r.items]
        for sku, qty in items:
            if sku in counts:
                counts[sku] -= qty
        held.append(
            HeldReservation(
                reservation_id=r.id,
                order_id=str(r.__data__["order"]),  # the raw foreign key: no join
                items=items,
                expires_at=int(_unix(r.expires_at)),
            )
        )
    return counts, held


def sold_unshipped(skus: Sequence[str]) -> dict[str, int]:
    """Units of ``skus`` sold and not yet shipped: CONFIRMED reservations of orders that
    are AUTHORIZED, PAID or FULFILLING (a catalog sync's shelf count still holds them),
    less the units such an order put back on sale (a capture's restock lines)."""
    wanted = set(skus)
    if not wanted:
        return {}
    query = (
        Reservation.select(Reservation.items, Reservation.order)
        .join(Order)
        .where(
            (Reservation.status == ReservationStatus.CONFIRMED)
            & Order.state.in_([str(state) for state in UNSHIPPED_STATES])
        )
    )
    sold: dict[str, int] = {}
    orders: list[str] = []
    for reservation in query:
        orders.append(str(reservation.__data__["order"]))  # the raw foreign key: no join
        _add_lines(sold, reservation.items, wanted, 1)
    for start in range(0, len(orders), 500):
        restocked = OrderEvent.select(OrderEvent.payload).where(
            OrderEvent.order.in_(orders[start : start + 500])
            & (OrderEvent.type == "STOCK_RESTOCKED")
        )
        for event in restocked:
            _add_lines(sold, (event.payload or {}).get("items") or [], wanted, -1)
    return {sku: n for sku, n in sold.items() if n > 0}


def _add_lines(totals: dict[str, int], lines: Any, wanted: set[str], sign: int) -> None:
    """Add (``sign`` 1) or take away (-1) ``[[sku, qty], ...]`` lines of ``wanted`` SKUs."""
    for sku, qty in lines:
        if sku in wanted:
            totals[sku] = totals.get(sku, 0) + sign * int(qty)


def settled_in_db(reservation_ids: Sequence[str]) -> dict[str, str]:
    """Of ``reservation_ids``, those the database has CONFIRMED or RELEASED: id → status."""
    settled: dict[str, str] = {}
    for start in range(0, len(reservation_ids), 500):
        query = Reservation.select(Reservation.id, Reservation.status).where(
            Reservation.id.in_(list(reservation_ids[start : start + 500]))
            & (Reservation.status != ReservationStatus.HELD)
        )
        settled.update({str(r.id): str(r.status) for r in query})
    return settled


def inactive_skus_from_db() -> list[str]:
    """The SKUs of inactive products (their counters are parked, not sold)."""
    query = Product.select(Product.sku).where(Product.active == False)  # noqa: E712
    return [p.sku for p in query]


def prices_from_db() -> dict[str, int]:
    """Every product's unit price in minor units (``{shop}:price`` after a rebuild)."""
    query = Product.select(Product.sku, Product.price_amount)
    return {p.sku: int(p.price_amount) for p in query}


def rebuild_from_db(redis: Redis) -> RebuildReport:
    """Restore the Redis stock counters and prices from the bound database
    (``flask inventory rebuild``)."""
    inventory = Inventory(redis)
    # Read before the counts: a reservation settled now stays settled (a late payment's
    # rehold moves the Redis record off HELD itself), so the counts read next already
    # hold its units as sold or back on sale, and the script does not subtract them again.
    settled = settled_in_db(inventory.held_ids())
    counts, held = rebuild_counts_from_db()
    return inventory.rebuild(
        counts, held, inactive_skus_from_db(), prices_from_db(), settled=settled
    )


def with_product_names(error: OutOfStock) -> OutOfStock:
    """``error`` with each short line's product ``name`` (the refusal path only).

    One database read, made only once a hold was refused, so an admitted submit pays
    nothing for it. The name is for display: if the database cannot answer (or none is
    bound), the SKU stands in rather than turning a 409 into a 503.
    """
    skus = [item["sku"] for item in error.items]
    names: dict[str, str] = {}
    try:
        if is_bound():  # a process holding stock without a database has no names to give
            rows = Product.select(Product.sku, Product.name).where(Product.sku.in_(skus))
            names = {p.sku: p.name for p in rows}
    except peewee.PeeweeException as exc:
        log.warning("out_of_stock_names_unavailable", error_class=type(exc).__name__)
    items = [
        {"sku": i["sku"], "name": names.get(i["sku"], i["sku"]), **_counts(i)} for i in error.items
    ]
    return OutOfStock(items)


def counters_lost(skus: Sequence[str]) -> list[str]:
    """Of SKUs that ``{shop}:avail`` does not know, those the database sells (active).

    Read on the refusal path only. Such a SKU is not bad input: Redis lost its counter
    (flushed, or restored from an older snapshot) and ``inventory rebuild`` has not run
    yet, so the submit is answered 503 (retry), not 400 ``Unknown SKU`` (I7, I9).
    """
    try:
        if not is_bound():
            return []
        query = Product.select(Product.sku).where(
            Product.sku.in_(list(skus)),
            Product.active == True,  # noqa: E712
        )
        return [p.sku for p in query]
    except peewee.PeeweeException as exc:
        log.warning("unknown_sku_check_unavailable", error_class=type(exc).__name__)
        return []


def _counts(item: dict[str, Any]) -> dict[str, Any]:
    return {"requested": item["requested"], "available": item["available"]}
