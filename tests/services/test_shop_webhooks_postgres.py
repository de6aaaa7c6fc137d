"""The shop webhook suite on PostgreSQL: its upserts, row locks and keyset reads."""

from __future__ import annotations

import threading

import pytest

from app.services.shop_webhooks import mark_waiting
from models import Order
from models.db import database, utcnow
from models.shop_webhook import ShopEvent
from tests.services.test_shop_webhooks import (  # noqa: F401 -- the same tests, another database
    TestDelivery,
    TestOneEventPerChange,
    TestResend,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(postgres_url: str) -> str:
    return postgres_url


class TestMarkingWithoutEndpoints:
    """With no shop endpoint, the clock marks waiting events; markers never deadlock."""

    def test_concurrent_markers_never_deadlock(self, order: Order) -> None:
        # The soak (30 min at 20/s) saw "deadlock detected" thousands of times when each
        # marker updated every waiting row in one statement while new events arrived.
        now = utcnow()
        for start in range(0, 6000, 500):
            ShopEvent.insert_many(
                [
                    {"event_id": f"evt_m{i}", "type": "order.created", "order": order.id,
                     "body": {}, "created_at": now, "dispatched": i % 3 == 0}
                    for i in range(start, start + 500)
                ]
            ).execute()  # fmt: skip
        errors: list[BaseException] = []

        def mark(n: int) -> None:
            try:
                for i in range(6):
                    with database().atomic():  # a message's events arrive as others mark
                        ShopEvent.create(
                            event_id=f"evt_n{n}_{i}", type="order.paid", order=order.id, body={}
                        )
                    mark_waiting()
            except BaseException as exc:
                errors.append(exc)
            finally:
                database().close()

        threads = [threading.Thread(target=mark, args=(n,)) for n in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert not ShopEvent.select().where(ShopEvent.dispatched == False).exists()  # noqa: E712
