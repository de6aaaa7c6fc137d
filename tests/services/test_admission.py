"""Admission: the submit path's single script (claim + hold + read model + pending, and
the worker's message)."""

from __future__ import annotations

import hashlib
import multiprocessing
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from app import lua
from app.config import Config
from app.errors import IdempotencyKeyReused, InvalidRequest, OutOfStock, ServiceUnavailable
from app.gateways.jobs import DramatiqJobs, queue_depths
from app.keys import AVAIL, DAY_STATS_PREFIX, HOLDS, IDEMPOTENCY_PREFIX, PENDING, PRICE
from app.keys import checkout as checkout_key
from app.services import admission, checkout_status
from app.services.admission import Submission, SubmitRate, admit, caller_hash, first_limit
from app.services.inventory import Inventory

HOLD_TTL = 900
KEY_TTL = 24 * 3600


def make_body(*items: tuple[str, int], email: str = "buyer@example.com") -> dict[str, Any]:
    """A validated submit body (camelCase, as the schema hands it over)."""
    return {
        "items": [{"sku": sku, "quantity": qty} for sku, qty in items],
        "email": email,
        "shippingAddress": {
            "name": "Ada Lovelace",
            "line1": "1 Main St",
            "city": "London",
            "postalCode": "N1 9GU",
            "country": "GB",
        },
    }


def submit(client: Any, body: dict[str, Any], key: str, user_id: str | None = None) -> Any:
    """Build a fresh submission and admit it."""
    sub = Submission.create(body, idempotency_key=key, hold_ttl=HOLD_TTL, user_id=user_id)
    return admit(client, sub, hold_ttl=HOLD_TTL, key_ttl=KEY_TTL, caller=caller_hash(user_id))


@pytest.fixture
def shop(any_redis: Any) -> Any:
    """A Redis with A: 5 and B: 1 in stock."""
    any_redis.hset(AVAIL, mapping={"A": 5, "B": 1})
    return any_redis


class TestAdmitNew:
    def test_answers_the_contract_body(self, shop: Any) -> None:
        result = submit(shop, make_body(("A", 2)), "key-00000001")
        body = result.response
        assert result.replayed is False
        assert set(body) == {
            "orderId",
            "orderNumber",
            "checkoutToken",
            "state",
            "statusUrl",
            "holdExpiresAt",
        }
        assert body["state"] == "PENDING"
        assert body["statusUrl"] == f"/api/checkout/{body['orderId']}"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", body["holdExpiresAt"])

    def test_holds_stock_and_writes_the_read_model(self, shop: Any) -> None:
        sub = Submission.create(
            make_body(("A", 2), ("B", 1)), idempotency_key="key-00000001", hold_ttl=HOLD_TTL
        )
        admit(shop, sub, hold_ttl=HOLD_TTL, key_ttl=KEY_TTL)
        inv = Inventory(shop)
        assert inv.available() == {"A": 3, "B": 0}
        assert inv.status(sub.reservation_id) == "HELD"
        assert inv.reservation(sub.reservation_id)["orderId"] == sub.order_id  # type: ignore[index]
        view = checkout_status.read(shop, sub.order_id)
        assert view is not None
        assert view["version"] == 1
        assert view["state"] == "PENDING"
        assert view["paymentStatus"] == "creating"
        assert view["orderNumber"] == sub.order_number
        assert view["tokenHash"] == admission.token_hash(sub.checkout_token)
        assert view["error"] is None
        assert view["submission"]["items"] == sub.body["items"]
        assert view["submission"]["reservationId"] == sub.reservation_id
        assert view["submission"]["idempotencyKey"] == "key-00000001"
        assert checkout_status.verify_token(shop, sub.order_id, sub.checkout_token)
        assert admission.pending_older_than(shop, -60) == [sub.order_id]

    def test_keys_expire(self, shop: Any) -> None:
        sub = Submission.create(make_body(("A", 1)), idempotency_key="k" * 20, hold_ttl=HOLD_TTL)
        admit(shop, sub, hold_ttl=HOLD_TTL, key_ttl=KEY_TTL)
        idem = IDEMPOTENCY_PREFIX + hashlib.sha256(b"k" * 20).hexdigest()
        assert 0 < shop.ttl(idem) <= KEY_TTL
        assert 0 < shop.ttl(checkout_key(sub.order_id)) <= HOLD_TTL + 24 * 3600

    def test_idempotency_key_is_stored_hashed(self, shop: Any) -> None:
        submit(shop, make_body(("A", 1)), "raw-secret-key-123")
        assert not any("raw-secret-key-123" in key for key in shop.scan_iter("*"))

    def test_is_one_evalsha(self, shop: Any) -> None:
        lua.preload(shop)
        commands: list[str] = []
        original = shop.execute_command

        def counting(*args: Any, **kwargs: Any) -> Any:
            commands.append(str(args[0]).upper())
            return original(*args, **kwargs)

        shop.execute_command = counting
        submit(shop, make_body(("A", 1)), "key-00000001")
        assert commands == ["EVALSHA"]


class TestAdmitReplay:
    def test_same_key_same_body_replays_the_stored_response(self, shop: Any) -> None:
        first = submit(shop, make_body(("A", 2)), "key-00000001", user_id="u-1")
        again = submit(shop, make_body(("A", 2)), "key-00000001", user_id="u-1")
        assert again.replayed is True
        assert again.response == first.response
        assert Inventory(shop).available()["A"] == 3
        assert shop.zcard(HOLDS) == 1

    def test_a_guest_replay_has_no_checkout_token(self, shop: Any) -> None:
        first = submit(shop, make_body(("A", 2)), "key-00000001")
        again = submit(shop, make_body(("A", 2)), "key-00000001")
        assert again.replayed is True
        assert again.response == {**first.response, "checkoutToken": None}

    def test_same_key_other_body_is_refused(self, shop: Any) -> None:
        submit(shop, make_body(("A", 2)), "key-00000001")
        before = sorted(shop.scan_iter("*"))
        with pytest.raises(IdempotencyKeyReused) as caught:
            submit(shop, make_body(("A", 3)), "key-00000001")
        assert caught.value.status == 422
        assert sorted(shop.scan_iter("*")) == before
        assert Inventory(shop).available()["A"] == 3


def state_keys(shop: Any) -> list[str]:
    """Every key but the day's submit counts (which a refused submit does add to)."""
    return sorted(k for k in shop.scan_iter("*") if not k.startswith(DAY_STATS_PREFIX))


class TestDayCounts:
    """The dashboard's counts of the UTC day, kept by admit.lua in the same call."""

    @staticmethod
    def today(shop: Any) -> dict[str, str]:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        return dict(shop.hgetall(DAY_STATS_PREFIX + day))

    def test_submits_admitted_and_out_of_stock_are_counted(self, shop: Any, db: Any) -> None:
        submit(shop, make_body(("A", 1)), "key-00000001")
        submit(shop, make_body(("A", 1)), "key-00000001")  # a replay: the same submit
        with pytest.raises(OutOfStock):
            submit(shop, make_body(("B", 2)), "key-00000002")
        with pytest.raises(InvalidRequest):
            submit(shop, make_body(("NOPE", 1)), "key-00000003")
        assert self.today(shop) == {"submits": "3", "admitted": "1", "out_of_stock": "1"}

    def test_the_days_counts_expire_after_a_week_and_a_day(self, shop: Any) -> None:
        submit(shop, make_body(("A", 1)), "key-00000001")
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        assert 7 * 24 * 3600 < shop.ttl(DAY_STATS_PREFIX + day) <= 8 * 24 * 3600


class TestAdmitRefused:
    def test_out_of_stock_leaves_nothing_behind(self, shop: Any, db: Any) -> None:
        from models import Product

        Product.create(sku="B", name="Blue mug", price_amount=100, currency="usd")
        with pytest.raises(OutOfStock) as caught:
            submit(shop, make_body(("A", 1), ("B", 2)), "key-00000001")
        # The name is read on the refusal path only (a product row unknown: the SKU).
        assert caught.value.items == [
            {"sku": "B", "name": "Blue mug", "requested": 2, "available": 1}
        ]
        assert state_keys(shop) == [AVAIL]
        assert Inventory(shop).available() == {"A": 5, "B": 1}

    def test_unknown_sku_leaves_nothing_behind(self, shop: Any) -> None:
        with pytest.raises(InvalidRequest) as caught:
            submit(shop, make_body(("A", 1), ("NOPE", 1)), "key-00000001")
        assert caught.value.fields == {"items.1.sku": ["Unknown SKU."]}
        assert state_keys(shop) == [AVAIL]

    def test_a_sku_sold_in_the_database_but_lost_by_redis_is_503_not_unknown(
        self, shop: Any, db: Any
    ) -> None:
        # Redis flushed (or restored from an old snapshot) before `inventory rebuild` ran:
        # the cart is valid, the service is not ready (found by tests/chaos).
        from models import Product

        Product.create(sku="LOST", name="Lost counter", price_amount=100, currency="usd")
        Product.create(sku="OFF", name="Inactive", price_amount=100, currency="usd", active=False)
        with pytest.raises(ServiceUnavailable):
            submit(shop, make_body(("A", 1), ("LOST", 1)), "key-00000001")
        with pytest.raises(InvalidRequest):
            submit(shop, make_body(("A", 1), ("OFF", 1)), "key-00000002")
        assert state_keys(shop) == [AVAIL]

    def test_a_refused_submit_does_not_use_up_its_key(self, shop: Any) -> None:
        with pytest.raises(OutOfStock):
            submit(shop, make_body(("B", 2)), "key-00000001")
        Inventory(shop).adjust("B", 1)
        assert submit(shop, make_body(("B", 2)), "key-00000001").replayed is False


class TestTotalCheck:
    """admit.lua prices the cart from ``{shop}:price`` exactly as pricing.py does and
    refuses a total over Stripe's maximum before holding anything."""

    GOLD = 1_000_000  # 10,000.00 USD

    @pytest.fixture
    def gold(self, any_redis: Any) -> Any:
        any_redis.hset(AVAIL, mapping={"GOLD": 10_000, "PIN": 10_000, "NEW": 500})
        any_redis.hset(PRICE, mapping={"GOLD": self.GOLD, "PIN": 1})  # NEW: no price yet
        return any_redis

    @staticmethod
    def admit_with_check(redis: Any, body: dict[str, Any], key: str) -> Any:
        from app.services.pricing import total_check

        sub = Submission.create(body, idempotency_key=key, hold_ttl=HOLD_TTL)
        check = total_check(body["shippingAddress"], "usd", body.get("shippingOptionId"))
        return admit(redis, sub, hold_ttl=HOLD_TTL, key_ttl=KEY_TTL, total_check=check)

    @pytest.mark.parametrize(
        ("country", "state"), [("US", "CA"), ("US", None), ("GB", None), ("CA", None)]
    )
    def test_refuses_exactly_what_pricing_refuses(
        self, gold: Any, country: str, state: str | None
    ) -> None:
        from app.services.pricing import ProductPrice, price_cart

        prices = {"GOLD": ProductPrice("GOLD", "Gold", self.GOLD, "usd"),
                  "PIN": ProductPrice("PIN", "Pin", 1, "usd")}  # fmt: skip
        address = {**make_body()["shippingAddress"], "country": country}
        if state:
            address["state"] = state
        outcomes = []
        for gold_units in (80, 83, 84, 91, 92, 93, 94, 100):
            for pins in (1, 3, 97):
                lines = [("GOLD", gold_units - 1), ("PIN", pins), ("GOLD", 1)]
                body = {**make_body(*lines), "shippingAddress": address}
                try:
                    price_cart(lines, address, "usd", prices)
                    expected = "admitted"
                except InvalidRequest:
                    expected = "refused"
                try:
                    self.admit_with_check(gold, body, f"key-{gold_units}-{pins}-x")
                    outcomes.append((gold_units, pins, expected, "admitted"))
                except InvalidRequest as exc:
                    assert list(exc.fields) == ["items"]
                    assert "999999.99 USD" in exc.message
                    outcomes.append((gold_units, pins, expected, "refused"))
        assert all(expected == got for *_, expected, got in outcomes), outcomes
        assert {got for *_, got in outcomes} == {"admitted", "refused"}  # both sides seen

    def test_a_total_of_exactly_the_maximum_is_admitted_one_cent_more_refused(
        self, gold: Any
    ) -> None:
        gold.hset(AVAIL, "REST", 10)
        gold.hset(PRICE, "REST", 999_999)
        address = {**make_body()["shippingAddress"], "country": "US"}  # no state: no tax
        exact = {**make_body(("GOLD", 99), ("REST", 1)), "shippingAddress": address}
        assert self.admit_with_check(gold, exact, "key-exact-01").replayed is False
        over = {**make_body(("GOLD", 99), ("REST", 1), ("PIN", 1)), "shippingAddress": address}
        with pytest.raises(InvalidRequest):
            self.admit_with_check(gold, over, "key-over-001")

    def test_the_chosen_shipping_option_counts(self, gold: Any) -> None:
        """Exactly the maximum with free standard shipping; express adds 15.00 to it."""
        gold.hset(AVAIL, "REST", 10)
        gold.hset(PRICE, "REST", 999_999)
        address = {**make_body()["shippingAddress"], "country": "US"}  # no state: no tax
        exact = {**make_body(("GOLD", 99), ("REST", 1)), "shippingAddress": address}
        with pytest.raises(InvalidRequest):
            self.admit_with_check(gold, {**exact, "shippingOptionId": "express"}, "key-express1")
        assert gold.hget(AVAIL, "REST") == "10"
        assert self.admit_with_check(gold, exact, "key-standard").replayed is False

    def test_a_refused_total_holds_nothing(self, gold: Any) -> None:
        body = make_body(("GOLD", 100))
        with pytest.raises(InvalidRequest):
            self.admit_with_check(gold, body, "key-00000001")
        assert gold.hget(AVAIL, "GOLD") == "10000"
        assert gold.zcard(HOLDS) == 0
        assert not gold.keys(IDEMPOTENCY_PREFIX + "*")

    def test_lines_without_a_price_are_left_to_the_worker(self, gold: Any) -> None:
        result = self.admit_with_check(gold, make_body(("NEW", 100)), "key-00000002")
        assert result.replayed is False

    def test_an_unknown_sku_is_reported_before_the_total(self, gold: Any) -> None:
        with pytest.raises(InvalidRequest) as info:
            self.admit_with_check(gold, make_body(("GOLD", 100), ("NOPE", 1)), "key-0000003")
        assert list(info.value.fields) == ["items.1.sku"]


class TestPending:
    def test_older_than_and_mark_written(self, shop: Any) -> None:
        one = submit(shop, make_body(("A", 1)), "key-00000001").response["orderId"]
        two = submit(shop, make_body(("A", 1)), "key-00000002").response["orderId"]
        assert admission.pending_older_than(shop, 3600) == []
        assert sorted(admission.pending_older_than(shop, -1)) == sorted([one, two])
        admission.mark_written(shop, one)
        assert admission.pending_older_than(shop, -1) == [two]

    def test_load_submission(self, shop: Any) -> None:
        order_id = submit(shop, make_body(("A", 1)), "key-00000001").response["orderId"]
        stored = admission.load_submission(shop, order_id)
        assert stored is not None
        assert stored["email"] == "buyer@example.com"
        assert admission.load_submission(shop, "missing") is None


class TestHelpers:
    def test_order_number_is_human(self) -> None:
        numbers = {admission.new_order_number() for _ in range(200)}
        assert len(numbers) == 200
        for number in numbers:
            assert re.fullmatch(r"ORD-[0-9A-HJKMNP-TV-Z]{8}", number)

    def test_order_number_uses_the_whole_alphabet_in_every_place(self) -> None:
        numbers = [admission.new_order_number()[4:] for _ in range(2000)]
        for place in range(8):
            # 2,000 draws of 32 letters: odds that any letter is missing anywhere < 1e-25.
            assert {n[place] for n in numbers} == set(admission.ORDER_NUMBER_ALPHABET)

    def test_fingerprint_ignores_key_order(self) -> None:
        one = {"items": [{"sku": "A", "quantity": 1}], "email": "x@example.com"}
        two = {"email": "x@example.com", "items": [{"quantity": 1, "sku": "A"}]}
        assert admission.fingerprint(one) == admission.fingerprint(two)
        assert admission.fingerprint(one) != admission.fingerprint({**one, "email": "y@x.io"})

    def test_ids_and_tokens(self) -> None:
        assert admission.new_order_id() != admission.new_order_id()
        token = admission.new_checkout_token()
        assert len(token) == 32
        assert admission.token_hash(token) == hashlib.sha256(token.encode()).hexdigest()

    def test_iso_utc(self) -> None:
        assert admission.iso_utc(datetime(2030, 1, 2, 3, 4, 5, 678)) == "2030-01-02T03:04:05Z"
        moment = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert admission.iso_utc(moment) == "2030-01-02T03:04:05Z"


# --- Concurrency on the real Redis: several processes, one script each ---------------


def _admit_worker(url: str, keys: list[str], body: dict[str, Any], gate: Any, out: Any) -> None:
    """Admit one submission per key as soon as the gate opens; report each outcome."""
    import redis as redis_lib

    client = redis_lib.Redis.from_url(url, decode_responses=True)
    gate.wait(30)
    for key in keys:
        try:
            result = submit(client, body, key)
            out.put(("ok", result.replayed, result.response))
        except OutOfStock:
            out.put(("out_of_stock", None, None))


def _run_parallel(url: str, keys: list[str], body: dict[str, Any], procs: int) -> list[Any]:
    """Spread ``keys`` over ``procs`` processes started together; collect every outcome."""
    ctx = multiprocessing.get_context("spawn")
    gate, out = ctx.Event(), ctx.Queue()
    chunks = [keys[i::procs] for i in range(procs)]
    workers = [
        ctx.Process(target=_admit_worker, args=(url, chunk, body, gate, out)) for chunk in chunks
    ]
    for worker in workers:
        worker.start()
    gate.set()
    results = [out.get(timeout=60) for _ in keys]
    for worker in workers:
        worker.join(timeout=30)
    return results


@pytest.mark.realredis
class TestConcurrentAdmission:
    def test_200_buyers_for_10_units(self, real_redis: Any, real_redis_url: str) -> None:
        real_redis.hset(AVAIL, "HOT", 10)
        keys = [f"buyer-key-{n:04d}" for n in range(200)]
        results = _run_parallel(real_redis_url, keys, make_body(("HOT", 1)), procs=8)
        admitted = [r for r in results if r[0] == "ok"]
        assert len(admitted) == 10
        assert sum(1 for r in results if r[0] == "out_of_stock") == 190
        assert not any(r[1] for r in admitted)
        assert Inventory(real_redis).available() == {"HOT": 0}
        assert real_redis.zcard(HOLDS) == 10
        assert real_redis.zcard(PENDING) == 10
        assert len(list(real_redis.scan_iter(IDEMPOTENCY_PREFIX + "*"))) == 10

    def test_50_submits_with_one_key_make_one_order(
        self, real_redis: Any, real_redis_url: str
    ) -> None:
        real_redis.hset(AVAIL, "A", 100)
        results = _run_parallel(
            real_redis_url, ["same-key-0001"] * 50, make_body(("A", 3)), procs=5
        )
        assert all(r[0] == "ok" for r in results)
        assert sum(1 for r in results if r[1] is False) == 1
        assert len({r[2]["orderId"] for r in results}) == 1
        first = next(r[2] for r in results if r[1] is False)
        # Guests: the replays carry the first answer without its checkout token.
        assert all(r[2] == {**first, "checkoutToken": None} for r in results if r[1])
        assert Inventory(real_redis).available() == {"A": 97}
        assert real_redis.zcard(PENDING) == 1


class TestSubmitRateOf:
    def test_the_first_limit_of_the_rule_in_requests_and_seconds(self) -> None:
        config = Config(ratelimit_enabled=True, ratelimit_checkout="7/minute;500/hour")
        assert SubmitRate.of(config, "1.2.3.4") == SubmitRate(7, 60, "1.2.3.4")

    def test_a_rule_is_parsed_once_per_process(self) -> None:
        first_limit("11/second")
        hits = first_limit.cache_info().hits
        assert first_limit("11/second") == (11, 1)
        assert first_limit.cache_info().hits == hits + 1

    def test_no_limit_when_limits_are_off(self) -> None:
        assert SubmitRate.of(Config(ratelimit_enabled=False), "c").limit == 0


class TestMessageInTheAdmission:
    """admit.lua queues the worker's message with the admission, and only then."""

    @pytest.fixture
    def jobs(self, shop: Any) -> DramatiqJobs:
        return DramatiqJobs(RedisBroker(client=shop, maintenance_chance=0))

    def admit_with_message(self, shop: Any, jobs: DramatiqJobs, *items: tuple[str, int]) -> Any:
        sub = Submission.create(make_body(*items), idempotency_key="key-msg-0001", hold_ttl=60)
        message = admission.message_for(jobs, sub.order_id, replicas=0)
        assert message is not None
        admit(shop, sub, hold_ttl=60, key_ttl=60, message=message)
        return sub, message

    def test_an_admitted_submit_queues_create_payment_intent(
        self, shop: Any, jobs: DramatiqJobs
    ) -> None:
        sub, message = self.admit_with_message(shop, jobs, ("A", 1))
        assert [lua.text(i) for i in shop.lrange("dramatiq:default", 0, -1)] == [message.message_id]
        data = lua.text(shop.hget("dramatiq:default.msgs", message.message_id))
        queued = Message.decode(data.encode())
        assert (queued.actor_name, queued.args) == ("create_payment_intent", (sub.order_id,))

    @pytest.mark.parametrize("items", [[("A", 6)], [("NOPE", 1)]])
    def test_a_refused_submit_queues_nothing(
        self, shop: Any, jobs: DramatiqJobs, items: list[tuple[str, int]]
    ) -> None:
        with pytest.raises((OutOfStock, InvalidRequest)):
            self.admit_with_message(shop, jobs, *items)
        assert queue_depths(shop)["default"] == 0

    def test_a_replay_queues_nothing_more(self, shop: Any, jobs: DramatiqJobs) -> None:
        self.admit_with_message(shop, jobs, ("A", 1))
        self.admit_with_message(shop, jobs, ("A", 1))  # the same key and body: a replay
        with pytest.raises(IdempotencyKeyReused):
            self.admit_with_message(shop, jobs, ("A", 2))
        assert queue_depths(shop)["default"] == 1

    def test_never_when_replicas_must_acknowledge(self, shop: Any, jobs: DramatiqJobs) -> None:
        assert admission.message_for(jobs, "order-1", replicas=1) is None
        sub = Submission.create(make_body(("A", 1)), idempotency_key="key-msg-0002", hold_ttl=60)
        message = jobs.scripted_create_payment_intent(sub.order_id)
        with pytest.raises(ValueError):
            admit(shop, sub, hold_ttl=60, key_ttl=60, message=message, replicas=1)
        assert queue_depths(shop)["default"] == 0
