"""The cost of one paid order, counted per step: SQL statements, Redis round trips and
queue messages (issue 20).

One card payment along the in-process path, on PostgreSQL and the real Redis: the submit
through the Flask test client, the worker's actors run by an in-process Dramatiq worker
on the stub broker, the buyer's status read, and Stripe's webhooks for the payment
delivered signed to the endpoint, each then handled by the worker, until the order is
PAID. Of the payment's three events (``payment_intent.created``, ``charge.succeeded``,
``payment_intent.succeeded``) only those the endpoint enables are delivered, as by the
emulator and Stripe: the types a handler acts on (``webhooks.HANDLED_TYPES``,
``flask stripe-events``). Each step's counts are asserted EXACTLY against
:data:`BUDGET`: a change that adds a statement or a round trip fails here, saying which
step grew. Counted with ``devstack.perf.counting`` (the cost bench's own hooks), so the
bench's per-order figures and this budget mean the same. On the stub broker a message is
not a Redis round trip: the messages column counts what production sends through Redis
(one round trip each to enqueue, plus the worker's share of fetching and acknowledging) —
except the submit's: on Redis, admit.lua queues it in the submit's one round trip
(tests/api/test_submit_path.py counts that on the real broker); the stub broker, which no
script can write, takes it through the enqueue counted here.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import dramatiq
import pytest

from app.services.catalog import ProductInput, upsert_product
from app.services.webhooks import HANDLED_TYPES
from devstack.perf import counting
from models import Order

pytestmark = [pytest.mark.postgres, pytest.mark.realredis]

# The budget per step of one paid order: (SQL statements incl. BEGIN/COMMIT, Redis round
# trips, queue messages). docs/performance.md, "The cost of one order", keeps it beside
# the bench's figures: change both together, and say in the commit why the count moved.
# A web step is a request; a worker step is one message, named "<after what>: <actor>".
BUDGET: dict[str, tuple[int, int, int]] = {
    # The message rides in admit.lua's round trip on Redis (no enqueue round trip).
    "submit (web)":                                         (0, 1, 1),
    # No shop endpoint configured: the shop events wait for the clock's sweep to mark
    # them (no UPDATE after each message that recorded one).
    "submit: create_payment_intent":                        (11, 5, 1),
    "status read (web)":                                    (0, 1, 0),
    # payment_intent.created and charge.succeeded: no handler reads them, so the endpoint
    # does not enable them (a delivered one is acknowledged at the edge, tests/api).
    "payment_intent.succeeded (web)":                       (0, 1, 1),
    # The paid transaction's 13 (the inbox row's INSERT and the order's read are one
    # statement on PostgreSQL, and so are the state change's events and the trail's read;
    # order.paid's body reads no refunds, its trail opened none),
    # then the receipt sent from the same run after its commit (BEGIN, the claim's UPDATE
    # … RETURNING, RECEIPT_SENT's INSERT, COMMIT): no message. The read model's publish
    # rides the order lock's release (records.publish_with_release).
    "payment_intent.succeeded: handle_stripe_event":        (17, 4, 0),
    "status read, PAID (web)":                              (0, 1, 0),
}  # fmt: skip
WHAT = ("SQL statements", "Redis round trips", "queue messages")
SUBMIT = "/api/checkout/payment-intent"
WEBHOOK = "/api/webhooks/stripe"


@dataclass
class Meter:
    """Counts since the last :meth:`take`, in every thread (the worker's included)."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    taken: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    after: str = ""  # the step a worker's messages follow

    def add(self, index: int) -> None:
        """One more of ``WHAT[index]``."""
        self.counts[index] += 1

    def take(self, step: str) -> None:
        """Record the counts since the last take as ``step``'s, and start again."""
        statements, trips, messages = self.counts
        self.taken[step] = (statements, trips, messages)
        self.counts[:] = [0, 0, 0]


class StepPerMessage(dramatiq.Middleware):
    """Takes the meter's counts around each message: one step per message."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def before_process_message(self, broker: Any, message: Any) -> None:
        """What came before the message is not its own."""
        self.meter.take(f"{self.meter.after}: before {message.actor_name}")

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        """The message's counts, the messages it sent included."""
        self.meter.take(f"{self.meter.after}: {message.actor_name}")


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def redis(real_redis_url: str) -> Iterator[Any]:
    import redis as redis_lib

    client = redis_lib.Redis.from_url(real_redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def meter(runtime: Any, broker: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Meter]:
    """Counting from here on; the messages the actors send counted at the broker, a
    delayed one (the hold's expiry, 15 minutes away) counted and not run."""
    meter = Meter()
    enqueue = broker.enqueue

    def counted_enqueue(message: Any, *, delay: int | None = None) -> Any:
        meter.add(2)
        return message if delay else enqueue(message)

    monkeypatch.setattr(broker, "enqueue", counted_enqueue)
    # First in the list: Dramatiq runs the "after" hooks last to first, so this one sees
    # what every other middleware did for the message (shop events, the connection).
    broker.middleware.insert(0, StepPerMessage(meter))
    uninstall = counting.install(
        statement=lambda: meter.add(0),
        transaction=lambda: None,
        round_trip=lambda: meter.add(1),
    )
    yield meter
    uninstall()


@pytest.fixture
def worker(broker: Any, meter: Meter) -> Iterator[Any]:
    """One worker thread: one message at a time, so each is counted alone."""
    one = dramatiq.Worker(broker, worker_timeout=50, worker_threads=1)
    one.start()
    yield one
    one.stop()


def run_worker(broker: Any, worker: Any) -> None:
    """Until every queue is empty (an actor's own messages included)."""
    for _ in range(10):
        if not any(q.unfinished_tasks for q in broker.queues.values()):
            break
        for name in [n for n in broker.queues if not n.endswith(".DQ")]:
            broker.join(name, timeout=20_000)  # and its delay queue
        worker.join()


def deliver(client: Any, gateway: Any, type_: str, obj: dict[str, Any]) -> None:
    """Stripe's webhook for ``obj``, signed, to the endpoint."""
    body, header = gateway.signed(gateway.event(type_, obj))
    response = client.post(
        WEBHOOK, data=body, headers={"Stripe-Signature": header}, content_type="application/json"
    )
    assert response.status_code == 200, response.get_data(as_text=True)


def charge_of(intent: Any) -> dict[str, Any]:
    """The charge of a paid intent, as Stripe renders it in ``charge.succeeded``."""
    return {
        "id": intent.latest_charge, "object": "charge", "payment_intent": intent.id,
        "amount": intent.amount, "amount_captured": intent.amount_received, "captured": True,
        "amount_refunded": 0, "currency": intent.currency, "status": "succeeded",
        "paid": True, "metadata": dict(intent.metadata),
    }  # fmt: skip


ORDER_IDS = itertools.count(1)


def pay_one_order(client: Any, runtime: Any, broker: Any, worker: Any, meter: Meter) -> str:
    """One card payment from submit to PAID, each step's counts taken; the order id."""
    from tests.fakes import intent_dict

    gateway = runtime.gateway
    body = {
        "items": [{"sku": "COST", "quantity": 1}], "email": "cost@example.com",
        "shippingAddress": {"name": "Cost", "line1": "1 Main St", "city": "Austin",
                            "state": "TX", "postalCode": "73301", "country": "US"},
    }  # fmt: skip
    key = f"order-cost-{next(ORDER_IDS)}"
    meter.take("before")
    submitted = client.post(SUBMIT, json=body, headers={"Idempotency-Key": key})
    assert submitted.status_code == 202, submitted.get_data(as_text=True)
    meter.take("submit (web)")
    meter.after = "submit"
    run_worker(broker, worker)
    reply = submitted.get_json()
    token = {"X-Checkout-Token": reply["checkoutToken"]}
    status = client.get(reply["statusUrl"], headers=token)
    assert status.status_code == 200 and status.get_json()["payment"]["clientSecret"]
    meter.take("status read (web)")
    intent = gateway.intents[status.get_json()["payment"]["intentId"]]
    events = [("payment_intent.created", intent_dict(intent))]
    paid = gateway.confirm(intent.id)  # Stripe.js, at Stripe: not ours to count
    events += [
        ("charge.succeeded", charge_of(paid)),
        ("payment_intent.succeeded", intent_dict(paid)),
    ]
    for type_, obj in events:
        if type_ not in HANDLED_TYPES:
            continue  # not enabled at the endpoint: Stripe does not send it
        meter.take("Stripe's side")
        deliver(client, gateway, type_, obj)
        meter.take(f"{type_} (web)")
        meter.after = type_
        run_worker(broker, worker)
    final = client.get(reply["statusUrl"], headers=token)
    assert final.get_json()["state"] == "PAID"
    meter.take("status read, PAID (web)")
    return str(reply["orderId"])


@pytest.fixture
def paying(runtime: Any, broker: Any, worker: Any, app: Any, meter: Meter) -> Any:
    """The catalog, and a first order paid (it loads the Lua scripts, warms the pools)."""
    with app.app_context():
        upsert_product(
            runtime.redis,
            ProductInput(sku="COST", name="Cost", description="", price_amount=1500,
                         currency="usd", stock_on_hand=100),
        )  # fmt: skip
    client = app.test_client()
    pay_one_order(client, runtime, broker, worker, meter)
    meter.taken.clear()
    return client


def test_one_paid_order_costs_its_budget_step_by_step(
    paying: Any, runtime: Any, broker: Any, worker: Any, meter: Meter
) -> None:
    order_id = pay_one_order(paying, runtime, broker, worker, meter)
    assert Order.get_by_id(order_id).state == "PAID"
    measured = {step: counts for step, counts in meter.taken.items() if step in BUDGET}
    grown = [
        f"{step}: {WHAT[i]} {got[i]} (budget {BUDGET[step][i]})"
        for step, got in measured.items()
        for i in range(3)
        if got[i] != BUDGET[step][i]
    ]
    assert not grown, (
        "the cost of one paid order moved — "
        + "; ".join(grown)
        + ". docs/performance.md ('The cost of one order') has the budget: if the change"
        " is meant, update BUDGET here and the table there together."
    )
    assert set(measured) == set(BUDGET)
    # Nothing happens between the steps (Stripe's side is the fake gateway's).
    between = {step: n for step, n in meter.taken.items() if step not in BUDGET}
    assert all(n == (0, 0, 0) for n in between.values()), between


def test_one_paid_order_calls_stripe_once(
    paying: Any, runtime: Any, broker: Any, worker: Any, meter: Meter
) -> None:
    """The intent's creation only: ``payment_intent.succeeded`` is final, so its own
    signed event is applied without re-reading the intent (``webhooks.final_intent``)."""
    gateway = runtime.gateway
    gateway.calls.clear()
    pay_one_order(paying, runtime, broker, worker, meter)
    assert [name for name, _ in gateway.calls] == ["create_intent"]
