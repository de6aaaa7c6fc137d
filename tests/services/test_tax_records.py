"""Stripe Tax bookkeeping (``app/services/tax_records.py``) on the fake gateway: the
transaction once paid, a reversal per succeeded refund (full or partial), idempotent
re-runs, audit events, retryable errors raised and permanent ones recorded."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from app.errors import PaymentProviderError
from app.services.checkout import create_order_from_submission
from app.services.refunds import request_refund, submit_refund
from app.services.tax_records import behind, sync_tax
from app.services.webhooks import handle_event
from models import Order, Refund
from models.db import utcnow
from tasks import clock
from tests.fakes import admit_checkout, stock

OUTAGE = PaymentProviderError("Stripe is down", retryable=True, provider_code=None)


@pytest.fixture
def config(config: Any) -> Any:
    """This module's service runs with ``TAX_PROVIDER=stripe``."""
    return config.with_overrides(tax_provider="stripe")


@pytest.fixture
def paid(runtime: Any, gateway: Any) -> Order:
    """A Stripe-Tax-priced order for 2 TEE, paid (its webhook applied)."""
    stock(runtime.redis, "TEE", on_hand=5, price=2000)
    submission = admit_checkout(runtime.redis, [("TEE", 2)])
    order = create_order_from_submission(submission.order_id, runtime)
    assert order is not None and order.tax_calculation_id is not None
    event = gateway.event("payment_intent.succeeded", gateway.confirm(order.payment_intent_id))
    handle_event(event["id"], event, runtime)
    return Order.get_by_id(order.id)


def refund(runtime: Any, gateway: Any, order: Order, amount: int, key: str) -> Refund:
    """A refund of ``amount``, submitted and settled by Stripe's webhook."""
    requested, _ = request_refund(order.id, idempotency_key=key, amount=amount)
    submitted = submit_refund(requested.id, runtime)
    event = gateway.event("refund.updated", gateway.refunds[submitted.stripe_refund_id])
    handle_event(event["id"], event, runtime)
    return Refund.get_by_id(requested.id)


def types(order_id: str) -> list[str]:
    return [e.type for e in Order.get_by_id(order_id).events]


def reversals(gateway: Any) -> list[dict[str, Any]]:
    return [t for t in gateway.tax_transactions.values() if t["type"] == "reversal"]


class TestTransaction:
    def test_paying_queues_the_sync_which_records_the_transaction(
        self, runtime: Any, gateway: Any, jobs: Any, paid: Order
    ) -> None:
        assert jobs.named("sync_tax") == [(paid.id,)]
        sync_tax(paid.id, runtime)
        stored = Order.get_by_id(paid.id)
        transaction = gateway.tax_transactions[stored.tax_transaction_id]
        assert transaction["reference"] == paid.id
        assert transaction["calculation"] == paid.tax_calculation_id
        assert types(paid.id).count("TAX_TRANSACTION_RECORDED") == 1

    def test_a_rerun_records_nothing_twice(self, runtime: Any, gateway: Any, paid: Order) -> None:
        sync_tax(paid.id, runtime)
        sync_tax(paid.id, runtime)
        assert len(gateway.tax_transactions) == 1
        assert types(paid.id).count("TAX_TRANSACTION_RECORDED") == 1

    def test_an_unpaid_order_records_nothing(self, runtime: Any, gateway: Any) -> None:
        stock(runtime.redis, "TEE", on_hand=5, price=2000)
        order = create_order_from_submission(admit_checkout(runtime.redis).order_id, runtime)
        assert order is not None
        sync_tax(order.id, runtime)
        assert gateway.tax_transactions == {}

    def test_stripe_down_raises_for_a_retry(self, runtime: Any, gateway: Any, paid: Order) -> None:
        gateway.fail_next("record_tax_transaction", OUTAGE)
        with pytest.raises(PaymentProviderError):
            sync_tax(paid.id, runtime)
        sync_tax(paid.id, runtime)
        assert Order.get_by_id(paid.id).tax_transaction_id is not None

    def test_a_permanent_refusal_is_audited_not_retried(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        refused = PaymentProviderError("expired", retryable=False, provider_code="resource_missing")
        gateway.fail_next("record_tax_transaction", refused)
        sync_tax(paid.id, runtime)
        assert Order.get_by_id(paid.id).tax_transaction_id is None
        assert "TAX_RECORDING_FAILED" in types(paid.id)


class TestReversals:
    def test_a_partial_refund_reverses_its_amount(
        self, runtime: Any, gateway: Any, jobs: Any, paid: Order
    ) -> None:
        sync_tax(paid.id, runtime)
        partial = refund(runtime, gateway, paid, 1000, "k1")
        assert jobs.named("sync_tax") == [(paid.id,), (paid.id,)]
        sync_tax(paid.id, runtime)
        (reversal,) = reversals(gateway)
        assert (reversal["mode"], reversal["amount"]) == ("partial", 1000)
        assert reversal["reference"] == f"refund-{partial.id}"
        assert Refund.get_by_id(partial.id).tax_reversal_id is not None
        sync_tax(paid.id, runtime)  # idempotent
        assert len(reversals(gateway)) == 1
        assert types(paid.id).count("TAX_REVERSAL_RECORDED") == 1

    def test_the_rest_after_a_partial_refund_is_reversed_as_what_is_left(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        refund(runtime, gateway, paid, 1000, "k1")
        refund(runtime, gateway, paid, paid.total - 1000, "k2")
        sync_tax(paid.id, runtime)  # the transaction first, then both reversals
        assert [(r["mode"], r["amount"]) for r in reversals(gateway)] == [
            ("partial", 1000),
            ("partial", paid.total - 1000),
        ]

    def test_a_full_refund_is_a_full_reversal(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        sync_tax(paid.id, runtime)
        refund(runtime, gateway, paid, paid.total, "k1")
        sync_tax(paid.id, runtime)
        (reversal,) = reversals(gateway)
        assert (reversal["mode"], reversal["amount"]) == ("full", paid.total)
        assert Order.get_by_id(paid.id).state == "REFUNDED"

    def test_a_table_priced_order_is_left_alone(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        Order.update(tax_calculation_id=None).where(Order.id == paid.id).execute()
        sync_tax(paid.id, runtime)
        assert gateway.tax_transactions == {}


class TestSweep:
    def test_the_clock_finds_an_order_whose_message_was_lost(
        self, runtime: Any, gateway: Any, jobs: Any, paid: Order, monkeypatch: Any
    ) -> None:
        monkeypatch.setattr(clock, "STALE_SECONDS", -1)
        jobs.calls.clear()
        assert clock.sweep(runtime).counts.get("tax") == 1
        assert jobs.named("sync_tax") == [(paid.id,)]
        sync_tax(paid.id, runtime)
        assert behind(older_than=utcnow() + timedelta(seconds=1)) == []

    def test_a_succeeded_refund_without_its_reversal_is_behind(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        sync_tax(paid.id, runtime)
        refund(runtime, gateway, paid, 1000, "k1")
        later = utcnow() + timedelta(seconds=1)
        assert behind(older_than=later) == [paid.id]
        sync_tax(paid.id, runtime)
        assert behind(older_than=later) == []

    def test_a_permanent_refusal_is_left_to_a_person(
        self, runtime: Any, gateway: Any, paid: Order
    ) -> None:
        refused = PaymentProviderError("expired", retryable=False, provider_code="resource_missing")
        gateway.fail_next("record_tax_transaction", refused)
        sync_tax(paid.id, runtime)
        assert behind(older_than=utcnow() + timedelta(seconds=1)) == []
