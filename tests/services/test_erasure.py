"""The right to erasure (app/services/erasure.py, ``flask buyers erase``): the buyer's
personal data leaves their orders and Stripe; amounts, states and audit types stay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.errors import PaymentProviderError
from app.services import checkout_status, customers, erasure
from app.services.checkout import create_order_from_submission
from app.services.webhooks import handle_event
from models import BuyerCustomer, Order, OrderEvent, Outbox, ShopEvent
from tests.fakes import admit_checkout, stock

EMAIL = "ada.lovelace@example.com"
# As JSON strings (quoted): "90001" alone could be part of an id or a timestamp.
PERSONAL = (EMAIL, '"Ada Buyer"', '"1 Main St"', '"Springfield"', '"90001"')


def everything_stored(order_id: str) -> str:
    """Every stored text of an order, as one string to search."""
    order = Order.get_by_id(order_id)
    parts: list[Any] = [
        order.email,
        order.shipping_address,
        order.billing_address,
        order.last_payment_error,
        [e.payload for e in OrderEvent.select().where(OrderEvent.order == order_id)],
        [o.payload for o in Outbox.select().where(Outbox.order == order_id)],
        [s.body for s in ShopEvent.select().where(ShopEvent.order == order_id)],
    ]
    return json.dumps(parts, default=str)


@pytest.fixture
def paid(runtime: Any, gateway: Any) -> Order:
    """A JWT buyer's PAID order (receipt queued, shop events written), card saved."""
    stock(runtime.redis, "TEE", on_hand=10, price=2000)
    submission = admit_checkout(
        runtime.redis, [("TEE", 2)], email=EMAIL, user_id="u-1", save_payment_method=True
    )
    order = create_order_from_submission(submission.order_id, runtime)
    assert order is not None
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    handle_event(event["id"], event, runtime)
    order = Order.get_by_id(order.id)
    assert order.state == "PAID"
    return order


class TestEraseBuyer:
    def test_redacts_personal_data_and_keeps_the_money(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        stored = everything_stored(paid.id)
        assert all(value in stored for value in PERSONAL)  # the test looks where it matters
        types_before = [e.type for e in paid.events]

        done = erasure.erase_buyer("u-1", runtime)

        assert (done.orders, done.customer_deleted) == (1, True)
        stored = everything_stored(paid.id)
        assert not [value for value in PERSONAL if value in stored]
        order = Order.get_by_id(paid.id)
        assert (order.state, order.total, order.subtotal, order.currency) == (
            paid.state,
            paid.total,
            paid.subtotal,
            paid.currency,
        )
        assert order.line_items == paid.line_items
        assert order.shipping_address["country"] == "US"
        assert order.shipping_address["state"] == "CA"
        assert [e.type for e in order.events] == [*types_before, "PERSONAL_DATA_ERASED"]
        transitions = [e.payload for e in order.events if e.type == "STATE_CHANGED"]
        assert transitions and all(p["to"] for p in transitions)

    def test_queued_mail_to_the_buyer_never_goes(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        pending = Outbox.select().where((Outbox.order == paid.id) & (Outbox.status == "pending"))
        assert pending.count() > 0
        erasure.erase_buyer("u-1", runtime)
        assert pending.count() == 0
        rows = list(Outbox.select().where(Outbox.order == paid.id))
        assert rows and all(row.status == "failed" for row in rows)

    def test_deletes_the_stripe_customer_and_forgets_it(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        customer = customers.customer_of("u-1")
        assert customer is not None and gateway.list_saved_cards(customer)
        erasure.erase_buyer("u-1", runtime)
        assert customer in gateway.deleted_customers
        assert not [pm for pm, (owner, _) in gateway.saved_cards.items() if owner == customer]
        assert customers.customer_of("u-1") is None
        assert BuyerCustomer.get_by_id("u-1").generation == 1

    def test_the_read_model_loses_the_submission(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        assert (checkout_status.read(runtime.redis, paid.id) or {}).get("submission")
        erasure.erase_buyer("u-1", runtime)
        model = checkout_status.read(runtime.redis, paid.id) or {}
        assert "submission" not in model
        assert EMAIL not in json.dumps(model)

    def test_running_it_again_changes_nothing(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        erasure.erase_buyer("u-1", runtime)
        events = OrderEvent.select().where(OrderEvent.order == paid.id).count()
        again = erasure.erase_buyer("u-1", runtime)
        assert (again.orders, again.customer_deleted) == (0, False)
        assert OrderEvent.select().where(OrderEvent.order == paid.id).count() == events

    def test_other_buyers_are_untouched(self, runtime: Any, gateway: Any, paid: Order) -> None:
        other = admit_checkout(runtime.redis, [("TEE", 1)], email="bob@example.com", user_id="u-2")
        order = create_order_from_submission(other.order_id, runtime)
        assert order is not None
        erasure.erase_buyer("u-1", runtime)
        assert Order.get_by_id(order.id).email == "bob@example.com"
        assert customers.customer_of("u-2") is not None

    def test_stripe_failing_stops_before_anything_is_redacted(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        gateway.fail_next("delete_customer", PaymentProviderError("down", retryable=True))
        with pytest.raises(PaymentProviderError):
            erasure.erase_buyer("u-1", runtime)
        assert Order.get_by_id(paid.id).email == EMAIL
        assert customers.customer_of("u-1") is not None


class TestScrub:
    def test_transitions_and_product_names_survive(self) -> None:
        personal = {"Ada", "ada@example.com"}
        payload = {
            "from": "PENDING",
            "to": "PAID",
            "items": [{"name": "Canada mug"}],
            "message": "mail to ada@example.com",
            "shippingAddress": {"name": "Ada", "country": "US"},
        }
        assert erasure.scrub(payload, personal) == {
            "from": "PENDING",
            "to": "PAID",
            "items": [{"name": "Canada mug"}],
            "message": "mail to [redacted]",
            "shippingAddress": {"name": "[redacted]", "country": "US"},
        }
