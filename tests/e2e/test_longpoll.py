"""I11: waiting costs no thread. A thousand long-polls parked on the gevent web tier
while plain requests keep being served; each poll answered at the change it waits for;
the per-order cap answers 429."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlparse

import pytest

from app.services import checkout_status
from devstack.perf.polls import RawPoll, answered_any, drain
from tests.e2e.conftest import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.realredis]

ORDERS = 20
PER_ORDER = 50  # 1,000 waiters in all
CAPS = {
    "LONGPOLL_MAX_PER_ORDER": str(PER_ORDER),
    "LONGPOLL_MAX_PER_CREDENTIAL": str(PER_ORDER),
    "LONGPOLL_MAX_PER_IP": "5000",  # every test client is 127.0.0.1
}


@pytest.fixture(scope="module")
def poll_stack(launch_stack: Callable[..., Stack]) -> Stack:
    """Web only (Procfile shape: 2 gevent workers): nothing answers a poll but the test."""
    return launch_stack(web_workers=2, with_worker=False, env=CAPS)


class TestThousandLongPolls:
    def test_parked_polls_never_starve_other_requests(self, poll_stack: Stack) -> None:
        stack = poll_stack
        stack.put_product("POLL", stock=1000)
        orders = [stack.submit([("POLL", 1)]).json() for _ in range(ORDERS)]
        url = urlparse(stack.web)
        host, port = url.hostname or "127.0.0.1", url.port or 80
        polls = [
            RawPoll(host, port, f"{o['statusUrl']}?wait=25&since=1", o["checkoutToken"])
            for o in orders
            for _ in range(PER_ORDER)
        ]
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and int(
                stack.redis.get("{shop}:waiters:ip:127.0.0.1") or 0
            ) < len(polls):
                time.sleep(0.1)
            parked = int(stack.redis.get("{shop}:waiters:ip:127.0.0.1") or 0)

            # With every poll parked, plain requests are served, as are status reads.
            health = [stack.session.get(f"{stack.web}/healthz", timeout=10) for _ in range(20)]
            products = stack.session.get(f"{stack.web}/api/products", timeout=10)
            one_more = stack.session.get(
                f"{stack.web}{orders[0]['statusUrl']}?wait=25&since=1",
                headers={"X-Checkout-Token": orders[0]["checkoutToken"]},
                timeout=10,
            )
            answered_early = answered_any(polls)

            for order in orders:
                checkout_status.publish(stack.redis, order["orderId"], paymentStatus="processing")
            drain(polls, until=time.monotonic() + 60)
        finally:
            for poll in polls:
                poll.close()

        assert parked == len(polls) == 1000
        assert [r.status_code for r in health] == [200] * 20
        assert products.status_code == 200
        assert one_more.status_code == 429  # the order's cap: 50 are already waiting
        assert one_more.json()["error"]["code"] == "rate_limited"
        assert not answered_early
        assert [p.status for p in polls] == [200] * len(polls)
        assert all(b'"version":2' in p.body for p in polls)
        assert all(b'"status":"processing"' in p.body for p in polls)
        assert stack.redis.keys("{shop}:waiters:*") == []
