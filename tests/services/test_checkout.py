"""Order creation from an admitted submission: one transaction, idempotent, priced here."""

from __future__ import annotations

from typing import Any

import pytest

from app import keys
from app.errors import PaymentProviderError
from app.services import checkout, checkout_status
from app.services.checkout import create_order_from_submission
from app.services.inventory import Inventory
from app.services.order_body import order_view
from models import Order, OrderEvent, Product, Reservation, ShopEvent
from tests.fakes import admit_checkout, sql_sent, stock


def event_types(order: Order) -> list[str]:
    return [e.type for e in Order.get_by_id(order.id).events]


@pytest.fixture
def submission(runtime: Any) -> Any:
    stock(runtime.redis, "TEE", on_hand=10, price=2000)
    return admit_checkout(runtime.redis, [("TEE", 2)])


class TestCreateOrderFromSubmission:
    def test_writes_pending_order_priced_from_the_database(
        self, runtime: Any, submission: Any
    ) -> None:
        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None
        assert order.state == "PENDING"
        assert order.order_number == submission.order_number
        assert order.idempotency_key == submission.idempotency_key
        assert order.line_items[0] == {
            "sku": "TEE",
            "name": "Product TEE",
            "quantity": 2,
            "unitAmount": 2000,
            "amount": 4000,
        }
        assert order.subtotal == 4000
        assert order.total == order.subtotal + order.shipping + order.tax
        reservation = Reservation.get(Reservation.order == order.id)
        assert reservation.id == submission.reservation_id
        assert reservation.status == "HELD"
        assert reservation.items == [["TEE", 2]]

    def test_audit_trail_and_intent(self, runtime: Any, submission: Any, gateway: Any) -> None:
        order = create_order_from_submission(submission.order_id, runtime)
        assert event_types(order) == ["ORDER_CREATED", "STOCK_HELD", "PAYMENT_INTENT_CREATED"]
        intent = gateway.intents[order.payment_intent_id]
        assert intent.amount == order.total
        assert intent.metadata["orderId"] == order.id
        assert intent.metadata["reservationId"] == submission.reservation_id
        create = next(c for c in gateway.calls if c[0] == "create_intent")[1]
        assert create["receipt_email"] == "buyer@example.com"
        assert order.order_number in create["description"]

    def test_publishes_client_secret_and_totals(self, runtime: Any, submission: Any) -> None:
        order = create_order_from_submission(submission.order_id, runtime)
        view = checkout_status.read(runtime.redis, order.id)
        assert view["paymentStatus"] == "requires_payment_method"
        assert view["intentId"] == order.payment_intent_id
        assert view["clientSecret"] == order.client_secret
        assert view["totals"]["total"] == order.total
        assert view["lineItems"][0]["sku"] == "TEE"
        assert runtime.redis.zscore(keys.PENDING, order.id) is None

    def test_second_run_finds_the_order_and_creates_no_second_intent(
        self, runtime: Any, submission: Any, gateway: Any
    ) -> None:
        first = create_order_from_submission(submission.order_id, runtime)
        second = create_order_from_submission(submission.order_id, runtime)
        assert first.id == second.id
        assert first.payment_intent_id == second.payment_intent_id
        assert Order.select().count() == 1
        assert len(gateway.intents) == 1
        assert event_types(first).count("ORDER_CREATED") == 1

    def test_retry_after_retryable_stripe_error_reuses_the_order(
        self, runtime: Any, submission: Any, gateway: Any
    ) -> None:
        gateway.fail_next("create_intent", PaymentProviderError("down", retryable=True))
        with pytest.raises(PaymentProviderError):
            create_order_from_submission(submission.order_id, runtime)
        assert Order.get_by_id(submission.order_id).payment_intent_id is None
        order = create_order_from_submission(submission.order_id, runtime)
        assert order.payment_intent_id in gateway.intents
        assert Order.select().count() == 1

    def test_permanent_stripe_error_fails_order_and_releases_hold(
        self, runtime: Any, submission: Any, gateway: Any
    ) -> None:
        gateway.fail_next("create_intent", PaymentProviderError("bad", retryable=False))
        create_order_from_submission(submission.order_id, runtime)
        order = Order.get_by_id(submission.order_id)
        assert order.state == "FAILED"
        assert Reservation.get(Reservation.order == order.id).status == "RELEASED"
        assert Inventory(runtime.redis).available(["TEE"]) == {"TEE": 10}
        view = checkout_status.read(runtime.redis, order.id)
        assert view["state"] == "FAILED"
        assert view["error"]["code"] == "payment_setup_failed"

    def test_unpriceable_submission_is_rejected_without_order(
        self, runtime: Any, submission: Any
    ) -> None:
        Product.delete().execute()
        assert create_order_from_submission(submission.order_id, runtime) is None
        assert Order.select().count() == 0
        assert Inventory(runtime.redis).status(submission.reservation_id) == "RELEASED"
        view = checkout_status.read(runtime.redis, submission.order_id)
        assert view["error"]["code"] == "validation_failed"

    def test_a_failure_midway_leaves_no_half_written_order(
        self, runtime: Any, submission: Any, gateway: Any, monkeypatch: Any
    ) -> None:
        """I7: order, reservation and first events are one transaction; a crash between
        them leaves nothing, and the retry writes the whole order once."""

        def crash_after_the_events(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("database went away")

        # The transaction's last write: order, reservation and events are in by then.
        monkeypatch.setattr(checkout.shop_events, "record", crash_after_the_events)
        with pytest.raises(ConnectionError):
            create_order_from_submission(submission.order_id, runtime)
        assert (Order.select().count(), Reservation.select().count()) == (0, 0)
        assert OrderEvent.select().count() == 0
        assert gateway.intents == {}
        # The admitted submission is intact: its hold stands and the retry can finish it.
        assert Inventory(runtime.redis).status(submission.reservation_id) == "HELD"
        assert runtime.redis.zscore(keys.PENDING, submission.order_id) is not None
        monkeypatch.undo()

        order = create_order_from_submission(submission.order_id, runtime)
        assert order is not None
        assert event_types(order) == ["ORDER_CREATED", "STOCK_HELD", "PAYMENT_INTENT_CREATED"]
        assert Reservation.get(Reservation.order == order.id).status == "HELD"
        assert Order.select().count() == 1

    def test_a_row_written_before_a_crash_is_found_by_its_conflict(
        self, runtime: Any, submission: Any, gateway: Any
    ) -> None:
        """A run that committed the row and died before taking the submission out of
        {shop}:pending: the retry skips no check, it meets the row at the INSERT."""
        first = create_order_from_submission(submission.order_id, runtime)
        assert first is not None
        runtime.redis.zadd(keys.PENDING, {submission.order_id: 1})  # as the crash left it
        again = create_order_from_submission(submission.order_id, runtime)
        assert again is not None and again.id == first.id
        assert again.payment_intent_id == first.payment_intent_id and len(gateway.intents) == 1
        assert event_types(again) == ["ORDER_CREATED", "STOCK_HELD", "PAYMENT_INTENT_CREATED"]
        assert runtime.redis.zscore(keys.PENDING, submission.order_id) is None

    def test_missing_submission_does_nothing(self, runtime: Any) -> None:
        assert create_order_from_submission("no-such-order", runtime) is None
        assert Order.select().count() == 0


class TestKeyReusedAfterItsClaimLapsed:
    """The 24 h Redis claim lapsed; the database still knows the key (unique index)."""

    def lapse_claims(self, runtime: Any) -> None:
        for key in runtime.redis.scan_iter(keys.IDEMPOTENCY_PREFIX + "*"):
            runtime.redis.delete(key)

    def resubmit(self, runtime: Any, first: Any, **body: Any) -> Any:
        self.lapse_claims(runtime)
        return admit_checkout(runtime.redis, [("TEE", 2)], key=first.idempotency_key, **body)

    def test_same_body_resolves_at_once_to_the_original_order(
        self, runtime: Any, submission: Any, gateway: Any
    ) -> None:
        original = create_order_from_submission(submission.order_id, runtime)
        assert original is not None
        available = Inventory(runtime.redis).available()["TEE"]
        again = self.resubmit(runtime, submission)
        assert Inventory(runtime.redis).available()["TEE"] == available - 2  # held anew
        assert create_order_from_submission(again.order_id, runtime) is None  # no retry loop
        assert Order.select().count() == 1 and len(gateway.intents) == 1
        assert Inventory(runtime.redis).available()["TEE"] == available  # released
        view = checkout_status.read(runtime.redis, again.order_id)
        assert view["state"] == "FAILED"
        assert view["error"]["code"] == "idempotency_key_reused"
        assert original.order_number in view["error"]["message"]  # where the buyer's order is
        assert runtime.redis.zscore(keys.PENDING, again.order_id) is None

    def test_other_body_is_refused_without_naming_the_original(
        self, runtime: Any, submission: Any
    ) -> None:
        original = create_order_from_submission(submission.order_id, runtime)
        assert original is not None
        again = self.resubmit(runtime, submission, email="someone.else@example.com")
        assert create_order_from_submission(again.order_id, runtime) is None
        view = checkout_status.read(runtime.redis, again.order_id)
        assert view["error"]["code"] == "idempotency_key_reused"
        assert original.order_number not in view["error"]["message"]
        assert Order.select().count() == 1


class TestWriteOrderStatements:
    """Writing a new order reads nothing back (the cost of one order, issue 20)."""

    def test_the_created_event_carries_the_trail_as_written(self, runtime: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        submission = admit_checkout(runtime.redis, [("TEE", 2)])
        view = checkout_status.read(runtime.redis, submission.order_id)
        assert view is not None
        sent = sql_sent_during(lambda: checkout.write_order(submission.order_id, view, runtime))
        # The prices are read first in the order's transaction (no autocommitted read
        # before it); nothing else is read back: no trail, no refunds.
        assert sent[:2] == ["BEGIN", "SELECT"] and sent.count("SELECT") == 1
        order = Order.get_by_id(submission.order_id)
        created = ShopEvent.get((ShopEvent.order == order.id) & (ShopEvent.type == "order.created"))
        assert created.body["data"]["order"] == order_view(order)  # as a read would render it


def sql_sent_during(action: Any) -> list[str]:
    with pytest.MonkeyPatch.context() as patch:
        sent = sql_sent(patch)
        action()
    return sent
