"""Inventory: the Lua-backed holds, on fakeredis and (marker realredis) the real Redis."""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app import keys
from app.errors import IdempotencyKeyReused, InvalidRequest, InvalidState, OutOfStock
from app.services.admission import Admission, Submission, admit
from app.services.inventory import (
    HeldReservation,
    Inventory,
    rebuild_counts_from_db,
    rebuild_from_db,
)


@pytest.fixture
def inv(any_redis: Any) -> Inventory:
    """An inventory with A: 5, B: 2, C: 0 units."""
    inventory = Inventory(any_redis)
    any_redis.hset(keys.AVAIL, mapping={"A": 5, "B": 2, "C": 0})
    return inventory


class TestHold:
    def test_takes_every_line(self, inv: Inventory) -> None:
        assert inv.hold("r1", [("A", 2), ("B", 1)], 60, order_id="o1") is True
        assert inv.available() == {"A": 3, "B": 1, "C": 0}
        record = inv.reservation("r1")
        assert record is not None
        assert record["status"] == "HELD"
        assert record["items"] == [("A", 2), ("B", 1)]
        assert record["orderId"] == "o1"

    def test_all_or_nothing_reports_every_short_line(self, inv: Inventory) -> None:
        with pytest.raises(OutOfStock) as caught:
            inv.hold("r1", [("A", 1), ("B", 3), ("C", 1)], 60)
        assert caught.value.items == [
            {"sku": "B", "requested": 3, "available": 2},
            {"sku": "C", "requested": 1, "available": 0},
        ]
        assert inv.available() == {"A": 5, "B": 2, "C": 0}
        assert inv.status("r1") is None
        assert inv.redis.zcard(keys.HOLDS) == 0

    def test_unknown_skus_are_reported_by_line(self, inv: Inventory) -> None:
        with pytest.raises(InvalidRequest) as caught:
            inv.hold("r1", [("A", 1), ("NOPE", 1), ("B", 1), ("NOPE", 2)], 60)
        assert caught.value.fields == {
            "items.1.sku": ["Unknown SKU."],
            "items.3.sku": ["Unknown SKU."],
        }
        assert inv.available() == {"A": 5, "B": 2, "C": 0}
        assert inv.status("r1") is None

    def test_repeated_sku_lines_are_summed(self, inv: Inventory) -> None:
        with pytest.raises(OutOfStock) as caught:
            inv.hold("r1", [("A", 3), ("A", 3)], 60)
        assert caught.value.items == [{"sku": "A", "requested": 6, "available": 5}]
        inv.hold("r1", [("A", 2), ("B", 1), ("A", 3)], 60)
        assert inv.available()["A"] == 0
        record = inv.reservation("r1")
        assert record is not None
        assert record["items"] == [("A", 5), ("B", 1)]

    def test_same_reservation_id_changes_nothing(self, inv: Inventory) -> None:
        assert inv.hold("r1", [("A", 2)], 60) is True
        assert inv.hold("r1", [("A", 2)], 60) is False
        assert inv.hold("r1", [("B", 1)], 60) is False
        assert inv.available() == {"A": 3, "B": 2, "C": 0}

    def test_exact_stock_can_be_held(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 5), ("B", 2)], 60)
        assert inv.available() == {"A": 0, "B": 0, "C": 0}

    @pytest.mark.parametrize(
        ("items", "field"),
        [
            ([("A", 0)], "items.0.quantity"),
            ([("A", -1)], "items.0.quantity"),
            ([("A", True)], "items.0.quantity"),
            ([("", 1)], "items.0.sku"),
            ([], "items"),
        ],
    )
    def test_bad_lines_are_refused(self, inv: Inventory, items: Any, field: str) -> None:
        with pytest.raises(InvalidRequest) as caught:
            inv.hold("r1", items, 60)
        assert field in caught.value.fields
        assert inv.status("r1") is None

    def test_record_expires_after_a_week_past_the_hold(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 1)], 60)
        ttl = inv.redis.ttl(keys.reservation("r1"))
        assert 7 * 24 * 3600 < ttl <= 7 * 24 * 3600 + 60


class TestConfirm:
    def test_held_becomes_confirmed_and_leaves_the_sweep(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2)], 60)
        assert inv.confirm("r1") is True
        assert inv.status("r1") == "CONFIRMED"
        assert inv.available()["A"] == 3
        assert inv.redis.zscore(keys.HOLDS, "r1") is None

    def test_second_confirm_changes_nothing(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2)], 60)
        inv.confirm("r1")
        assert inv.confirm("r1") is False
        assert inv.status("r1") == "CONFIRMED"
        assert inv.available()["A"] == 3

    def test_released_or_unknown_is_not_confirmed(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2)], 60)
        inv.release("r1")
        assert inv.confirm("r1") is False
        assert inv.status("r1") == "RELEASED"
        assert inv.confirm("missing") is False
        assert inv.status("missing") is None


class TestRelease:
    def test_units_come_back(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2), ("B", 2)], 60)
        assert inv.release("r1") is True
        assert inv.available() == {"A": 5, "B": 2, "C": 0}
        assert inv.status("r1") == "RELEASED"
        assert inv.redis.zscore(keys.HOLDS, "r1") is None

    def test_second_release_changes_nothing(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2)], 60)
        inv.release("r1")
        assert inv.release("r1") is False
        assert inv.available()["A"] == 5

    def test_confirmed_units_stay_sold(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2)], 60)
        inv.confirm("r1")
        assert inv.release("r1") is False
        assert inv.available()["A"] == 3

    def test_hold_after_release_with_same_id_changes_nothing(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2)], 60)
        inv.release("r1")
        assert inv.hold("r1", [("A", 2)], 60) is False
        assert inv.available()["A"] == 5


class TestExtend:
    def test_moves_expiry_later(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 1)], 60)
        before = inv.redis.zscore(keys.HOLDS, "r1")
        assert inv.extend("r1", 3600) is True
        after = inv.redis.zscore(keys.HOLDS, "r1")
        assert after >= before + 3000
        record = inv.reservation("r1")
        assert record is not None
        assert record["expiresAt"] == int(after)

    def test_never_moves_expiry_earlier(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 1)], 3600)
        before = inv.redis.zscore(keys.HOLDS, "r1")
        assert inv.extend("r1", 10) is True
        assert inv.redis.zscore(keys.HOLDS, "r1") == before

    def test_only_held_reservations(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 1)], 60)
        inv.confirm("r1")
        assert inv.extend("r1", 3600) is False
        assert inv.redis.zscore(keys.HOLDS, "r1") is None
        assert inv.extend("missing", 3600) is False


class TestOverdue:
    def test_lists_expired_holds_with_their_orders(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 1)], 60, order_id="o1")
        inv.hold("r2", [("A", 1)], 3600, order_id="o2")
        inv.hold("r3", [("A", 1)], 60, order_id="o3")
        inv.confirm("r3")
        later = datetime.now(UTC) + timedelta(seconds=120)
        assert inv.overdue(later) == [("r1", "o1")]
        assert inv.overdue(time.time() + 7200) == [("r1", "o1"), ("r2", "o2")]
        assert inv.overdue() == []


class TestAdjustAndRestock:
    def test_adjust_moves_the_counter(self, inv: Inventory) -> None:
        assert inv.adjust("A", 3) == 8
        assert inv.adjust("A", -8) == 0
        assert inv.adjust("NEW", 4) == 4
        assert inv.available(["A", "NEW"]) == {"A": 0, "NEW": 4}

    def test_adjust_never_goes_below_what_is_held(self, inv: Inventory) -> None:
        inv.hold("r1", [("B", 2)], 60)
        with pytest.raises(InvalidState):
            inv.adjust("B", -1)
        with pytest.raises(InvalidState):
            inv.adjust("GHOST", -1)
        assert inv.available() == {"A": 5, "B": 0, "C": 0}

    def test_restock_adds_every_line(self, inv: Inventory) -> None:
        inv.restock([("A", 1), ("C", 2), ("A", 1)])
        assert inv.available() == {"A": 7, "B": 2, "C": 2}

    def test_restock_of_a_returned_reservation_releases_its_record(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2)], 60, order_id="o1")
        inv.confirm("r1")
        inv.restock([("A", 2)], returned="r1")
        assert inv.status("r1") == "RELEASED"
        assert inv.available() == {"A": 5, "B": 2, "C": 0}
        inv.restock([], returned="r1")  # a retry: the record stays, nothing counted
        inv.restock([], returned="absent")  # no record (lapsed): none is made
        assert (inv.status("r1"), inv.status("absent")) == ("RELEASED", None)
        assert inv.available() == {"A": 5, "B": 2, "C": 0}

    def test_a_held_record_is_not_released_by_a_restock(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2)], 60)  # only a CONFIRMED record was sold and returned
        inv.restock([("B", 1)], returned="r1")
        assert inv.status("r1") == "HELD"
        assert inv.available() == {"A": 3, "B": 3, "C": 0}


class TestAvailable:
    def test_subset_leaves_unknown_skus_out(self, inv: Inventory) -> None:
        assert inv.available(["B", "NOPE"]) == {"B": 2}
        assert inv.available([]) == {}


class TestRebuild:
    def test_replaces_the_counters(self, inv: Inventory) -> None:
        report = inv.rebuild({"A": 4, "D": 9})
        assert inv.available() == {"A": 4, "D": 9}
        assert report.skus == 2

    def test_keeps_holds_that_only_redis_knows(self, inv: Inventory) -> None:
        # A submission admitted but not yet written to the database still holds units.
        inv.hold("fresh", [("A", 2)], 60)
        report = inv.rebuild({"A": 5, "B": 2})
        assert inv.available() == {"A": 3, "B": 2}
        assert report.redis_only_holds == 1

    def test_restores_lost_records_so_release_still_works(self, any_redis: Any) -> None:
        inventory = Inventory(any_redis)  # an empty Redis, as after a loss
        expires = int(time.time()) + 600
        held = [HeldReservation("r1", "o1", [("A", 2)], expires)]
        report = inventory.rebuild({"A": 3}, held)
        assert report.restored == 1
        assert inventory.status("r1") == "HELD"
        assert inventory.overdue(expires + 1) == [("r1", "o1")]
        assert inventory.release("r1") is True
        assert inventory.available() == {"A": 5}

    def test_existing_records_are_not_overwritten(self, inv: Inventory) -> None:
        inv.hold("r1", [("A", 2)], 60, order_id="o1")
        inv.confirm("r1")
        held = [HeldReservation("r1", "o1", [("A", 2)], int(time.time()) + 60)]
        assert inv.rebuild({"A": 3}, held).restored == 0
        assert inv.status("r1") == "CONFIRMED"
        assert inv.available()["A"] == 3

    def test_a_held_record_the_database_settled_follows_it(self, inv: Inventory) -> None:
        # r1's confirm and r2's release were lost with a failed-over primary: both records
        # are still HELD in Redis, while the database's counts already sold r1's units
        # (on hand 5 - 2) and put r2's back.
        inv.hold("r1", [("A", 2)], 60, order_id="o1")
        inv.hold("r2", [("B", 1)], 60, order_id="o2")
        inv.hold("fresh", [("B", 1)], 60)  # not written yet: still holds its unit
        report = inv.rebuild(
            {"A": 3, "B": 2}, settled={"r1": "CONFIRMED", "r2": "RELEASED", "gone": "RELEASED"}
        )
        assert inv.available() == {"A": 3, "B": 1}
        assert (report.settled, report.redis_only_holds) == (2, 1)
        assert (inv.status("r1"), inv.status("r2")) == ("CONFIRMED", "RELEASED")
        assert inv.held_ids() == ["fresh"]
        assert inv.confirm("r1") is False and inv.release("r2") is False  # nothing twice


class TestRebuildCountsFromDb:
    def test_on_hand_minus_held(self, db: Any) -> None:
        from models import Order, Product, Reservation

        Product.create(sku="A", name="A", price_amount=100, currency="usd", stock_on_hand=5)
        Product.create(sku="B", name="B", price_amount=100, currency="usd", stock_on_hand=1)
        for n, status in enumerate(["HELD", "CONFIRMED", "RELEASED"]):
            order = Order.create(
                id=f"o{n}",
                order_number=f"ORD-{n}",
                idempotency_key=f"key-{n}",
                email="a@example.com",
                line_items=[],
                subtotal=0,
                total=0,
                currency="usd",
                shipping_address={},
                reservation_id=f"r{n}",
                checkout_token_hash="x",
            )
            Reservation.create(
                id=f"r{n}",
                order=order,
                items=[["A", 2]],
                expires_at=datetime(2030, 1, 1),
                status=status,
            )
        counts, held = rebuild_counts_from_db()
        assert counts == {"A": 3, "B": 1}
        assert held == [
            HeldReservation(
                "r0", "o0", [("A", 2)], int(datetime(2030, 1, 1, tzinfo=UTC).timestamp())
            )
        ]


class TestRebuildFromDb:
    def test_redis_flush_with_held_and_confirmed_orders_restores_exact_counters(
        self, runtime: Any, gateway: Any
    ) -> None:
        """I9: after losing Redis, the rebuild gives on hand - confirmed - held exactly,
        the next holds cannot oversell, and the surviving hold still expires cleanly."""
        from app.services.checkout import create_order_from_submission
        from app.services.expiry import expire_hold
        from app.services.webhooks import handle_event
        from models import Order, Product, Reservation
        from tests.fakes import admit_checkout, stock

        stock(runtime.redis, "TEE", on_hand=10)
        stock(runtime.redis, "MUG", on_hand=5)
        held = create_order_from_submission(
            admit_checkout(runtime.redis, [("TEE", 2), ("MUG", 1)]).order_id, runtime
        )
        sold = create_order_from_submission(
            admit_checkout(runtime.redis, [("TEE", 3)]).order_id, runtime
        )
        assert held is not None and sold is not None
        event = gateway.event("payment_intent.succeeded", gateway.confirm(sold.payment_intent_id))
        handle_event(event["id"], event, runtime)
        assert Order.get_by_id(sold.id).state == "PAID"
        before = Inventory(runtime.redis).available()
        assert before == {"TEE": 5, "MUG": 4}

        runtime.redis.flushall()
        report = rebuild_from_db(runtime.redis)

        inventory = Inventory(runtime.redis)
        assert inventory.available() == before  # 10 - 3 confirmed - 2 held; 5 - 1 held
        assert report.restored == 1
        assert inventory.status(held.reservation_id) == "HELD"
        with pytest.raises(OutOfStock):
            inventory.hold("late", [("TEE", 6)], 60)
        inventory.hold("last", [("TEE", 5), ("MUG", 4)], 60)
        assert inventory.available() == {"TEE": 0, "MUG": 0}

        # The held order's expiry still works after the loss: its units come back once.
        past = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)
        Reservation.update(expires_at=past).where(Reservation.order == held.id).execute()
        assert expire_hold(held.id, runtime).action == "canceled"
        assert inventory.available() == {"TEE": 2, "MUG": 1}
        assert Product.get_by_id("TEE").stock_on_hand == 7

    def test_a_confirm_or_release_lost_with_the_primary_is_not_subtracted_again(
        self, runtime: Any, gateway: Any
    ) -> None:
        """The failover suite's "Redis ≠ DB counters after rebuild": the database says
        CONFIRMED (or RELEASED) while the promoted replica still has the record HELD in
        ``{shop}:holds``. The rebuild must count those units once, from the database."""
        from app.services.checkout import create_order_from_submission
        from app.services.expiry import cancel_order
        from app.services.webhooks import handle_event
        from models import Order
        from tests.fakes import admit_checkout, stock

        stock(runtime.redis, "TEE", on_hand=10)
        sold = create_order_from_submission(
            admit_checkout(runtime.redis, [("TEE", 3)]).order_id, runtime
        )
        dropped = create_order_from_submission(
            admit_checkout(runtime.redis, [("TEE", 2)]).order_id, runtime
        )
        assert sold is not None and dropped is not None
        event = gateway.event("payment_intent.succeeded", gateway.confirm(sold.payment_intent_id))
        handle_event(event["id"], event, runtime)
        cancel_order(dropped.id, runtime)
        assert Order.get_by_id(sold.id).state == "PAID"
        assert Order.get_by_id(dropped.id).state == "CANCELED"
        assert Inventory(runtime.redis).available() == {"TEE": 7}

        # What the promoted replica has: both scripts lost, both records still HELD.
        for order in (sold, dropped):
            runtime.redis.hset(keys.reservation(order.reservation_id), "status", "HELD")
            runtime.redis.zadd(keys.HOLDS, {order.reservation_id: int(time.time()) + 600})
        runtime.redis.hincrby(keys.AVAIL, "TEE", -2)  # the release's units were lost too

        report = rebuild_from_db(runtime.redis)

        inventory = Inventory(runtime.redis)
        assert inventory.available() == {"TEE": 7}  # 10 on hand - 3 sold
        assert (report.settled, report.redis_only_holds) == (2, 0)
        assert inventory.status(sold.reservation_id) == "CONFIRMED"
        assert inventory.status(dropped.reservation_id) == "RELEASED"
        assert inventory.held_ids() == []


# --- I1: no oversell, whatever the sequence -----------------------------------------
#
# Model-based: a plain-Python model says what every operation must do (hold and admit
# all or nothing, confirm and release only from HELD, a confirmed hold sold for good);
# after each step the scripts' state must equal the model's. Both hold.lua (Inventory)
# and admit.lua (the submit path) take units, so both are driven.

SKUS = ("A", "B")
lines = st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=3)
operation = st.one_of(
    st.tuples(st.just("hold"), st.integers(0, 5), lines),
    st.tuples(
        st.just("admit"),
        st.integers(0, 3),  # idempotency key: a repeated key is a replay or a mismatch
        st.dictionaries(st.sampled_from(SKUS), st.integers(1, 4), min_size=1),
    ),
    st.tuples(st.just("confirm"), st.integers(0, 9)),
    st.tuples(st.just("release"), st.integers(0, 9)),
    st.tuples(st.just("adjust"), st.sampled_from(SKUS), st.integers(-4, 4)),
)


class Model:
    """What the inventory must hold: on hand per SKU, each reservation's status and lines."""

    def __init__(self, on_hand: dict[str, int]) -> None:
        self.on_hand = dict(on_hand)
        self.status: dict[str, str] = {}
        self.items: dict[str, list[tuple[str, int]]] = {}
        self.keys: dict[int, tuple[dict[str, int], str]] = {}
        self.order: list[str] = []  # reservation ids in creation order (for confirm/release)

    def committed(self, sku: str) -> int:
        return sum(
            qty
            for rid, status in self.status.items()
            if status in ("HELD", "CONFIRMED")
            for line_sku, qty in self.items[rid]
            if line_sku == sku
        )

    def available(self, sku: str) -> int:
        return self.on_hand[sku] - self.committed(sku)

    def fits(self, items: list[tuple[str, int]]) -> bool:
        wanted: dict[str, int] = {}
        for sku, qty in items:
            wanted[sku] = wanted.get(sku, 0) + qty
        return all(qty <= self.available(sku) for sku, qty in wanted.items())

    def take(self, rid: str, items: list[tuple[str, int]]) -> None:
        self.status[rid], self.items[rid] = "HELD", items
        self.order.append(rid)

    def pick(self, index: int) -> str | None:
        return self.order[index % len(self.order)] if self.order else None


class TestNoOversellProperty:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(start=st.tuples(st.integers(0, 6), st.integers(0, 6)), ops=st.lists(operation))
    # Always tried, whatever the random draw: a sold hold released (hold.lua / admit.lua).
    @example(start=(3, 1), ops=[("hold", 0, [("A", 2)]), ("confirm", 0), ("release", 0)])
    @example(start=(3, 1), ops=[("admit", 0, {"A": 2, "B": 1}), ("confirm", 0), ("release", 0)])
    def test_confirmed_plus_held_never_exceeds_on_hand(
        self, start: tuple[int, int], ops: list[Any]
    ) -> None:
        inv = Inventory(fakeredis.FakeRedis(decode_responses=True))
        model = Model(dict(zip(SKUS, start, strict=True)))
        for sku, n in model.on_hand.items():
            inv.adjust(sku, n)
        for op in ops:
            _apply(inv, model, op)
            _check_invariant(inv, model)

    def test_the_model_catches_a_release_of_a_confirmed_hold(self) -> None:
        """The property above must fail if release.lua released a CONFIRMED hold."""
        inv = Inventory(fakeredis.FakeRedis(decode_responses=True))
        model = Model({"A": 3, "B": 0})
        inv.adjust("A", 3)
        _apply(inv, model, ("hold", 0, [("A", 2)]))
        _apply(inv, model, ("confirm", 0))
        # What a broken release.lua would do: the sold units back on sale.
        inv.redis.hset(keys.reservation("r0"), "status", "RELEASED")
        inv.redis.hincrby(keys.AVAIL, "A", 2)
        with pytest.raises(AssertionError):
            _check_invariant(inv, model)


def _apply(inv: Inventory, model: Model, op: Any) -> None:
    """Run one operation on the scripts and the model; a refusal must change nothing."""
    kind = op[0]
    if kind == "hold":
        rid, items = f"r{op[1]}", op[2]
        fits = rid not in model.status and model.fits(items)
        try:
            taken = inv.hold(rid, items, 60)
        except OutOfStock:
            taken = None
        if rid in model.status:
            assert not taken  # a reservation id seen before changes nothing
        elif fits:
            assert taken is True
            model.take(rid, items)
        else:
            assert taken is None  # refused as out of stock
    elif kind == "admit":
        _admit(inv, model, op[1], op[2])
    elif kind in ("confirm", "release"):
        rid = model.pick(op[1])
        if rid is None:
            return
        done = inv.confirm(rid) if kind == "confirm" else inv.release(rid)
        if model.status[rid] == "HELD":
            model.status[rid] = "CONFIRMED" if kind == "confirm" else "RELEASED"
        else:
            assert not done  # only a HELD reservation moves: CONFIRMED stays sold
    else:
        sku, delta = op[1], op[2]
        try:
            inv.adjust(sku, delta)
            assert model.available(sku) + delta >= 0
            model.on_hand[sku] += delta
        except InvalidState:
            assert model.available(sku) + delta < 0


def _admit(inv: Inventory, model: Model, key: int, wanted: dict[str, int]) -> None:
    """The submit path's script: claim the key and hold every line, or nothing."""
    items = sorted(wanted.items())
    body = {"items": [{"sku": sku, "quantity": qty} for sku, qty in items]}
    submission = Submission.create(body, idempotency_key=f"key-{key:04d}", hold_ttl=60)
    try:
        result = admit(inv.redis, submission, hold_ttl=60, key_ttl=60)
    except (OutOfStock, IdempotencyKeyReused) as exc:
        result = exc
    if key in model.keys:
        same = model.keys[key][0] == wanted
        if same:
            assert isinstance(result, Admission) and result.replayed
        else:
            assert isinstance(result, IdempotencyKeyReused)
    elif model.fits(items):
        assert isinstance(result, Admission) and not result.replayed
        model.keys[key] = (wanted, submission.reservation_id)
        model.take(submission.reservation_id, items)
    else:
        assert isinstance(result, OutOfStock)


def _check_invariant(inv: Inventory, model: Model) -> None:
    """I1 (confirmed + held <= on hand) and every script's state equal to the model's."""
    raw = {sku: int(v) for sku, v in inv.redis.hgetall(keys.AVAIL).items()}
    for sku in SKUS:
        assert model.committed(sku) <= model.on_hand[sku]
        assert raw[sku] >= 0
        assert raw[sku] == model.available(sku)
    for rid, status in model.status.items():
        record = inv.reservation(rid)
        assert record is not None and record["status"] == status, (rid, record, status)
        assert sorted(map(tuple, record["items"])) == sorted(_summed(model.items[rid]))


def _summed(items: list[tuple[str, int]]) -> list[tuple[str, int]]:
    total: dict[str, int] = {}
    for sku, qty in items:
        total[sku] = total.get(sku, 0) + qty
    return list(total.items())


# --- Concurrency on the real Redis --------------------------------------------------


def _opposite_order_worker(url: str, first: str, second: str, rounds: int, out: Any) -> None:
    """Hold and release two SKUs many times, lines in the given order."""
    import redis as redis_lib

    inv = Inventory(redis_lib.Redis.from_url(url, decode_responses=True))
    held = refused = 0
    for n in range(rounds):
        rid = f"{first}-{n}"
        try:
            inv.hold(rid, [(first, 1), (second, 1)], 60)
            held += 1
        except OutOfStock:
            refused += 1
            continue
        if n % 2:
            inv.release(rid)
    out.put((first, held, refused))


@pytest.mark.realredis
class TestConcurrentHolds:
    def test_opposite_line_order_never_oversells(
        self, real_redis: Any, real_redis_url: str
    ) -> None:
        real_redis.hset(keys.AVAIL, mapping={"X": 30, "Y": 30})
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [
            ctx.Process(target=_opposite_order_worker, args=(real_redis_url, a, b, 60, out))
            for a, b in (("X", "Y"), ("Y", "X"))
        ]
        for proc in procs:
            proc.start()
        results = [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=30)
        statuses = [real_redis.hget(key, "status") for key in real_redis.scan_iter("{shop}:res:*")]
        kept, released = statuses.count("HELD"), statuses.count("RELEASED")
        # Each kept hold took one X and one Y: the counters are exact, never below zero.
        assert 0 < kept <= 30
        assert Inventory(real_redis).available() == {"X": 30 - kept, "Y": 30 - kept}
        assert sum(r[1] for r in results) == kept + released
        assert sum(r[2] for r in results) > 0  # the stock did run out under contention


class TestInactiveCounters:
    """An inactive SKU's counter is parked: holds refuse it, releases and restocks and
    rebuilds keep it exact (the Lua scripts, on both servers)."""

    def test_parked_sku_is_refused_like_an_unknown_one(self, inv: Inventory) -> None:
        from app.services.inventory import CounterChange

        assert inv.sync([CounterChange("A", 0, active=False)]) == {"A": 5}
        with pytest.raises(InvalidRequest) as caught:
            inv.hold("r1", [("B", 1), ("A", 1)], 60)
        assert caught.value.fields == {"items.1.sku": ["Unknown SKU."]}
        assert inv.available() == {"B": 2, "C": 0}
        assert inv.redis.hget(keys.AVAIL_INACTIVE, "A") == "5"

    def test_release_and_restock_follow_the_counter(self, inv: Inventory) -> None:
        from app.services.inventory import CounterChange

        inv.hold("r1", [("A", 2)], 60)
        inv.sync([CounterChange("A", -1, active=False)])  # 5 on hand -> 4, 2 held: 2 free
        assert inv.release("r1")
        inv.restock([("A", 1)])
        assert inv.redis.hget(keys.AVAIL_INACTIVE, "A") == "5"
        assert inv.sync([CounterChange("A", 0, active=True)]) == {"A": 5}
        assert inv.redis.hget(keys.AVAIL_INACTIVE, "A") is None

    def test_sync_is_all_or_nothing(self, inv: Inventory) -> None:
        from app.services.inventory import CounterChange

        inv.hold("r1", [("B", 2)], 60)
        with pytest.raises(InvalidState, match="B cannot drop by 1"):
            inv.sync([CounterChange("A", 3, active=False), CounterChange("B", -1)])
        assert inv.available() == {"A": 5, "B": 0, "C": 0}
        assert inv.redis.hlen(keys.AVAIL_INACTIVE) == 0

    def test_rebuild_parks_inactive_products(self, inv: Inventory) -> None:
        inv.rebuild({"A": 4, "B": 1}, [], inactive=["B"])
        assert inv.available() == {"A": 4}
        assert inv.redis.hget(keys.AVAIL_INACTIVE, "B") == "1"
