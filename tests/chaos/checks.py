"""After the faults: wait for the sweeps, then read the truth from the database, Redis,
the emulator (intents and charges through the SDK, its delivery log) and the mail
catcher, and turn it into figures. Each figure named in :data:`MUST_BE_ZERO` is an
invariant; the tests assert those, never timings."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg2
import requests

from app import keys
from app.services import checkout_status
from tests.chaos.harness import ChaosStack
from tests.chaos.sale import Buyer, Forger

TERMINAL = {"PAID", "FULFILLING", "FULFILLED", "FAILED", "CANCELED", "REFUNDED"}
PAID_LIKE = {"PAID", "FULFILLING", "FULFILLED", "REFUNDED"}

MUST_BE_ZERO = (
    "buyers who paid but never saw PAID",
    "not terminal, no live hold",
    "oversold units",
    "stock on hand ≠ initial - sold",
    "Redis ≠ DB counters after rebuild",
    "orders with two successful charges",
    "PAID without a succeeded intent",
    "succeeded intent, order not PAID",
    "admitted without an order (unexplained)",
    "pending zset entries left",
    "orders no buyer was answered",
    "half-written orders",
    "PAID without exactly one sent receipt",
    "PAID without exactly one receipt mail",
    "events applied twice",
    "inbox rows not processed",
    "forged deliveries accepted",
)


@dataclass
class Report:
    """One scenario's figures, in print order."""

    scenario: str
    figures: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def violations(self) -> dict[str, Any]:
        return {k: self.figures[k] for k in MUST_BE_ZERO if self.figures.get(k)}

    def table(self) -> str:
        width = max(len(k) for k in self.figures)
        lines = [f"{self.scenario}", "-" * (width + 14)]
        for key, value in self.figures.items():
            mark = "  ✗" if key in MUST_BE_ZERO and value else ""
            lines.append(f"{key:<{width}}  {value}{mark}")
        return "\n".join(lines)


class Db:
    """Plain SQL on the suite's own PostgreSQL (the test process binds no models)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        connection = psycopg2.connect(self.url)
        try:
            with connection.cursor() as cur:
                cur.execute(sql, tuple(params))
                return list(cur.fetchall())
        finally:
            connection.close()


def _like(skus: Iterable[str]) -> tuple[str, list[str]]:
    skus = list(skus)
    return " OR ".join(["o.line_items LIKE %s"] * len(skus)), [f'%"{s}"%' for s in skus]


def scenario_orders(db: Db, skus: Iterable[str]) -> list[dict[str, Any]]:
    where, params = _like(skus)
    rows = db.rows(
        f"""SELECT o.id, o.state, o.email, o.payment_intent_id, o.order_number, o.line_items,
                   r.id, r.status, r.expires_at, r.items
            FROM orders o LEFT JOIN reservation r ON r.order_id = o.id WHERE {where}""",
        params,
    )
    names = (
        "id",
        "state",
        "email",
        "intent",
        "number",
        "lines",
        "res",
        "res_status",
        "res_expires",
        "res_items",
    )
    orders = [dict(zip(names, row, strict=True)) for row in rows]
    for order in orders:
        order["res_items"] = json.loads(order["res_items"]) if order["res_items"] else []
    return orders


def settle(
    stack: ChaosStack,
    skus: list[str],
    admitted: set[str],
    timeout: float,
    progress: Callable[[str], None],
) -> float:
    """Wait (bounded) until every order is terminal, no admitted submission is pending,
    every PAID order's receipt is sent and the inbox is done; returns the seconds waited."""
    db = Db(stack.postgres.url)
    redis = stack.redis()
    t0 = time.monotonic()
    last = ""
    while True:
        stack.ensure_running()
        try:
            orders = scenario_orders(db, skus)
            pending = set(redis.zrange(keys.PENDING, 0, -1)) & admitted
            open_ = [o for o in orders if o["state"] not in TERMINAL]
            unsent = db.rows(
                "SELECT count(*) FROM outbox WHERE status <> 'sent' AND kind = 'receipt'"
            )[0][0]
            inbox = db.rows(
                "SELECT count(*) FROM webhook_event WHERE status NOT IN ('processed', 'ignored')"
            )[0][0]
            written = {o["id"] for o in orders}
            state = (
                f"open orders {len(open_)}, pending {len(pending)}, unsent receipts {unsent}, "
                f"inbox unfinished {inbox}, admitted unwritten {len(admitted - written)}"
            )
        except Exception as exc:  # a server still coming back
            state, open_, pending, unsent, inbox = f"not readable yet: {exc!r}", [1], {1}, 1, 1
        if state != last:
            progress(f"  settling: {state}")
            last = state
        if not open_ and not pending and not unsent and not inbox:
            break
        if time.monotonic() - t0 > timeout:
            progress(f"  settle timed out after {timeout:.0f}s: {state}")
            break
        time.sleep(2)
    redis.close()
    return time.monotonic() - t0


def _emulator_objects(stack: ChaosStack) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    client = stack.stripe(retries=5)
    intents = [
        i.to_dict() for i in client.v1.payment_intents.list({"limit": 100}).auto_paging_iter()
    ]
    charges = [c.to_dict() for c in client.v1.charges.list({"limit": 100}).auto_paging_iter()]
    return intents, charges


def collect(
    stack: ChaosStack,
    scenario: str,
    skus: dict[str, int],
    buyers: list[Buyer],
    forger: Forger,
    deliveries_before: int,
    extra: dict[str, Any] | None = None,
) -> Report:
    """Every figure of one scenario (``skus``: each SKU's stock at the start)."""
    db = Db(stack.postgres.url)
    redis = stack.redis()
    report = Report(scenario)
    f = report.figures
    orders = scenario_orders(db, skus)
    by_id = {o["id"]: o for o in orders}
    ids = list(by_id)
    f.update(extra or {})

    # Buyers --------------------------------------------------------------------------
    outcomes = Counter(b.outcome for b in buyers)
    codes = Counter(b.submit_code for b in buyers if b.submit_code)
    f["buyers"] = len(buyers)
    f["submits answered 202"] = sum(len(b.order_ids) for b in buyers)
    f["refused out_of_stock (409)"] = codes.get("out_of_stock", 0)
    others = {c: n for c, n in codes.items() if c != "out_of_stock"}
    if others:
        f["refused otherwise"] = others
    f["buyer outcomes"] = dict(sorted(outcomes.items()))
    f["buyers who paid but never saw PAID"] = sum(
        1 for b in buyers if b.outcome.startswith("paid_then")
    )
    f["buyer retries (transport, 5xx, 429)"] = sum(b.transport_retries for b in buyers)

    # Orders ----------------------------------------------------------------------------
    states = Counter(o["state"] for o in orders)
    f["orders"] = len(orders)
    f["orders by state"] = dict(sorted(states.items()))
    now = datetime.utcnow()
    not_live = []
    for o in orders:
        if o["state"] in TERMINAL:
            continue
        live = (
            o["res_status"] == "HELD"
            and o["res_expires"] is not None
            and o["res_expires"] > now
            and redis.hget(keys.reservation(o["res"]), "status") == "HELD"
        )
        if o["state"] != "PENDING" or not live:
            not_live.append(o["id"])
    f["not terminal, no live hold"] = len(not_live)
    report.details["not_live"] = not_live

    # Stock (I1, I9) ------------------------------------------------------------------------
    oversold = 0
    stock_mismatch = 0
    sold_units = 0
    per_sku: dict[str, dict[str, int]] = {}
    for sku, initial in skus.items():
        confirmed = held = 0
        for o in orders:
            qty = sum(int(q) for s, q in (o["res_items"] or []) if s == sku)
            if o["res_status"] == "CONFIRMED":
                confirmed += qty
            elif o["res_status"] == "HELD":
                held += qty
        on_hand = int(db.rows("SELECT stock_on_hand FROM product WHERE sku = %s", [sku])[0][0])
        oversold += max(0, confirmed + held - initial)
        stock_mismatch += abs(on_hand - (initial - confirmed))
        sold_units += confirmed
        avail_before = int(redis.hget(keys.AVAIL, sku) or -1)
        per_sku[sku] = {
            "initial": initial,
            "confirmed": confirmed,
            "held": held,
            "onHand": on_hand,
            "redisAvail": avail_before,
            "dbAvail": on_hand - held,
        }
    f["units sold (CONFIRMED)"] = sold_units
    f["oversold units"] = oversold
    f["stock on hand ≠ initial - sold"] = stock_mismatch
    f["Redis ≠ DB counters before rebuild"] = sum(
        1 for v in per_sku.values() if v["redisAvail"] != v["dbAvail"]
    )
    rebuild = stack.rebuild_inventory()
    after = {sku: int(redis.hget(keys.AVAIL, sku) or -1) for sku in skus}
    f["Redis ≠ DB counters after rebuild"] = sum(
        1 for sku, v in per_sku.items() if after[sku] != v["dbAvail"]
    )
    f["rebuild (inventory rebuild's words)"] = rebuild.splitlines()[0] if rebuild else ""
    report.details["stock"] = per_sku
    report.details["rebuild"] = rebuild

    # Money (I2, I8, I10) ---------------------------------------------------------------
    intents, charges = _emulator_objects(stack)
    mine = [i for i in intents if (i.get("metadata") or {}).get("orderId") in by_id]
    intent_order = {i["id"]: i["metadata"]["orderId"] for i in mine}
    succeeded_charges: Counter[str] = Counter()
    for charge in charges:
        order_id = intent_order.get(charge.get("payment_intent") or "")
        if order_id and charge.get("status") == "succeeded" and charge.get("captured", True):
            succeeded_charges[order_id] += 1
    intents_per_order = Counter(intent_order.values())
    succeeded_intents = {i["metadata"]["orderId"] for i in mine if i["status"] == "succeeded"}
    f["intents created"] = len(mine)
    f["orders with two intents"] = sum(1 for n in intents_per_order.values() if n > 1)
    f["successful charges"] = sum(succeeded_charges.values())
    f["orders with two successful charges"] = sum(1 for n in succeeded_charges.values() if n > 1)
    paid = [o for o in orders if o["state"] in PAID_LIKE]
    f["PAID without a succeeded intent"] = sum(1 for o in paid if o["id"] not in succeeded_intents)
    stuck = [oid for oid in succeeded_intents if by_id[oid]["state"] not in PAID_LIKE]
    f["succeeded intent, order not PAID"] = len(stuck)
    report.details["stuck"] = stuck

    # Admission (I7) --------------------------------------------------------------------
    admitted = {oid for b in buyers for oid in b.order_ids}
    lost = {oid for b in buyers for oid in b.lost_with_redis}
    unwritten = admitted - set(ids)
    # Released by the expiry before any worker wrote it (a dead worker's message came back
    # after the hold ran out): the buyer was told CANCELED / hold_expired, nothing charged.
    expired = set()
    for order_id in unwritten - lost:
        view = checkout_status.read(redis, order_id) or {}
        if view.get("state") == "CANCELED" and (view.get("error") or {}).get("code") == (
            "hold_expired"
        ):
            expired.add(order_id)
    f["admitted without an order (lost with the Redis flush, explained)"] = len(unwritten & lost)
    f["admitted without an order (hold expired before written, buyer told)"] = len(expired)
    f["admitted without an order (unexplained)"] = len(unwritten - lost - expired)
    report.details["unwritten"] = sorted(unwritten - lost - expired)
    # A retried submit (same key) after a lost answer must replay, not make a second order.
    f["orders no buyer was answered"] = len(set(ids) - admitted)
    f["pending zset entries left"] = len(set(redis.zrange(keys.PENDING, 0, -1)) & admitted)

    # Audit trail and half-written orders (I3, I4) --------------------------------------
    events: dict[str, Counter[str]] = defaultdict(Counter)
    if ids:
        for order_id, type_, n in db.rows(
            "SELECT order_id, type, count(*) FROM order_event WHERE order_id = ANY(%s) "
            "GROUP BY order_id, type",
            [ids],
        ):
            events[order_id][type_] = n
    half = []
    twice = []
    for o in orders:
        ev = events[o["id"]]
        if (
            o["res"] is None
            or not ev["ORDER_CREATED"]
            or (
                o["state"] in PAID_LIKE
                and (o["res_status"] != "CONFIRMED" or not ev["PAYMENT_SUCCEEDED"])
            )
        ):
            half.append(o["id"])
        if ev["PAYMENT_SUCCEEDED"] > 1 or ev["STOCK_CONFIRMED"] > 1 or ev["ORDER_CREATED"] > 1:
            twice.append(o["id"])
    f["half-written orders"] = len(half)
    f["events applied twice"] = len(twice)
    report.details["half"] = half
    report.details["twice"] = twice

    # Receipts --------------------------------------------------------------------------
    paid_ids = [o["id"] for o in orders if o["state"] in PAID_LIKE]
    outbox: Counter[str] = Counter()
    if paid_ids:
        for order_id, n in db.rows(
            "SELECT order_id, count(*) FROM outbox WHERE kind = 'receipt' AND status = 'sent' "
            "AND order_id = ANY(%s) GROUP BY order_id",
            [paid_ids],
        ):
            outbox[order_id] = n
    f["PAID orders"] = len(paid_ids)
    f["PAID without exactly one sent receipt"] = sum(1 for i in paid_ids if outbox[i] != 1)
    mails = requests.get(f"{stack.mail}/messages.json", timeout=30).json()
    subjects = Counter(str(m.get("subject", "")) for m in mails)
    by_number = {o["id"]: subjects[f"Your receipt for order {o['number']}"] for o in paid}
    f["PAID without exactly one receipt mail"] = sum(1 for i in paid_ids if by_number[i] != 1)

    # Webhooks (I3) ----------------------------------------------------------------------
    log = stack.emulator_control("deliveries")["data"][deliveries_before:]
    f["webhook delivery attempts"] = len(log)
    f["  duplicated"] = sum(1 for d in log if d.get("duplicate"))
    f["  reordered"] = sum(1 for d in log if d.get("reordered"))
    f["  not acknowledged (retried by the emulator)"] = sum(1 for d in log if not d.get("ok"))
    inbox = dict(db.rows("SELECT status, count(*) FROM webhook_event GROUP BY status"))
    f["inbox rows by status (all scenarios so far)"] = inbox
    f["inbox rows not processed"] = sum(
        n for s, n in inbox.items() if s not in ("processed", "ignored")
    )
    f["forged deliveries sent"] = forger.total
    f["forged deliveries refused (400)"] = forger.answers.get(400, 0)
    f["forged deliveries accepted"] = len(forger.accepted)
    report.details["forged_accepted"] = forger.accepted
    report.details["forged_kinds"] = dict(forger.sent)
    redis.close()
    return report
