"""Promotion codes: redemption in admit.lua (all or nothing, under a burst), the
give-back when an order ends FAILED or CANCELED, the rebuild from the database (I9)."""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from app import keys
from app.errors import InvalidRequest, OutOfStock, PromotionUnavailable
from app.services import promotions
from app.services.admission import Submission, admit
from app.services.checkout import create_order_from_submission, reject_submission
from app.services.expiry import cancel_order, expire_hold
from app.services.inventory import Inventory
from app.services.pricing.promotions import PromotionTerms
from app.services.webhooks import handle_event
from models import Order, Reservation
from models.db import utcnow
from tests.fakes import stock

CODE = "FLASH5"


def put_terms(redis: Any, terms: PromotionTerms) -> None:
    """The code in Redis as the admin's upsert writes it (no database needed)."""
    redis.hset(keys.promotion(terms.code), mapping=promotions.redis_fields(terms))


def body(code: str | None = CODE, email: str = "buyer@example.com", qty: int = 1) -> dict:
    made: dict[str, Any] = {
        "items": [{"sku": "TEE", "quantity": qty}],
        "email": email,
        "shippingAddress": {"name": "Ada", "line1": "1 Main St", "city": "Springfield",
                            "state": "CA", "postalCode": "90001", "country": "US"},
    }  # fmt: skip
    if code:
        made["promotionCode"] = code
    return made


def submit(redis: Any, made: dict[str, Any], user_id: str | None = None) -> Submission:
    sub = Submission.create(
        made, idempotency_key=f"key-{secrets.token_hex(8)}", hold_ttl=900, user_id=user_id
    )
    admit(redis, sub, hold_ttl=900, key_ttl=86400)
    return sub


def held(redis: Any, code: str = CODE) -> int:
    return promotions.redemptions_held(redis, code)


@pytest.fixture
def shop(any_redis: Any) -> Any:
    """100 TEE at 20.00 and a 10 %-off code with 5 redemptions."""
    any_redis.hset(keys.AVAIL, "TEE", 100)
    any_redis.hset(keys.PRICE, "TEE", 2000)
    put_terms(any_redis, PromotionTerms(CODE, "usd", percent_off=10, max_redemptions=5))
    return any_redis


class TestRedemptionInAdmission:
    def test_a_burst_of_20_admits_exactly_5_and_holds_nothing_for_the_rest(self, shop: Any) -> None:
        gate = threading.Barrier(20)

        def one(_: int) -> str:
            gate.wait(10)
            try:
                submit(shop, body())
                return "admitted"
            except PromotionUnavailable:
                return "refused"

        with ThreadPoolExecutor(20) as pool:
            outcomes = list(pool.map(one, range(20)))
        assert outcomes.count("admitted") == 5
        assert outcomes.count("refused") == 15
        assert held(shop) == 5
        assert Inventory(shop).available(["TEE"]) == {"TEE": 95}  # 5 held, none for the 15
        assert shop.zcard(keys.HOLDS) == 5
        assert shop.zcard(keys.PENDING) == 5
        assert len(list(shop.scan_iter(keys.IDEMPOTENCY_PREFIX + "*"))) == 5

    def test_given_back_the_code_redeems_again(self, shop: Any) -> None:
        admitted = [submit(shop, body()) for _ in range(5)]
        with pytest.raises(PromotionUnavailable):
            submit(shop, body())
        for sub in admitted:
            assert promotions.give_back(shop, sub.order_id, CODE) is True
            assert promotions.give_back(shop, sub.order_id, CODE) is False  # once only
        assert held(shop) == 0
        assert [submit(shop, body()).order_id for _ in range(5)]
        assert held(shop) == 5

    def test_a_submit_refused_for_stock_redeems_nothing(self, shop: Any) -> None:
        with pytest.raises(OutOfStock):
            submit(shop, body(qty=101))
        assert held(shop) == 0

    def test_the_terms_travel_with_the_submission(self, shop: Any) -> None:
        sub = submit(shop, body())
        view = shop.hget(keys.checkout(sub.order_id), "promotion")
        assert PromotionTerms.from_json(view).percent_off == 10

    @pytest.mark.parametrize(
        ("terms", "message"),
        [
            (None, "Unknown promotion code."),
            (PromotionTerms(CODE, "usd", percent_off=5, active=False), "not active"),
            (PromotionTerms(CODE, "usd", percent_off=5, starts_at=4_000_000_000), "not valid yet"),
            (PromotionTerms(CODE, "usd", percent_off=5, ends_at=1_000_000_000), "expired"),
            (PromotionTerms(CODE, "usd", percent_off=5, min_subtotal=2001), "higher subtotal"),
        ],
    )
    def test_terms_refused_are_400_on_the_code_and_hold_nothing(
        self, shop: Any, terms: PromotionTerms | None, message: str
    ) -> None:
        shop.delete(keys.promotion(CODE))
        if terms is not None:
            put_terms(shop, terms)
        with pytest.raises(InvalidRequest) as refused:
            submit(shop, body())
        assert list(refused.value.fields) == ["promotionCode"]
        assert message in refused.value.fields["promotionCode"][0]
        assert Inventory(shop).available(["TEE"]) == {"TEE": 100}
        assert held(shop) == 0

    def test_the_per_buyer_limit_counts_the_email_and_the_user(self, shop: Any) -> None:
        put_terms(shop, PromotionTerms(CODE, "usd", percent_off=10, per_buyer_limit=1))
        submit(shop, body(email="Ada@Example.com"), user_id="u-1")
        with pytest.raises(PromotionUnavailable):
            submit(shop, body(email="ada@example.com"))  # the same e-mail, case folded
        with pytest.raises(PromotionUnavailable):
            submit(shop, body(email="other@example.com"), user_id="u-1")  # the same user
        submit(shop, body(email="other@example.com"))
        assert held(shop) == 2

    def test_a_submit_without_a_code_touches_no_promotion(self, shop: Any) -> None:
        submit(shop, body(code=None))
        assert held(shop) == 0


@pytest.fixture
def code_orders(runtime: Any) -> Any:
    """TEE at 20.00 (10 on hand) and FLASH5 (10 % off, 5 redemptions) in DB and Redis."""
    stock(runtime.redis, "TEE", on_hand=10, price=2000)
    runtime.redis.hset(keys.PRICE, "TEE", 2000)
    promotions.upsert(
        runtime.redis,
        promotions.PromotionInput(CODE, 10, None, "usd", None, None, None, 5, None, True),
    )

    def place() -> Order:
        sub = submit(runtime.redis, body())
        order = create_order_from_submission(sub.order_id, runtime)
        assert order is not None
        return order

    return place


class TestTheWorker:
    def test_prices_with_the_terms_admission_saw(self, runtime: Any, code_orders: Any) -> None:
        order = code_orders()
        # Changed after admission: the order keeps what the buyer was told.
        promotions.upsert(
            runtime.redis,
            promotions.PromotionInput(CODE, 50, None, "usd", None, None, None, 5, None, True),
        )
        assert (order.subtotal, order.discount) == (2000, 200)
        assert order.tax == 131  # 7.25 % of 18.00 = 130.5 → half up
        assert order.total == 2000 - 200 + 500 + 131
        assert order.promotion_code == CODE
        assert order.promotion["description"] == "10% off"

    def test_the_intent_is_for_the_discounted_total(
        self, runtime: Any, gateway: Any, code_orders: Any
    ) -> None:
        order = Order.get_by_id(code_orders().id)
        assert gateway.intents[order.payment_intent_id].amount == order.total == 2431


def expire(runtime: Any, order: Order) -> None:
    """Let the order's hold lapse unpaid: the expiry cancels the intent and ends it."""
    Reservation.update(expires_at=utcnow() - timedelta(seconds=5)).where(
        Reservation.order == order.id
    ).execute()
    assert expire_hold(order.id, runtime).action == "canceled"


class TestGiveBack:
    def test_five_orders_expired_unpaid_let_the_code_redeem_again(
        self, runtime: Any, code_orders: Any
    ) -> None:
        orders = [code_orders() for _ in range(5)]
        with pytest.raises(PromotionUnavailable):
            submit(runtime.redis, body())
        for order in orders:
            expire(runtime, order)
        assert held(runtime.redis) == 0
        again = [code_orders() for _ in range(5)]
        assert {o.promotion_code for o in again} == {CODE}
        assert held(runtime.redis) == 5

    def test_an_expired_hold_gives_it_back(self, runtime: Any, code_orders: Any) -> None:
        order = code_orders()
        Reservation.update(expires_at=utcnow() - timedelta(seconds=5)).where(
            Reservation.order == order.id
        ).execute()
        assert expire_hold(order.id, runtime).action == "canceled"
        assert held(runtime.redis) == 0

    def test_a_cancel_gives_it_back(self, runtime: Any, code_orders: Any) -> None:
        order = code_orders()
        cancel_order(order.id, runtime)
        assert Order.get_by_id(order.id).state == "CANCELED"
        assert held(runtime.redis) == 0

    def test_a_submission_never_written_gives_it_back(self, runtime: Any, code_orders: Any) -> None:
        from app.services import checkout_status
        from app.services.checkout import Unprocessable

        sub = submit(runtime.redis, body())
        view = checkout_status.read(runtime.redis, sub.order_id)
        reject_submission(runtime, sub.order_id, view, Unprocessable("hold_expired", "x"))
        assert held(runtime.redis) == 0

    def test_a_paid_order_keeps_it(self, runtime: Any, gateway: Any, code_orders: Any) -> None:
        order = code_orders()
        event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
        handle_event(event["id"], event, runtime)
        assert Order.get_by_id(order.id).state == "PAID"
        assert held(runtime.redis) == 1


class TestLatePayment:
    def test_an_expired_order_paid_late_holds_its_redemption_again(
        self, runtime: Any, gateway: Any, code_orders: Any
    ) -> None:
        order = code_orders()
        expire(runtime, order)
        assert held(runtime.redis) == 0
        intent = gateway.set_status(order.payment_intent_id, "succeeded", latest_charge="ch_x")
        event = gateway.event("payment_intent.succeeded", intent)
        handle_event(event["id"], event, runtime)
        assert Order.get_by_id(order.id).state == "PAID"
        assert held(runtime.redis) == 1  # counted again: the buyer paid the discounted total
        handle_event(event["id"], event, runtime)  # a replay changes nothing
        assert held(runtime.redis) == 1


class TestRebuild:
    def test_redemptions_are_rebuilt_from_the_orders(self, runtime: Any, code_orders: Any) -> None:
        kept, ended = code_orders(), code_orders()
        cancel_order(ended.id, runtime)
        pending = submit(runtime.redis, body())  # admitted, not written: Redis only
        runtime.redis.delete(keys.promotion(CODE), keys.promotion_orders(CODE))
        runtime.redis.hset(keys.promotion_orders(CODE), "stale-order", "e:x")
        runtime.redis.hset(keys.promotion_orders(CODE), pending.order_id, "e:y")
        assert promotions.rebuild_from_db(runtime.redis) == 1
        holders = set(runtime.redis.hkeys(keys.promotion_orders(CODE)))
        assert holders == {kept.id, pending.order_id}
        assert runtime.redis.hget(keys.promotion(CODE), "max") == "5"


class TestReceipt:
    def test_the_receipt_shows_the_discount_and_the_code(
        self, runtime: Any, code_orders: Any
    ) -> None:
        from app.services.receipts import render_receipt

        text = render_receipt(code_orders(), "shop@example.com").text
        assert "Discount  -2.00 USD (FLASH5)" in text
