"""PaymentIntents through the official SDK: the status machine, capture, cancel,
update, listing, pagination, search and expansion."""

from __future__ import annotations

import pytest
import stripe

from .conftest import Control


def create(client: stripe.StripeClient, **params: object) -> stripe.PaymentIntent:
    base: dict[str, object] = {"amount": 2000, "currency": "usd"}
    return client.v1.payment_intents.create(params={**base, **params})  # type: ignore[arg-type]


class TestLifecycle:
    def test_create_then_confirm_succeeds(self, client: stripe.StripeClient) -> None:
        pi = create(
            client,
            automatic_payment_methods={"enabled": True},
            receipt_email="buyer@example.com",
            description="Order 42",
            metadata={"orderId": "42", "reservationId": "r-1"},
        )
        assert pi.status == "requires_payment_method"
        assert pi.client_secret.startswith(pi.id + "_secret_")
        assert pi.automatic_payment_methods.enabled is True
        assert pi.metadata.to_dict() == {"orderId": "42", "reservationId": "r-1"}

        pi = client.v1.payment_intents.confirm(
            pi.id, params={"payment_method": "pm_card_visa", "return_url": "https://shop.test/done"}
        )
        assert pi.status == "succeeded"
        assert pi.amount_received == 2000
        assert isinstance(pi.latest_charge, str)
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.paid and charge.captured and charge.status == "succeeded"
        assert charge.payment_intent == pi.id
        assert charge.metadata["orderId"] == "42"
        assert charge.receipt_email == "buyer@example.com"

    def test_payment_method_then_confirm_goes_through_requires_confirmation(
        self, client: stripe.StripeClient
    ) -> None:
        pi = create(client, payment_method="pm_card_mastercard")
        assert pi.status == "requires_confirmation"
        assert pi.payment_method.startswith("pm_")
        pi = client.v1.payment_intents.confirm(pi.id)
        assert pi.status == "succeeded"

    def test_confirm_on_create(self, client: stripe.StripeClient) -> None:
        pi = create(client, payment_method="pm_card_visa", confirm=True)
        assert pi.status == "succeeded"

    def test_automatic_payment_methods_need_a_return_url_to_confirm(
        self, client: stripe.StripeClient
    ) -> None:
        pi = create(client, automatic_payment_methods={"enabled": True})
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
        assert err.value.param == "return_url"
        never = create(
            client, automatic_payment_methods={"enabled": True, "allow_redirects": "never"}
        )
        confirmed = client.v1.payment_intents.confirm(
            never.id, params={"payment_method": "pm_card_visa"}
        )
        assert confirmed.status == "succeeded"

    def test_confirm_without_payment_method_is_refused(self, client: stripe.StripeClient) -> None:
        pi = create(client)
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.confirm(pi.id)
        assert err.value.code == "payment_intent_unexpected_state"

    def test_confirm_after_success_is_refused(self, client: stripe.StripeClient) -> None:
        pi = create(client, payment_method="pm_card_visa", confirm=True)
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.confirm(pi.id, params={"payment_method": "pm_card_visa"})
        assert err.value.code == "payment_intent_unexpected_state"
        assert err.value.error.payment_intent["status"] == "succeeded"

    def test_update_amount_and_metadata(self, client: stripe.StripeClient) -> None:
        pi = create(client, metadata={"a": "1", "b": "2"})
        pi = client.v1.payment_intents.update(
            pi.id, params={"amount": 3100, "metadata": {"a": "", "c": "3"}, "description": "x"}
        )
        assert pi.amount == 3100
        assert pi.metadata.to_dict() == {"b": "2", "c": "3"}
        assert pi.description == "x"

    def test_amount_cannot_change_after_success(self, client: stripe.StripeClient) -> None:
        pi = create(client, payment_method="pm_card_visa", confirm=True)
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.update(pi.id, params={"amount": 10})
        assert err.value.code == "payment_intent_unexpected_state"
        updated = client.v1.payment_intents.update(pi.id, params={"metadata": {"note": "ok"}})
        assert updated.metadata["note"] == "ok"

    def test_amount_below_minimum(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            create(client, amount=10)
        assert err.value.code == "amount_too_small"
        assert err.value.param == "amount"


class TestCancel:
    @pytest.mark.parametrize("reason", ["abandoned", "requested_by_customer", "duplicate"])
    def test_cancel_with_reason(self, client: stripe.StripeClient, reason: str) -> None:
        pi = create(client)
        pi = client.v1.payment_intents.cancel(pi.id, params={"cancellation_reason": reason})
        assert pi.status == "canceled"
        assert pi.cancellation_reason == reason
        assert pi.canceled_at is not None

    def test_cancel_refused_when_succeeded(self, client: stripe.StripeClient) -> None:
        pi = create(client, payment_method="pm_card_visa", confirm=True)
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.cancel(pi.id)
        assert err.value.code == "payment_intent_unexpected_state"
        assert "status of succeeded" in str(err.value.user_message)

    def test_cancel_refused_when_canceled(self, client: stripe.StripeClient) -> None:
        pi = create(client)
        client.v1.payment_intents.cancel(pi.id)
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.cancel(pi.id)
        assert err.value.code == "payment_intent_unexpected_state"

    def test_cancel_from_requires_action(self, client: stripe.StripeClient) -> None:
        pi = create(client, payment_method="pm_card_authenticationRequired", confirm=True)
        assert pi.status == "requires_action"
        assert client.v1.payment_intents.cancel(pi.id).status == "canceled"

    def test_bad_cancellation_reason(self, client: stripe.StripeClient) -> None:
        pi = create(client)
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.cancel(pi.id, params={"cancellation_reason": "bored"})
        assert err.value.param == "cancellation_reason"


class TestManualCapture:
    def test_full_capture(self, client: stripe.StripeClient) -> None:
        pi = create(client, capture_method="manual", payment_method="pm_card_visa", confirm=True)
        assert pi.status == "requires_capture"
        assert pi.amount_capturable == 2000
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.captured is False and charge.paid is True
        pi = client.v1.payment_intents.capture(pi.id)
        assert pi.status == "succeeded"
        assert pi.amount_received == 2000 and pi.amount_capturable == 0
        assert client.v1.charges.retrieve(pi.latest_charge).captured is True

    def test_partial_capture(self, client: stripe.StripeClient) -> None:
        pi = create(client, capture_method="manual", payment_method="pm_card_visa", confirm=True)
        pi = client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 1500})
        assert pi.amount_received == 1500
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.amount_captured == 1500 and charge.amount_refunded == 500

    def test_capture_more_than_authorised_is_refused(self, client: stripe.StripeClient) -> None:
        pi = create(client, capture_method="manual", payment_method="pm_card_visa", confirm=True)
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.capture(pi.id, params={"amount_to_capture": 2001})
        assert err.value.param == "amount_to_capture"

    def test_capture_refused_unless_requires_capture(self, client: stripe.StripeClient) -> None:
        pi = create(client, payment_method="pm_card_visa", confirm=True)
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.capture(pi.id)
        assert err.value.code == "payment_intent_unexpected_state"

    def test_cancel_releases_the_authorisation(self, client: stripe.StripeClient) -> None:
        pi = create(client, capture_method="manual", payment_method="pm_card_visa", confirm=True)
        pi = client.v1.payment_intents.cancel(pi.id)
        assert pi.status == "canceled"
        charge = client.v1.charges.retrieve(pi.latest_charge)
        assert charge.refunded is True and charge.amount_refunded == 2000


class TestExpand:
    def test_latest_charge_is_an_id_unless_expanded(self, client: stripe.StripeClient) -> None:
        pi = create(client, payment_method="pm_card_visa", confirm=True)
        assert isinstance(client.v1.payment_intents.retrieve(pi.id).latest_charge, str)
        expanded = client.v1.payment_intents.retrieve(
            pi.id, params={"expand": ["latest_charge", "payment_method"]}
        )
        assert expanded.latest_charge.object == "charge"
        assert expanded.payment_method.card.last4 == "4242"

    def test_expand_in_lists(self, client: stripe.StripeClient) -> None:
        create(client, payment_method="pm_card_visa", confirm=True)
        page = client.v1.payment_intents.list(params={"expand": ["data.latest_charge"]})
        assert page.data[0].latest_charge.object == "charge"

    def test_nested_expand_on_charge(self, client: stripe.StripeClient) -> None:
        pi = create(client, payment_method="pm_card_visa", confirm=True)
        charge = client.v1.charges.retrieve(pi.latest_charge, params={"expand": ["payment_intent"]})
        assert charge.payment_intent.id == pi.id


class TestListAndSearch:
    def test_pagination(self, client: stripe.StripeClient) -> None:
        ids = [create(client, amount=1000 + i).id for i in range(5)]
        newest_first = list(reversed(ids))
        first = client.v1.payment_intents.list(params={"limit": 2})
        assert [p.id for p in first.data] == newest_first[:2]
        assert first.has_more is True and first.url == "/v1/payment_intents"
        second = client.v1.payment_intents.list(
            params={"limit": 2, "starting_after": first.data[-1].id}
        )
        assert [p.id for p in second.data] == newest_first[2:4]
        last = client.v1.payment_intents.list(
            params={"limit": 2, "starting_after": second.data[-1].id}
        )
        assert [p.id for p in last.data] == newest_first[4:]
        assert last.has_more is False
        back = client.v1.payment_intents.list(params={"limit": 2, "ending_before": last.data[0].id})
        assert [p.id for p in back.data] == newest_first[2:4]
        assert back.has_more is True
        everything = [
            p.id for p in client.v1.payment_intents.list(params={"limit": 2}).auto_paging_iter()
        ]
        assert everything == newest_first

    def test_created_filter(self, client: stripe.StripeClient) -> None:
        pi = create(client)
        assert client.v1.payment_intents.list(params={"created": {"gte": pi.created}}).data
        assert not client.v1.payment_intents.list(params={"created": {"gt": pi.created}}).data
        assert client.v1.payment_intents.list(params={"created": {"lte": pi.created}}).data

    def test_unknown_cursor(self, client: stripe.StripeClient) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.list(params={"starting_after": "pi_missing"})
        assert err.value.code == "resource_missing"
        assert err.value.param == "starting_after"

    def test_search_by_metadata_status_and(self, client: stripe.StripeClient) -> None:
        paid = create(
            client, metadata={"orderId": "o-1"}, payment_method="pm_card_visa", confirm=True
        )
        create(client, metadata={"orderId": "o-1"})
        create(client, metadata={"orderId": "o-2"})
        found = client.v1.payment_intents.search(params={"query": "metadata['orderId']:'o-1'"})
        assert found.object == "search_result" and len(found.data) == 2
        both = client.v1.payment_intents.search(
            params={"query": "metadata['orderId']:'o-1' AND status:'succeeded'"}
        )
        assert [p.id for p in both.data] == [paid.id]
        either = client.v1.payment_intents.search(
            params={"query": "metadata['orderId']:'o-2' OR status:'succeeded'"}
        )
        assert len(either.data) == 2
        amount = client.v1.payment_intents.search(
            params={"query": "amount>=2000 AND -status:'succeeded'"}
        )
        assert len(amount.data) == 2

    def test_search_pages(self, client: stripe.StripeClient) -> None:
        for _ in range(3):
            create(client, metadata={"batch": "b"})
        page = client.v1.payment_intents.search(
            params={"query": "metadata['batch']:'b'", "limit": 2}
        )
        assert page.has_more is True and page.next_page
        rest = client.v1.payment_intents.search(
            params={"query": "metadata['batch']:'b'", "limit": 2, "page": page.next_page}
        )
        assert len(rest.data) == 1 and rest.has_more is False

    @pytest.mark.parametrize(
        "query",
        ["status:", "nope:'x'", "a:'1' AND OR b:'2'", "status:'a' AND amount>1 OR currency:'usd'"],
    )
    def test_invalid_query(self, client: stripe.StripeClient, query: str) -> None:
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.payment_intents.search(params={"query": query})
        assert err.value.param == "query"


def test_control_fixture_is_reachable(control: Control) -> None:
    assert control.get("health") == {"ok": True}
