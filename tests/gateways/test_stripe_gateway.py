"""StripeGateway through the official SDK against the local Stripe emulator."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import PaymentProviderError, SignatureInvalid
from app.gateways.payments import TRANSIENT_ATTEMPTS, StripeGateway, TaxCalculation, TaxLine
from app.gateways.rate_limit import StripeBudget
from app.gateways.signatures import sign_payload

emulator = pytest.importorskip("devstack.stripe_emulator", reason="Stripe emulator not present")

SECRET = "whsec_gateway_suite"


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with emulator.EmulatorServer(async_delay=0.05) as srv:
        yield srv


@pytest.fixture
def stripe_gateway(server: Any) -> StripeGateway:
    server.reset()
    return StripeGateway(
        api_key="sk_test_gateway_suite",
        api_base=server.url,
        webhook_secrets=(SECRET, "whsec_old"),
        timeout=10,
        sleep=lambda _seconds: None,
    )


def create(gw: StripeGateway, key: str = "pi-create-o1", amount: int = 4599) -> Any:
    return gw.create_intent(
        amount=amount,
        currency="usd",
        idempotency_key=key,
        metadata={"orderId": "o1", "reservationId": "r1"},
        receipt_email="ada@example.com",
        description="Order CO-1",
    )


def confirm(gw: StripeGateway, intent_id: str, method: str) -> None:
    gw.client.v1.payment_intents.confirm(
        intent_id, {"payment_method": method, "return_url": "https://shop.example/done"}
    )


class TestIntents:
    def test_create_returns_intent_with_metadata_and_secret(self, stripe_gateway: Any) -> None:
        intent = create(stripe_gateway)
        assert intent.id.startswith("pi_")
        assert intent.status == "requires_payment_method"
        assert intent.client_secret and intent.client_secret.startswith(intent.id)
        assert (intent.amount, intent.currency) == (4599, "usd")
        assert intent.metadata == {"orderId": "o1", "reservationId": "r1"}

    def test_same_idempotency_key_gives_the_same_intent(self, stripe_gateway: Any) -> None:
        assert create(stripe_gateway).id == create(stripe_gateway).id

    def test_same_key_other_parameters_is_permanent_error(self, stripe_gateway: Any) -> None:
        create(stripe_gateway)
        with pytest.raises(PaymentProviderError) as info:
            create(stripe_gateway, amount=1)
        assert info.value.retryable is False

    def test_decline_shows_in_last_error(self, stripe_gateway: Any) -> None:
        intent = create(stripe_gateway)
        with pytest.raises(Exception):  # noqa: B017  the SDK raises the card error itself
            confirm(stripe_gateway, intent.id, "pm_card_chargeDeclinedInsufficientFunds")
        again = stripe_gateway.retrieve_intent(intent.id)
        assert again.status == "requires_payment_method"
        assert again.last_error is not None
        assert again.last_error.decline_code == "insufficient_funds"

    def test_cancel_then_cancel_of_succeeded_is_unexpected_state(self, stripe_gateway: Any) -> None:
        first = create(stripe_gateway, key="k-a")
        canceled = stripe_gateway.cancel_intent(
            first.id, reason="abandoned", idempotency_key="pi-cancel-a"
        )
        assert canceled.status == "canceled"
        paid = create(stripe_gateway, key="k-b")
        confirm(stripe_gateway, paid.id, "pm_card_visa")
        assert stripe_gateway.retrieve_intent(paid.id).status == "succeeded"
        with pytest.raises(PaymentProviderError) as info:
            stripe_gateway.cancel_intent(paid.id, reason="abandoned", idempotency_key="pi-cancel-b")
        assert info.value.retryable is False
        assert info.value.provider_code == "payment_intent_unexpected_state"

    def test_find_intents_for_order_searches_the_metadata(self, stripe_gateway: Any) -> None:
        mine = create(stripe_gateway, key="pi-create-o1")
        stripe_gateway.create_intent(
            amount=100,
            currency="usd",
            idempotency_key="pi-create-o2",
            metadata={"orderId": "o2", "reservationId": "r2"},
            receipt_email=None,
            description="Order CO-2",
        )
        found = stripe_gateway.find_intents_for_order("o1")
        assert [(i.id, i.metadata["orderId"]) for i in found] == [(mine.id, "o1")]
        assert stripe_gateway.find_intents_for_order("o3") == []

    def test_unknown_intent_is_permanent(self, stripe_gateway: Any) -> None:
        with pytest.raises(PaymentProviderError) as info:
            stripe_gateway.retrieve_intent("pi_does_not_exist")
        assert info.value.retryable is False
        assert info.value.provider_code == "resource_missing"

    def test_server_errors_are_retryable(self, stripe_gateway: Any, server: Any) -> None:
        requests.post(f"{server.url}/_emulator/chaos", json={"failureRate": 1}, timeout=5)
        try:
            with pytest.raises(PaymentProviderError) as info:
                create(stripe_gateway, key="k-chaos")
            assert info.value.retryable is True
        finally:
            requests.post(f"{server.url}/_emulator/chaos", json={"failureRate": 0}, timeout=5)

    def test_refund_and_events(self, stripe_gateway: Any) -> None:
        intent = create(stripe_gateway, key="k-r")
        confirm(stripe_gateway, intent.id, "pm_card_visa")
        refund = stripe_gateway.create_refund(
            intent_id=intent.id,
            amount=1000,
            reason="requested_by_customer",
            idempotency_key="refund-1",
            metadata={"orderId": "o1"},
        )
        assert refund["amount"] == 1000
        assert refund["payment_intent"] == intent.id
        types = {e["type"] for e in stripe_gateway.list_events(created_gte=0, types=[])}
        assert "payment_intent.succeeded" in types


class TestStripeTax:
    LINES = (TaxLine("TEE", 4000, 2), TaxLine("MUG", 1250, 1))
    TEXAS = {"country": "US", "state": "TX", "postal_code": "73301"}

    def calculate(self, gw: StripeGateway) -> TaxCalculation:
        return gw.calculate_tax(currency="usd", lines=self.LINES, shipping=500, address=self.TEXAS)

    def test_a_calculation_has_each_lines_tax_and_the_shippings(self, stripe_gateway: Any) -> None:
        calc = self.calculate(stripe_gateway)
        # The emulator's US-TX 6.25 %: 250, 78.125 → 78, 31.25 → 31.
        assert (calc.line_taxes, calc.shipping_tax, calc.tax) == ((250, 78), 31, 359)
        assert calc.id.startswith("taxcalc_") and calc.expires_at is not None

    def test_transaction_and_reversals(self, stripe_gateway: Any, server: Any) -> None:
        calc = self.calculate(stripe_gateway)
        txn = stripe_gateway.record_tax_transaction(
            calculation_id=calc.id, reference="o1", idempotency_key="tax-txn-o1"
        )
        again = stripe_gateway.record_tax_transaction(
            calculation_id=calc.id, reference="o1", idempotency_key="tax-txn-o1"
        )
        assert again == txn
        partial = stripe_gateway.reverse_tax_transaction(
            transaction_id=txn, reference="refund-1", flat_amount=1000,
            idempotency_key="tax-reversal-1",
        )  # fmt: skip
        full = stripe_gateway.reverse_tax_transaction(
            transaction_id=txn, reference="refund-2", flat_amount=None,
            idempotency_key="tax-reversal-2",
        )  # fmt: skip
        rows = requests.get(f"{server.url}/_emulator/tax/transactions", timeout=5).json()["data"]
        by_id = {row["id"]: row for row in rows}

        def gross(row: dict[str, Any]) -> int:
            lines = sum(x["amount"] + x["amount_tax"] for x in row["line_items"]["data"])
            return lines + row["shipping_cost"]["amount"] + row["shipping_cost"]["amount_tax"]

        assert gross(by_id[txn]) == 4000 + 1250 + 500 + 359
        assert gross(by_id[partial]) == -1000
        assert gross(by_id[full]) == -(gross(by_id[txn]) - 1000)

    def test_a_used_reference_is_a_permanent_error(self, stripe_gateway: Any) -> None:
        calc = self.calculate(stripe_gateway)
        stripe_gateway.record_tax_transaction(
            calculation_id=calc.id, reference="o2", idempotency_key="k1"
        )
        with pytest.raises(PaymentProviderError) as info:
            stripe_gateway.record_tax_transaction(
                calculation_id=calc.id, reference="o2", idempotency_key="k2"
            )
        assert info.value.retryable is False


class TestWebhookVerification:
    def test_accepts_current_and_rotated_secret(self, stripe_gateway: Any) -> None:
        body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
        for secret in (SECRET, "whsec_old"):
            assert stripe_gateway.verify_webhook(body, sign_payload(body, secret))["id"] == "evt_1"
        with pytest.raises(SignatureInvalid):
            stripe_gateway.verify_webhook(body, sign_payload(body, "whsec_other"))


class FakeClock:
    """A settable clock in seconds for the budget."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class TestStripeBudget:
    def test_at_most_the_budget_within_any_second(self, redis: Any) -> None:
        clock = FakeClock()
        budget = StripeBudget(redis, 2, clock=clock)
        assert budget.try_acquire() == 0
        clock.now += 0.4
        assert budget.try_acquire() == 0
        clock.now += 0.1
        # The window (the last 1,000 ms) is full until the first grant leaves it.
        assert 500 <= budget.try_acquire() <= 502
        clock.now += 0.5
        assert budget.try_acquire() == 0
        assert budget.try_acquire() > 0

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=120), min_size=1, max_size=120))
    def test_no_span_of_a_second_holds_more_than_the_budget(self, gaps_ms: list[int]) -> None:
        import fakeredis

        redis = fakeredis.FakeRedis(decode_responses=True)
        clock = FakeClock()
        budget = StripeBudget(redis, 5, clock=clock)
        granted: list[float] = []
        for gap in gaps_ms:
            clock.now += gap / 1000
            if budget.try_acquire() == 0:
                granted.append(clock.now)
        for i, start in enumerate(granted):
            assert sum(1 for t in granted[i:] if t < start + 1.0) <= 5

    def test_shared_between_clients(self, redis: Any) -> None:
        clock = FakeClock()
        one, two = StripeBudget(redis, 1, clock=clock), StripeBudget(redis, 1, clock=clock)
        assert one.try_acquire() == 0
        assert two.try_acquire() > 0

    def test_acquire_waits_for_room(self, redis: Any) -> None:
        clock = FakeClock()
        budget = StripeBudget(redis, 1, clock=clock, sleep=clock.sleep)
        budget.acquire()
        started = clock.now
        budget.acquire()
        assert clock.now - started >= 1.0

    def test_gives_up_with_a_retryable_error(self, redis: Any) -> None:
        clock = FakeClock()
        budget = StripeBudget(redis, 1, clock=clock, sleep=clock.sleep, max_wait=0.1)
        budget.acquire()
        with pytest.raises(PaymentProviderError) as info:
            budget.acquire()
        assert info.value.retryable is True

    def test_waiting_callers_reserve_in_turn_one_round_trip_each(self, redis: Any) -> None:
        clock = FakeClock()
        budget = StripeBudget(redis, 2, clock=clock, sleep=lambda _: None)
        asked: list[str] = []
        run = budget._run

        def counted(mode: str, *args: Any) -> int:
            asked.append(mode)
            return run(mode, *args)

        budget._run = counted  # type: ignore[method-assign]
        waits = [budget.reserve(max_wait=30) for _ in range(5)]
        # Two grants now, then one slot a second apart for each pair, in order.
        assert waits == [0, 0, 1.0, 1.0, 2.0]
        assert asked == ["reserve"] * 5
        asked.clear()
        for _ in range(3):
            budget.acquire()  # full until 3 s ahead: each caller asks once and sleeps
        assert asked == ["reserve"] * 3
        assert budget.try_acquire() == 4000  # nothing free now: the queue comes first

    def test_a_reservation_past_the_longest_wait_is_refused_and_not_recorded(
        self, redis: Any
    ) -> None:
        clock = FakeClock()
        budget = StripeBudget(redis, 1, clock=clock)
        assert budget.reserve(max_wait=0.5) == 0
        assert budget.reserve(max_wait=0.5) is None
        assert budget.reserve(max_wait=1.0) == 1.0
        assert budget.in_use() == 1  # the grant reserved ahead is not the last second's

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=120))
    def test_reserved_grants_never_crowd_a_second(self, gaps_ms: list[int]) -> None:
        import fakeredis

        redis = fakeredis.FakeRedis(decode_responses=True)
        clock = FakeClock()
        budget = StripeBudget(redis, 3, clock=clock)
        granted: list[int] = []  # milliseconds, the script's clock
        now_ms = int(clock.now * 1000)
        for i, gap in enumerate(gaps_ms):
            now_ms += gap
            clock.now = now_ms / 1000
            if i % 4 == 3:  # a caller that only takes a grant free now
                if budget.try_acquire() == 0:
                    granted.append(now_ms)
                continue
            wait = budget.reserve(max_wait=2.0)
            if wait is not None:
                granted.append(now_ms + round(wait * 1000))
        granted.sort()
        for i, start in enumerate(granted):
            assert sum(1 for t in granted[i:] if t < start + 1000) <= 3

    def test_a_429_halves_the_budget_and_quiet_seconds_grow_it_back(self, redis: Any) -> None:
        clock = FakeClock()
        budget = StripeBudget(redis, 20, clock=clock)
        assert budget.current() == 20
        for _ in range(20):
            budget.try_acquire()
        assert budget.penalize() == 10
        clock.now += 0.5
        assert budget.penalize() == 11  # same burst: grown by 1 in 0.5 s, not halved again
        clock.now += 1.0
        assert sum(budget.try_acquire() == 0 for _ in range(20)) == 13  # 11 + 2 a second
        assert budget.penalize() == 6  # a second after the first, a new 429 halves the 13
        clock.now += 2.0
        assert budget.current() == 10  # +2 per quiet second (a tenth of the ceiling)
        clock.now += 60
        assert budget.current() == 20  # never above the ceiling

    def test_a_halved_budget_admits_fewer_per_second(self, redis: Any) -> None:
        clock = FakeClock()
        budget = StripeBudget(redis, 10, clock=clock)
        assert sum(budget.try_acquire() == 0 for _ in range(10)) == 10
        assert budget.penalize() == 5  # Stripe refused the 11th: half of the 10 used
        clock.now += 1.0
        # Half of 10, grown back by one quiet second's tenth of the ceiling.
        assert sum(budget.try_acquire() == 0 for _ in range(10)) == 6

    def test_a_429_when_little_was_used_cuts_below_the_use(self, redis: Any) -> None:
        # Another client of the same account used the limit: what we used is too much.
        clock = FakeClock()
        budget = StripeBudget(redis, 20, clock=clock)
        budget.try_acquire()
        budget.try_acquire()
        assert budget.penalize() == 1


@pytest.mark.realredis
class TestStripeBudgetOnRealRedis:
    def test_script_runs_on_real_redis_and_limits(self, real_redis: Any) -> None:
        clock = FakeClock()
        budget = StripeBudget(real_redis, 5, clock=clock)
        taken = [budget.try_acquire() for _ in range(6)]
        assert taken[:5] == [0] * 5
        assert 900 <= taken[5] <= 1001
        assert budget.penalize() == 2  # half of the 5 used


class TestRateLimitedByStripe:
    def test_a_429_shrinks_the_budget_and_the_call_is_retried(
        self, server: Any, redis: Any
    ) -> None:
        server.reset()
        budget = StripeBudget(redis, 20)
        gateway = StripeGateway(
            api_key="sk_test_gateway_suite", api_base=server.url, budget=budget, timeout=10
        )
        requests.post(f"{server.url}/_emulator/chaos", json={"rateLimitPerSecond": 1}, timeout=5)
        try:
            first = create(gateway, key="k-limited-1")
            second = create(gateway, key="k-limited-2")  # the emulator answers 429 first
        finally:
            requests.post(
                f"{server.url}/_emulator/chaos", json={"rateLimitPerSecond": 0}, timeout=5
            )
        assert first.id != second.id
        assert budget.current() < 20


class RecordedRequests:
    """Every HTTP request the SDK sends (through ``requests``), passed on unchanged."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, str, dict[str, str]]] = []
        original = requests.Session.request

        def request(session: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            self.sent.append((method.upper(), url, dict(kwargs.get("headers") or {})))
            return original(session, method, url, *args, **kwargs)

        monkeypatch.setattr(requests.Session, "request", request)


class TestIntentCallsWithoutStripeObjects:
    """The per-order intent calls read the JSON answer as it is (``raw_request``): the same
    request, headers, errors and retries as the SDK's services, no ``StripeObject``."""

    def test_no_stripe_object_is_built(
        self, stripe_gateway: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        built: list[str] = []
        original = stripe.StripeObject.__init__

        def counting(obj: Any, *args: Any, **kwargs: Any) -> None:
            built.append(type(obj).__name__)
            original(obj, *args, **kwargs)

        monkeypatch.setattr(stripe.StripeObject, "__init__", counting)
        intent = create(stripe_gateway, key="k-plain")
        assert stripe_gateway.retrieve_intent(intent.id).id == intent.id
        canceled = stripe_gateway.cancel_intent(
            intent.id, reason="abandoned", idempotency_key="k-plain-cancel"
        )
        assert (canceled.status, canceled.cancellation_reason) == ("canceled", "abandoned")
        assert built == []

    def test_the_key_the_version_and_the_expansion_are_sent(
        self, stripe_gateway: Any, server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        recorded = RecordedRequests(monkeypatch)
        intent = create(stripe_gateway, key="k-headers")
        stripe_gateway.retrieve_intent(intent.id)
        (post, created_url, post_headers), (get, retrieved_url, get_headers) = recorded.sent
        assert (post, created_url) == ("POST", f"{server.url}/v1/payment_intents")
        assert post_headers["Idempotency-Key"] == "k-headers"
        assert get == "GET"
        assert retrieved_url.startswith(f"{server.url}/v1/payment_intents/{intent.id}?")
        assert retrieved_url.endswith("?expand[0]=latest_charge")
        assert "Idempotency-Key" not in get_headers
        for headers in (post_headers, get_headers):
            assert headers["Stripe-Version"] == stripe.api_version
            assert headers["Authorization"] == "Bearer sk_test_gateway_suite"

    def test_a_5xx_is_retried_by_us_alone(
        self, stripe_gateway: Any, server: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        requests.post(f"{server.url}/_emulator/chaos", json={"failureRate": 1}, timeout=5)
        recorded = RecordedRequests(monkeypatch)
        try:
            with pytest.raises(PaymentProviderError) as info:
                create(stripe_gateway, key="k-5xx")
        finally:
            monkeypatch.undo()
            requests.post(f"{server.url}/_emulator/chaos", json={"failureRate": 0}, timeout=5)
        assert info.value.retryable is True
        assert isinstance(info.value.__cause__, stripe.APIError)
        assert len(recorded.sent) == TRANSIENT_ATTEMPTS  # the SDK's own retries are off
        assert {headers["Idempotency-Key"] for _m, _u, headers in recorded.sent} == {"k-5xx"}

    def test_a_declined_confirmation_answers_with_the_declined_intent(
        self, stripe_gateway: Any
    ) -> None:
        token = stripe_gateway.client.v1.test_helpers.confirmation_tokens.create(
            params={"payment_method": "pm_card_chargeDeclinedInsufficientFunds"}
        )
        intent = stripe_gateway.create_intent(
            amount=2500,
            currency="usd",
            idempotency_key="k-declined",
            metadata={"orderId": "o9"},
            receipt_email=None,
            description="Order CO-9",
            confirmation_token=token.id,
            return_url="https://shop.example/done",
        )
        assert intent.status == "requires_payment_method"
        assert intent.last_error is not None
        assert intent.last_error.decline_code == "insufficient_funds"

    def test_a_confirmation_token_and_a_partial_capture(self, stripe_gateway: Any) -> None:
        intent = stripe_gateway.create_intent(
            amount=3000,
            currency="usd",
            idempotency_key="k-manual",
            metadata={"orderId": "o8"},
            receipt_email=None,
            description="Order CO-8",
            capture_method="manual",
        )
        token = stripe_gateway.client.v1.test_helpers.confirmation_tokens.create(
            params={"payment_method": "pm_card_visa"}
        )
        authorised = stripe_gateway.confirm_intent(
            intent.id,
            confirmation_token=token.id,
            return_url="https://shop.example/done",
            idempotency_key="k-manual-confirm",
        )
        assert (authorised.status, authorised.amount_capturable) == ("requires_capture", 3000)
        assert authorised.capture_before  # the charge came expanded
        captured = stripe_gateway.capture_intent(
            intent.id, amount=2000, idempotency_key="k-manual-capture"
        )
        assert (captured.status, captured.amount_received) == ("succeeded", 2000)


class ForwardingProxy(http.server.ThreadingHTTPServer):
    """An HTTP proxy on a free local port: records each request's target and passes it on."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.targets: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: ForwardingProxy

    def _forward(self) -> None:
        self.server.targets.append(self.path)  # a proxy is sent the absolute address
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
        answer = requests.Session()
        answer.trust_env = False
        reply = answer.request(self.command, self.path, headers=headers, data=body, timeout=10)
        self.send_response(reply.status_code)
        for name in ("Content-Type", "Request-Id", "Idempotent-Replayed"):
            if name in reply.headers:
                self.send_header(name, reply.headers[name])
        self.send_header("Content-Length", str(len(reply.content)))
        self.end_headers()
        self.wfile.write(reply.content)

    do_GET = do_POST = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TestProxyFromTheEnvironment:
    """The HTTP client reads the proxy settings once, when the gateway is built (requests
    read them from ``os.environ`` on every request): a configured proxy is still used,
    ``NO_PROXY`` still bypasses it."""

    @pytest.fixture
    def proxy(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardingProxy]:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.lower(), raising=False)
        proxy = ForwardingProxy()
        yield proxy
        proxy.shutdown()
        proxy.server_close()

    def gateway(self, server: Any) -> StripeGateway:
        server.reset()
        return StripeGateway(api_key="sk_test_gateway_suite", api_base=server.url, timeout=10)

    def test_a_configured_proxy_carries_every_call(
        self, server: Any, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)  # the emulator is plain http
        gateway = self.gateway(server)
        monkeypatch.delenv("HTTP_PROXY")  # read at start: a later change is not seen
        intent = create(gateway, key="k-proxied")
        assert gateway.retrieve_intent(intent.id).id == intent.id
        assert [target.split("?")[0] for target in proxy.targets] == [
            f"{server.url}/v1/payment_intents",
            f"{server.url}/v1/payment_intents/{intent.id}",
        ]

    def test_no_proxy_bypasses_it(
        self, server: Any, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        gateway = self.gateway(server)
        create(gateway, key="k-not-proxied")
        assert proxy.targets == []

    def test_the_environment_is_not_read_per_request(
        self, server: Any, proxy: ForwardingProxy, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        gateway = self.gateway(server)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)  # set after start: no effect
        create(gateway, key="k-direct")
        assert proxy.targets == []
