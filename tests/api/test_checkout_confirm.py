"""``POST /api/checkout/<id>/confirm``: one attempt in flight, per-IP and per-order limits."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from app.services import confirmation
from models import Order
from tests.fakes import admit_checkout, stock

_keys = itertools.count(1)


def attempts(order_id: str) -> int:
    """The audit rows of payment attempts the worker made."""
    types = [e.type for e in Order.get_by_id(order_id).events]
    return types.count("PAYMENT_CONFIRMATION_REQUESTED")


def run_queued(runtime: Any) -> None:
    """Run every confirm the view enqueued, as the worker would (once each)."""
    for name, args in runtime.jobs.calls:
        if name == "confirm_payment":
            confirmation.confirm_payment(*args, runtime)
    runtime.jobs.calls.clear()


@pytest.fixture
def declined(runtime: Any, gateway: Any) -> Callable[[], tuple[str, str]]:
    """Make a PENDING order whose first payment was declined: (orderId, checkout token)."""
    stock(runtime.redis, "TEE", on_hand=50, price=2000)

    def make() -> tuple[str, str]:
        token = gateway.confirmation_token("pm_card_chargeDeclined")
        submission = admit_checkout(runtime.redis, [("TEE", 1)], confirmation_token=token)
        placed = confirmation.place_order(submission.order_id, runtime)
        assert placed.order is not None and placed.order.state == "PENDING"
        return str(placed.order.id), str(submission.checkout_token)

    return make


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Wall-clock time the test moves (``clock[0] += 61``): rate-limit windows follow it."""
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def limited(runtime: Any, **limits: str) -> Any:
    """A client of an app with rate limits on (the test config turns them off)."""
    from app import create_app

    config = runtime.config.with_overrides(ratelimit_enabled=True, **limits)
    return create_app(config, runtime=runtime).test_client()


def confirm(
    client: Any, gateway: Any, order: tuple[str, str], ip: str = "10.0.0.1", token: str = ""
) -> Any:
    """One confirm with a fresh key and a ConfirmationToken that is declined again (so the
    order stays open for the next retry)."""
    order_id, checkout_token = order
    return client.post(
        f"/api/checkout/{order_id}/confirm",
        json={"confirmationTokenId": gateway.confirmation_token("pm_card_chargeDeclined")},
        headers={
            "X-Checkout-Token": token or checkout_token,
            "Idempotency-Key": f"confirm-key-{next(_keys):06d}",
        },
        environ_base={"REMOTE_ADDR": ip},
    )


class TestOneAttemptInFlight:
    def test_a_second_confirm_is_409_until_the_first_outcome(
        self, client: Any, runtime: Any, gateway: Any, declined: Any
    ) -> None:
        order = declined()
        assert confirm(client, gateway, order).status_code == 202
        second = confirm(client, gateway, order)
        assert second.status_code == 409
        assert second.get_json()["error"]["code"] == "invalid_state"
        queued = [args for name, args in runtime.jobs.calls if name == "confirm_payment"]
        assert len(queued) == 1
        run_queued(runtime)
        assert attempts(order[0]) == 1  # no audit row for the refused one
        assert confirm(client, gateway, order).status_code == 202  # the outcome is in


class TestConfirmRateLimits:
    def test_per_order_limit_is_429_with_a_window_that_expires(
        self, runtime: Any, gateway: Any, declined: Any, clock: list[float]
    ) -> None:
        client = limited(runtime, ratelimit_confirm_order="2/minute")
        order = declined()
        first = confirm(client, gateway, order, ip="10.0.0.1")
        assert first.status_code == 202
        assert confirm(client, gateway, order, ip="10.0.0.2").status_code == 409
        refused = confirm(client, gateway, order, ip="10.0.0.3")
        assert refused.status_code == 429
        assert refused.get_json()["error"]["code"] == "rate_limited"
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 60
        run_queued(runtime)
        assert attempts(order[0]) == 1  # neither the 409 nor the 429 reached the worker
        clock[0] += wait - 1
        assert confirm(client, gateway, order).status_code == 429  # not yet
        clock[0] += 2
        assert confirm(client, gateway, order).status_code == 202  # the window has passed

    def test_per_ip_limit_spans_orders(
        self, runtime: Any, gateway: Any, declined: Any, clock: list[float]
    ) -> None:
        client = limited(runtime, ratelimit_confirm="2/minute")
        codes = [confirm(client, gateway, declined()).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        assert confirm(client, gateway, declined(), ip="10.0.0.9").status_code == 202
        clock[0] += 61
        assert confirm(client, gateway, declined()).status_code == 202

    def test_a_stranger_cannot_use_up_the_buyers_limit(
        self, runtime: Any, gateway: Any, declined: Any, clock: list[float]
    ) -> None:
        client = limited(runtime, ratelimit_confirm_order="2/minute")
        order = declined()
        for n in range(3):
            wrong = confirm(client, gateway, order, ip=f"10.0.1.{n}", token="wrong-token")
            assert wrong.status_code == 404
        assert confirm(client, gateway, order).status_code == 202

    def test_limits_have_defaults_and_environment_variables(self) -> None:
        from app.config import Config, load_config

        assert Config().ratelimit_confirm and Config().ratelimit_confirm_order
        loaded = load_config(
            {"RATELIMIT_CONFIRM": "7/minute", "RATELIMIT_CONFIRM_ORDER": "3/minute"},
            dotenv=False,
        )
        assert (loaded.ratelimit_confirm, loaded.ratelimit_confirm_order) == (
            "7/minute",
            "3/minute",
        )
