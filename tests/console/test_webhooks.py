"""app/console/webhooks.py: the Stripe inbox ("Replay") and the shop deliveries
("Resend") through the admin API's services; roles, CSRF, double submits."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from structlog.testing import capture_logs

from app.console import roles
from app.console import webhooks as console_webhooks
from app.errors import PaymentProviderError
from app.services import shop_webhooks, webhooks
from app.services.webhooks import handle_event
from models import Order, ShopDelivery, ShopEvent, WebhookEvent
from tests.console.conftest import csrf_token_of

URLS = ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")
KEY_FIELD = re.compile(r'name="idempotency_key" value="([^"]+)"')


def page_text(client: Any, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.status_code
    return str(answer.get_data(as_text=True))


def htmx_post(client: Any, path: str, page: str, **fields: str) -> Any:
    """Post as the page's htmx button does: the CSRF header, the form's fields."""
    token = csrf_token_of(client, page)
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    return client.post(path, data=fields, headers=headers)


@pytest.fixture
def dead_event(
    runtime: Any, gateway: Any, pending_order: Order, monkeypatch: Any
) -> dict[str, Any]:
    """A payment_intent.succeeded whose handler failed, then given up (``dead``)."""
    intent = gateway.confirm(pending_order.payment_intent_id)
    event = gateway.event("payment_intent.succeeded", intent)

    def broken(*_: Any) -> None:
        raise PaymentProviderError("the warehouse is down", retryable=True)

    with monkeypatch.context() as patch:
        patch.setitem(webhooks.HANDLERS, "payment_intent.succeeded", broken)
        with pytest.raises(PaymentProviderError):
            handle_event(event["id"], event, runtime)
    WebhookEvent.update(status="dead").where(WebhookEvent.event_id == event["id"]).execute()
    return event


def row_of(event: dict[str, Any]) -> WebhookEvent:
    return WebhookEvent.get(WebhookEvent.event_id == event["id"])


def test_viewers_read_and_operators_act(app: Any) -> None:
    """The role table's walk (test_roles.py) checks these against the server's answers."""
    permissions = {
        endpoint: app.view_functions[endpoint].permission
        for endpoint in (
            "console.webhooks",
            "console.deliveries",
            "console.replay",
            "console.resend",
        )
    }
    assert permissions == {
        "console.webhooks": roles.READ,
        "console.deliveries": roles.READ,
        "console.replay": roles.ACT,
        "console.resend": roles.ACT,
    }


class TestInbox:
    def test_a_viewer_reads_rows_with_order_attempts_and_error_but_no_button(
        self, signed_in: Callable[..., Any], dead_event: Any, pending_order: Order
    ) -> None:
        page = page_text(signed_in("viewer"), "/admin/webhooks?status=dead")
        assert dead_event["id"] in page and "payment_intent.succeeded" in page
        assert f'href="/admin/orders/{pending_order.id}"' in page
        assert "the warehouse is down" in page
        assert ">Replay<" not in page
        assert 'href="/admin/webhooks"' in page  # the nav entry

    def test_the_status_filter_and_replay_only_where_it_can_change_something(
        self, signed_in: Callable[..., Any], dead_event: Any, paid_order: Order
    ) -> None:
        client = signed_in("operator")
        processed = page_text(client, "/admin/webhooks?status=processed")
        assert dead_event["id"] not in processed and "processed" in processed
        assert ">Replay<" not in processed  # a processed event: nothing to replay
        dead = page_text(client, "/admin/webhooks?status=dead")
        assert dead_event["id"] in dead and ">Replay<" in dead
        answer = client.get("/admin/webhooks?status=lost")
        assert answer.status_code == 400

    def test_keyset_pages(
        self, signed_in: Callable[..., Any], dead_event: Any, paid_order: Order, monkeypatch: Any
    ) -> None:
        monkeypatch.setattr(console_webhooks, "PAGE_SIZE", 1)
        client = signed_in("viewer")
        ids = [row.event_id for row in WebhookEvent.select().order_by(WebhookEvent.id.desc())]
        assert len(ids) == 2
        first = page_text(client, "/admin/webhooks")
        older = re.search(r'href="(/admin/webhooks\?cursor=[^"]+)">Older events', first)
        assert older and ids[0] in first and ids[1] not in first
        second = page_text(client, older.group(1).replace("&amp;", "&"))
        assert ids[1] in second and ids[0] not in second and "Older events" not in second

    def test_replay_revives_a_dead_letter_and_queues_it_as_the_api_does(
        self, signed_in: Callable[..., Any], dead_event: Any, jobs: Any
    ) -> None:
        client = signed_in("operator")
        path = f"/admin/webhooks/events/{dead_event['id']}/replay"
        with capture_logs() as logs:
            answer = htmx_post(client, path, "/admin/webhooks")
        assert answer.status_code == 200
        assert "queued" in answer.get_data(as_text=True)
        assert jobs.named("handle_stripe_event") == [(dead_event["id"],)]
        assert (row_of(dead_event).status, row_of(dead_event).attempts) == ("received", 0)
        (line,) = [entry for entry in logs if entry["event"] == "webhook_event_replayed"]
        assert line["actor"] == "operator:operator@shop.example"

    def test_replayed_dead_letter_is_processed_once_on_a_double_submit(
        self,
        signed_in: Callable[..., Any],
        dead_event: Any,
        pending_order: Order,
        broker: Any,
        worker: Any,
    ) -> None:
        client = signed_in("operator")
        path = f"/admin/webhooks/events/{dead_event['id']}/replay"
        for _ in range(2):
            assert htmx_post(client, path, "/admin/webhooks").status_code == 200
        broker.join("default", timeout=20_000, fail_fast=True)
        worker.join()
        assert (row_of(dead_event).status, row_of(dead_event).attempts) == ("processed", 1)
        assert Order.get_by_id(pending_order.id).state == "PAID"

    def test_without_javascript_the_form_posts_and_the_page_comes_back(
        self, signed_in: Callable[..., Any], dead_event: Any
    ) -> None:
        client = signed_in("operator")
        token = csrf_token_of(client, "/admin/webhooks")
        answer = client.post(
            f"/admin/webhooks/events/{dead_event['id']}/replay",
            data={"csrf_token": token},
            follow_redirects=True,
        )
        assert answer.status_code == 200
        assert f"Replay of {dead_event['id']} queued." in answer.get_data(as_text=True)

    def test_unknown_event_is_404_with_a_message(
        self, signed_in: Callable[..., Any], jobs: Any
    ) -> None:
        answer = htmx_post(
            signed_in("operator"), "/admin/webhooks/events/evt_nope/replay", "/admin/webhooks"
        )
        assert answer.status_code == 404
        assert "No such webhook event." in answer.get_data(as_text=True)
        assert jobs.named("handle_stripe_event") == []

    def test_csrf_and_role_are_checked(
        self, signed_in: Callable[..., Any], dead_event: Any, jobs: Any
    ) -> None:
        path = f"/admin/webhooks/events/{dead_event['id']}/replay"
        operator = signed_in("operator")
        assert operator.post(path, headers={"HX-Request": "true"}).status_code == 403
        viewer = signed_in("viewer")
        assert htmx_post(viewer, path, "/admin/webhooks").status_code == 403
        assert jobs.named("handle_stripe_event") == []
        assert row_of(dead_event).status == "dead"


def with_endpoints(runtime: Any) -> None:
    runtime.config = runtime.config.with_overrides(
        shop_webhook_urls=URLS, shop_webhook_secrets=("whsec_a", "whsec_b")
    )
    shop_webhooks.dispatch(runtime.config.shop_webhook_endpoints)


class TestDeliveries:
    def test_rows_show_endpoint_event_status_attempts_and_last_answer(
        self, signed_in: Callable[..., Any], runtime: Any, pending_order: Order
    ) -> None:
        with_endpoints(runtime)
        ShopDelivery.update(
            status="failed", attempts=3, last_status_code=500, last_error="HTTP 500"
        ).where(ShopDelivery.endpoint == URLS[1]).execute()
        viewer = page_text(signed_in("viewer"), "/admin/webhooks/deliveries?status=failed")
        assert URLS[1] in viewer and URLS[0] not in viewer
        assert "order.created" in viewer and "HTTP 500" in viewer
        assert f'href="/admin/orders/{pending_order.id}"' in viewer
        assert ">Resend<" not in viewer
        assert ">Resend<" in page_text(signed_in("operator"), "/admin/webhooks/deliveries")

    def test_resend_queues_every_endpoint_once_per_button(
        self, signed_in: Callable[..., Any], runtime: Any, jobs: Any, pending_order: Order
    ) -> None:
        with_endpoints(runtime)
        ShopDelivery.update(status="failed").execute()
        (event,) = ShopEvent.select()
        client = signed_in("operator")
        page = page_text(client, "/admin/webhooks/deliveries")
        key = KEY_FIELD.search(page)
        assert key
        path = f"/admin/webhooks/shop-events/{event.event_id}/resend"
        answers = []
        with capture_logs() as logs:
            for _ in range(2):  # a double click: the same key twice
                answer = htmx_post(
                    client, path, "/admin/webhooks/deliveries", idempotency_key=key.group(1)
                )
                assert answer.status_code == 200
                answers.append(answer.get_data(as_text=True))
        assert "queued" in answers[0] and "was already requested" in answers[1]
        assert len(jobs.named("deliver_shop_webhook")) == 2  # two endpoints, once each
        assert {d.status for d in ShopDelivery.select()} == {"pending"}
        actors = {entry["actor"] for entry in logs if entry["event"] == "shop_event_resent"}
        assert actors == {"operator:operator@shop.example"}

    def test_a_key_used_for_another_event_is_refused(
        self, signed_in: Callable[..., Any], runtime: Any, jobs: Any, paid_order: Order
    ) -> None:
        with_endpoints(runtime)
        first, second = ShopEvent.select().order_by(ShopEvent.id)
        client = signed_in("operator")
        page = "/admin/webhooks/deliveries"
        for event, status in ((first, 200), (second, 422)):
            path = f"/admin/webhooks/shop-events/{event.event_id}/resend"
            answer = htmx_post(client, path, page, idempotency_key="console-same-key")
            assert answer.status_code == status
        assert "Idempotency-Key" in answer.get_data(as_text=True)

    def test_unknown_event_missing_key_csrf_and_role(
        self, signed_in: Callable[..., Any], runtime: Any, jobs: Any, pending_order: Order
    ) -> None:
        with_endpoints(runtime)
        (event,) = ShopEvent.select()
        page = "/admin/webhooks/deliveries"
        operator = signed_in("operator")
        unknown = "/admin/webhooks/shop-events/evt_nope/resend"
        assert htmx_post(operator, unknown, page, idempotency_key="console-k-1").status_code == 404
        path = f"/admin/webhooks/shop-events/{event.event_id}/resend"
        assert htmx_post(operator, path, page).status_code == 400  # no Idempotency-Key
        assert operator.post(path, data={"idempotency_key": "console-k-2"}).status_code == 403
        viewer = signed_in("viewer")
        assert htmx_post(viewer, path, page, idempotency_key="console-k-3").status_code == 403
        assert jobs.named("deliver_shop_webhook") == []
