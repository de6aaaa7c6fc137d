"""The payment gateway: the Protocol the services use, and the Stripe adapter.

This is the only module that imports ``stripe``. Every Stripe error leaves it as a
:class:`~app.errors.PaymentProviderError` whose ``retryable`` tells actors whether to
raise for a Dramatiq retry (rate limits, connection errors, 5xx, concurrent idempotent
requests) or to record a permanent failure (invalid requests).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import quote_plus

import requests
import stripe
from prometheus_client import Counter
from requests.utils import get_environ_proxies, select_proxy

from app.errors import PaymentProviderError
from app.gateways.rate_limit import StripeBudget
from app.gateways.signatures import verify_signature
from models.statuses import PaymentStatus

T = TypeVar("T")

# Intent statuses after which no further charge can happen through that intent.
FINAL_STATUSES = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.CANCELED})


@dataclass(frozen=True)
class PaymentError:
    """Why the last payment attempt failed (Stripe's ``last_payment_error``)."""

    code: str | None
    message: str
    decline_code: str | None = None
    type: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PaymentError | None:
        """Build from Stripe's error object; None when there is none."""
        if not data:
            return None
        return cls(
            code=data.get("code"),
            message=data.get("message") or "The payment failed.",
            decline_code=data.get("decline_code"),
            type=data.get("type"),
        )


@dataclass(frozen=True)
class Intent:
    """The part of a Stripe PaymentIntent the service relies on."""

    id: str
    status: str
    client_secret: str | None
    amount: int
    currency: str
    metadata: dict[str, str] = field(default_factory=dict)
    last_error: PaymentError | None = None
    latest_charge: str | None = None
    # Wave 2: manual capture. ``capture_before`` (unix seconds) is known when the charge
    # was expanded (the gateway expands ``latest_charge`` on every call it makes).
    capture_method: str = "automatic"
    amount_capturable: int = 0
    amount_received: int = 0
    capture_before: int | None = None
    cancellation_reason: str | None = None
    # Wave 3: a returning buyer's Stripe Customer, and whether the method is saved on success.
    customer: str | None = None
    setup_future_usage: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Intent:
        """Build from a PaymentIntent object (API response or webhook payload)."""
        charge = data.get("latest_charge")
        capture_before = None
        if isinstance(charge, dict):
            card = (charge.get("payment_method_details") or {}).get("card") or {}
            capture_before = card.get("capture_before")
            charge = charge.get("id")
        return cls(
            id=data["id"],
            status=data["status"],
            client_secret=data.get("client_secret"),
            amount=int(data.get("amount") or 0),
            currency=str(data.get("currency") or ""),
            metadata=dict(data.get("metadata") or {}),
            last_error=PaymentError.from_dict(data.get("last_payment_error")),
            latest_charge=charge,
            capture_method=str(data.get("capture_method") or "automatic"),
            amount_capturable=int(data.get("amount_capturable") or 0),
            amount_received=int(data.get("amount_received") or 0),
            capture_before=int(capture_before) if capture_before else None,
            cancellation_reason=data.get("cancellation_reason"),
            customer=_id_of(data.get("customer")),
            setup_future_usage=data.get("setup_future_usage"),
        )


def _id_of(value: Any) -> str | None:
    """An expandable field's id, whether Stripe sent the id or the object."""
    if isinstance(value, dict):
        return str(value["id"]) if value.get("id") else None
    return str(value) if value else None


@dataclass(frozen=True)
class SavedCard:
    """A card saved on a buyer's Stripe Customer, as the buyer may see it (no number)."""

    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SavedCard:
        """Build from a card PaymentMethod object."""
        card = data.get("card") or {}
        return cls(
            id=data["id"],
            brand=str(card.get("brand") or ""),
            last4=str(card.get("last4") or ""),
            exp_month=int(card.get("exp_month") or 0),
            exp_year=int(card.get("exp_year") or 0),
        )


@dataclass(frozen=True)
class SessionLine:
    """One line of a Checkout Session, priced by us (``price_data``)."""

    name: str
    unit_amount: int
    quantity: int


@dataclass(frozen=True)
class CheckoutSession:
    """The part of a Stripe Checkout Session the service relies on."""

    id: str
    status: str  # open | complete | expired
    payment_status: str  # paid | unpaid | no_payment_required
    url: str | None
    amount_total: int
    currency: str
    expires_at: int
    payment_intent: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckoutSession:
        """Build from a Checkout Session object (API response or webhook payload)."""
        intent = data.get("payment_intent")
        if isinstance(intent, dict):
            intent = intent.get("id")
        return cls(
            id=data["id"],
            status=str(data.get("status") or ""),
            payment_status=str(data.get("payment_status") or ""),
            url=data.get("url"),
            amount_total=int(data.get("amount_total") or 0),
            currency=str(data.get("currency") or ""),
            expires_at=int(data.get("expires_at") or 0),
            payment_intent=intent or None,
            metadata=dict(data.get("metadata") or {}),
        )


@dataclass(frozen=True)
class TaxLine:
    """One cart line as Stripe Tax prices it: ``amount`` is the line's taxable amount
    (after its share of any discount), ``reference`` our SKU."""

    reference: str
    amount: int
    quantity: int


@dataclass(frozen=True)
class TaxCalculation:
    """The part of a Stripe Tax calculation the service relies on: the tax of each line
    (in the order sent), of the shipping cost, their sum, and when it expires."""

    id: str
    line_taxes: tuple[int, ...]
    shipping_tax: int
    tax: int
    expires_at: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaxCalculation:
        """Build from a ``tax.calculation`` object (its line items included)."""
        lines = (data.get("line_items") or {}).get("data") or []
        shipping = data.get("shipping_cost") or {}
        return cls(
            id=str(data["id"]),
            line_taxes=tuple(int(line["amount_tax"]) for line in lines),
            shipping_tax=int(shipping.get("amount_tax") or 0),
            tax=int(data["tax_amount_exclusive"]),
            expires_at=int(data["expires_at"]) if data.get("expires_at") else None,
        )


@runtime_checkable
class PaymentGateway(Protocol):
    """The payment verbs the domain needs (Stripe in production, a fake in tests)."""

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: dict[str, str],
        receipt_email: str | None,
        description: str,
        capture_method: str = "automatic",
        confirmation_token: str | None = None,
        return_url: str | None = None,
        customer: str | None = None,
        setup_future_usage: str | None = None,
    ) -> Intent:
        """Create (or, on a repeated key, return) a PaymentIntent.

        With ``confirmation_token`` it is created AND confirmed in one call; a decline
        returns the intent (``requires_payment_method`` with ``last_error``), it does
        not raise. ``customer`` (a returning buyer's Stripe Customer) and
        ``setup_future_usage`` (save the method when the payment succeeds) are optional.
        """
        ...

    def confirm_intent(
        self,
        intent_id: str,
        *,
        confirmation_token: str,
        return_url: str | None,
        idempotency_key: str,
    ) -> Intent:
        """Confirm an intent server-side with a ConfirmationToken; a decline returns it."""
        ...

    def capture_intent(self, intent_id: str, *, amount: int | None, idempotency_key: str) -> Intent:
        """Capture an authorised intent (``amount`` None: all of it; the rest is released)."""
        ...

    def retrieve_intent(self, intent_id: str) -> Intent:
        """The intent's current state at the provider."""
        ...

    def cancel_intent(self, intent_id: str, *, reason: str, idempotency_key: str) -> Intent:
        """Cancel an intent; raises PaymentProviderError if it can no longer be canceled."""
        ...

    def find_intents_for_order(self, order_id: str) -> list[Intent]:
        """Intents whose ``metadata.orderId`` is ``order_id`` (Stripe's search: eventually
        consistent, an intent may take about a minute to be found)."""
        ...

    def create_refund(
        self,
        *,
        intent_id: str,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        """Refund (part of) an intent's charge; returns the refund object."""
        ...

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        """The refund as Stripe has it now (its status, amount, intent)."""
        ...

    def list_refunds(self, intent_id: str) -> list[dict[str, Any]]:
        """Every refund of the intent's payment, as Stripe has them now."""
        ...

    def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        """The charge as Stripe has it now (its intent, amount, currency)."""
        ...

    def retrieve_dispute(self, dispute_id: str) -> dict[str, Any]:
        """The dispute as Stripe has it now (its intent, status, amount)."""
        ...

    def list_events(self, *, created_gte: int, types: Iterable[str]) -> Iterator[dict[str, Any]]:
        """Events created at or after ``created_gte`` (unix seconds), oldest pages first."""
        ...

    def stage_dispute_evidence(
        self, dispute_id: str, *, evidence: dict[str, str]
    ) -> dict[str, Any]:
        """Save evidence on a dispute WITHOUT submitting it (``submit: false``)."""
        ...

    def verify_webhook(self, payload: bytes, signature_header: str) -> dict[str, Any]:
        """Verify a webhook's signature and return the event (SignatureInvalid/MalformedJSON)."""
        ...

    # --- Wave 3: returning buyers (Customers, saved cards, CustomerSessions) ---------

    def create_customer(self, *, user_id: str, idempotency_key: str) -> str:
        """Create (or, on a repeated key, return) the buyer's Customer; its id."""
        ...

    def delete_customer(self, customer_id: str) -> None:
        """Delete a Customer (its saved methods go with it); one already gone is fine."""
        ...

    def create_customer_session(self, customer_id: str) -> str:
        """A CustomerSession for the Payment Element's saved cards; its client secret."""
        ...

    def list_saved_cards(self, customer_id: str) -> list[SavedCard]:
        """The cards saved on the Customer, newest first."""
        ...

    def retrieve_saved_card(self, customer_id: str, payment_method_id: str) -> SavedCard | None:
        """One of the Customer's saved cards, or None when it is not theirs (or unknown)."""
        ...

    def detach_payment_method(self, payment_method_id: str) -> None:
        """Take a saved method off its Customer, for good."""
        ...

    def create_checkout_session(
        self,
        *,
        lines: Sequence[SessionLine],
        shipping: SessionLine | None,
        currency: str,
        customer_email: str | None,
        metadata: dict[str, str],
        success_url: str,
        cancel_url: str,
        expires_at: int,
        idempotency_key: str,
        discount: int = 0,
        capture_method: str = "automatic",
    ) -> CheckoutSession:
        """Create (or, on a repeated key, return) a hosted Checkout Session in mode
        ``payment``; ``metadata`` goes on the session and on its PaymentIntent; a
        ``discount`` (minor units) comes off the lines as a one-off coupon."""
        ...

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        """The Checkout Session as Stripe has it now."""
        ...

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> CheckoutSession:
        """Expire an open session (its buyer can no longer pay); raises PaymentProviderError
        when it is no longer open."""
        ...

    # --- Wave 3: Stripe Tax (TAX_PROVIDER=stripe) ---------------------------------------

    def calculate_tax(
        self,
        *,
        currency: str,
        lines: Sequence[TaxLine],
        shipping: int,
        address: dict[str, str],
    ) -> TaxCalculation:
        """A tax calculation (exclusive) for ``lines`` and a ``shipping`` cost shipped to
        ``address`` (Stripe's keys: country, state, postal_code, city, line1, line2)."""
        ...

    def record_tax_transaction(
        self, *, calculation_id: str, reference: str, idempotency_key: str
    ) -> str:
        """Record the tax of a paid order from its calculation; the transaction's id."""
        ...

    def reverse_tax_transaction(
        self,
        *,
        transaction_id: str,
        reference: str,
        flat_amount: int | None,
        idempotency_key: str,
    ) -> str:
        """Reverse a tax transaction: in full (``flat_amount`` None) or by ``flat_amount``
        minor units including tax (positive; spread over the lines by Stripe); its id."""
        ...


# Expanded on every intent call: the charge carries an authorisation's capture_before.
EXPAND = ["latest_charge"]


def _intent_path(intent_id: str) -> str:
    """``/v1/payment_intents/<id>``, the id quoted as the SDK's services quote it."""
    return f"/v1/payment_intents/{quote_plus(intent_id)}"


def declined_intent(exc: BaseException | None) -> Intent | None:
    """The intent a confirming call left declined (Stripe answers 402 with it), or None."""
    if not isinstance(exc, stripe.CardError) or exc.error is None:
        return None
    intent = getattr(exc.error, "payment_intent", None)
    if intent is None:
        return None
    return Intent.from_dict(intent.to_dict() if hasattr(intent, "to_dict") else dict(intent))


def to_provider_error(exc: stripe.StripeError) -> PaymentProviderError:
    """Map a Stripe SDK error to the domain's PaymentProviderError."""
    status = exc.http_status or 0
    code = getattr(exc, "code", None)
    if code is None and isinstance(exc, stripe.IdempotencyError):
        code = "idempotency_error"  # Stripe sends only the type; name the kind all the same
    retryable = isinstance(
        exc, stripe.RateLimitError | stripe.APIConnectionError | stripe.AuthenticationError
    ) or (status >= 500 or status == 409)
    if isinstance(exc, stripe.APIError) and not status:
        retryable = True
    message = exc.user_message or str(exc) or exc.__class__.__name__
    return PaymentProviderError(message, retryable=retryable, provider_code=code)


# A 429 is retried at once (the budget, just halved, paces the retry); transient
# failures (connection, 5xx, 409 on a concurrent idempotent request) after a short pause.
RATE_LIMIT_ATTEMPTS = 6
TRANSIENT_ATTEMPTS = 3
TRANSIENT_PAUSE_SECONDS = 0.5

STRIPE_RATE_LIMITED = Counter(
    "checkout_stripe_rate_limited_total", "Stripe answers of 429 (rate limited, lock timeout)."
)


def is_rate_limited(exc: stripe.StripeError) -> bool:
    """Stripe asked us to slow down: a 429 (``rate_limit``, or ``lock_timeout`` on one object)."""
    return (
        exc.http_status == 429
        or isinstance(exc, stripe.RateLimitError)
        or getattr(exc, "code", None) in ("rate_limit", "lock_timeout")
    )


STRIPE_API = "https://api.stripe.com"


def environment_proxy(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``, ``ALL_PROXY``, …,
    none when ``NO_PROXY`` covers its host), chosen as ``requests`` chooses per request."""
    return select_proxy(url, get_environ_proxies(url))


class StripeHttpClient(stripe.RequestsClient):
    """The SDK's ``requests`` client, whose keep-alive sessions (one per thread) do not
    read the environment on every request.

    A ``requests.Session`` trusts the environment by default: every request looked the
    proxy variables up again (``merge_environment_settings``: ``os.environ`` walked,
    ``NO_PROXY`` matched) and searched for a ``~/.netrc``, about a sixth of a Stripe
    call's client CPU. The proxy for the API's address is read once instead, when the
    gateway is built at process start, and sent with every request: a deployment's
    ``HTTPS_PROXY`` and ``NO_PROXY`` keep their effect (set after start, they have none).
    A ``.netrc`` is no longer read: its password would have replaced the API key anyway.
    """

    def __init__(self, *, api_base: str, timeout: float) -> None:
        super().__init__(timeout=timeout, proxy=environment_proxy(api_base))
        # The SDK keeps each thread's session in ``_thread_local.session`` and makes a
        # plain one when it finds none there: each thread finds ours.
        self._thread_local = _BlindSessions()


class _BlindSessions(threading.local):
    """Per thread, a ``requests.Session`` that does not trust the environment."""

    def __init__(self) -> None:
        self.session = requests.Session()
        self.session.trust_env = False


class StripeGateway:
    """The PaymentGateway on Stripe's API (or the local emulator at ``api_base``)."""

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str | None = None,
        webhook_secrets: Iterable[str] = (),
        webhook_tolerance: int = 300,
        timeout: float = 20.0,
        budget: StripeBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # The SDK logs every request and response at INFO, URLs and all; our own request
        # and actor logs already say what happened, so keep only its warnings.
        logging.getLogger("stripe").setLevel(logging.WARNING)
        self.webhook_secrets = tuple(webhook_secrets)
        self.webhook_tolerance = webhook_tolerance
        self.budget = budget
        self.sleep = sleep
        base_addresses: Any = {"api": api_base.rstrip("/")} if api_base else None
        self.client = stripe.StripeClient(
            api_key,
            base_addresses=base_addresses,
            # Retries are ours (_call), so that every attempt goes through the budget.
            max_network_retries=0,
            http_client=StripeHttpClient(api_base=api_base or STRIPE_API, timeout=timeout),
        )

    def _call(self, fn: Callable[[], T]) -> T:
        """Run one API call under the shared budget, retrying 429s and transient failures.

        Every call we make is safe to repeat: reads, and writes with an idempotency key.
        """
        limited = transient = 0
        while True:
            if self.budget is not None:
                self.budget.acquire()
            try:
                return fn()
            except stripe.StripeError as exc:
                error = to_provider_error(exc)
                if is_rate_limited(exc):
                    STRIPE_RATE_LIMITED.inc()
                    limited += 1
                    if self.budget is not None:
                        self.budget.penalize()
                    if limited < RATE_LIMIT_ATTEMPTS:
                        self.sleep(random.uniform(0.01, 0.1))
                        continue
                elif error.retryable and transient + 1 < TRANSIENT_ATTEMPTS:
                    transient += 1
                    self.sleep(TRANSIENT_PAUSE_SECONDS * transient * random.uniform(0.5, 1.5))
                    continue
                raise error from exc

    def _raw(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Callable[[], dict[str, Any]]:
        """One API request whose JSON answer comes back as plain dicts (for ``_call``).

        The SDK's services turn every answer into ``StripeObject`` instances (a class per nested
        type, each field set through ``__setitem__``): 11 % of a worker's CPU in the cost
        bench, for objects we turned into our dataclasses at once. ``raw_request`` goes
        through the same requestor (the client's key, API version, base address, HTTP
        client, timeout and ``max_network_retries=0``) and raises the same SDK errors for a
        non-2xx answer; only the success's body is left as the parsed JSON.
        """
        options: dict[str, Any] = dict(params or {})
        if idempotency_key is not None:
            options["idempotency_key"] = idempotency_key

        def request() -> dict[str, Any]:
            response = self.client.raw_request(method, path, **options)
            data: dict[str, Any] = response.data
            return data

        return request

    def create_intent(
        self,
        *,
        amount: int,
        currency: str,
        idempotency_key: str,
        metadata: dict[str, str],
        receipt_email: str | None,
        description: str,
        capture_method: str = "automatic",
        confirmation_token: str | None = None,
        return_url: str | None = None,
        customer: str | None = None,
        setup_future_usage: str | None = None,
    ) -> Intent:
        """Create a PaymentIntent for the Payment Element (automatic payment methods);
        with ``confirmation_token``, create and confirm it in one call."""
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency,
            "automatic_payment_methods": {"enabled": True},
            "metadata": metadata,
            "description": description,
            "expand": EXPAND,
        }
        if capture_method != "automatic":
            params["capture_method"] = capture_method
        if receipt_email:
            params["receipt_email"] = receipt_email
        if customer:
            params["customer"] = customer
        if setup_future_usage:
            params["setup_future_usage"] = setup_future_usage
        if confirmation_token:
            params |= {"confirm": True, "confirmation_token": confirmation_token}
            if return_url:
                params["return_url"] = return_url
        return self._confirming(
            self._raw("post", "/v1/payment_intents", params, idempotency_key=idempotency_key)
        )

    def confirm_intent(
        self,
        intent_id: str,
        *,
        confirmation_token: str,
        return_url: str | None,
        idempotency_key: str,
    ) -> Intent:
        """Confirm with a ConfirmationToken (a new attempt on the same intent)."""
        params: dict[str, Any] = {"confirmation_token": confirmation_token, "expand": EXPAND}
        if return_url:
            params["return_url"] = return_url
        path = f"{_intent_path(intent_id)}/confirm"
        return self._confirming(self._raw("post", path, params, idempotency_key=idempotency_key))

    def capture_intent(self, intent_id: str, *, amount: int | None, idempotency_key: str) -> Intent:
        """Capture an authorised intent (``amount_to_capture`` when partial)."""
        params: dict[str, Any] = {"expand": EXPAND}
        if amount is not None:
            params["amount_to_capture"] = amount
        path = f"{_intent_path(intent_id)}/capture"
        return Intent.from_dict(
            self._call(self._raw("post", path, params, idempotency_key=idempotency_key))
        )

    def _confirming(self, fn: Callable[[], dict[str, Any]]) -> Intent:
        """Run a confirming call; a card decline (402) answers with the declined intent."""
        try:
            data = self._call(fn)
        except PaymentProviderError as exc:
            declined = declined_intent(exc.__cause__)
            if declined is None:
                raise
            return declined
        return Intent.from_dict(data)

    def retrieve_intent(self, intent_id: str) -> Intent:
        """Retrieve a PaymentIntent (its latest charge expanded: ``capture_before``)."""
        params: dict[str, Any] = {"expand": EXPAND}
        return Intent.from_dict(self._call(self._raw("get", _intent_path(intent_id), params)))

    def cancel_intent(self, intent_id: str, *, reason: str, idempotency_key: str) -> Intent:
        """Cancel a PaymentIntent with ``cancellation_reason=reason``."""
        path = f"{_intent_path(intent_id)}/cancel"
        params: dict[str, Any] = {"cancellation_reason": reason}
        return Intent.from_dict(
            self._call(self._raw("post", path, params, idempotency_key=idempotency_key))
        )

    def find_intents_for_order(self, order_id: str) -> list[Intent]:
        """Search ``metadata['orderId']:'<id>'``, every page (newest first)."""
        quoted = order_id.replace("\\", "\\\\").replace("'", "\\'")
        params: dict[str, Any] = {"query": f"metadata['orderId']:'{quoted}'", "limit": 100}
        intents = self.client.v1.payment_intents
        page = self._call(lambda: intents.search(params))  # type: ignore[arg-type]
        found: list[Intent] = []
        while True:
            found.extend(Intent.from_dict(obj.to_dict()) for obj in page.data)
            if not page.has_more:
                return found
            page = self._call(page.next_search_result_page)

    def create_refund(
        self,
        *,
        intent_id: str,
        amount: int | None,
        reason: str | None,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> dict[str, Any]:
        """Refund the intent's charge (all of it when ``amount`` is None)."""
        params: dict[str, Any] = {"payment_intent": intent_id, "metadata": metadata}
        if amount is not None:
            params["amount"] = amount
        if reason:
            params["reason"] = reason
        refunds = self.client.v1.refunds
        obj = self._call(
            lambda: refunds.create(params, {"idempotency_key": idempotency_key})  # type: ignore[arg-type]
        )
        return obj.to_dict()

    def retrieve_refund(self, refund_id: str) -> dict[str, Any]:
        """``GET /v1/refunds/<id>``."""
        refunds = self.client.v1.refunds
        return self._call(lambda: refunds.retrieve(refund_id)).to_dict()

    def list_refunds(self, intent_id: str) -> list[dict[str, Any]]:
        """``GET /v1/refunds?payment_intent=<id>``, every page."""
        params: dict[str, Any] = {"payment_intent": intent_id, "limit": 100}
        page = self._call(lambda: self.client.v1.refunds.list(params))  # type: ignore[arg-type]
        found: list[dict[str, Any]] = []
        while True:
            found.extend(refund.to_dict() for refund in page.data)
            if not page.has_more:
                return found
            page = self._call(page.next_page)

    def retrieve_charge(self, charge_id: str) -> dict[str, Any]:
        """``GET /v1/charges/<id>``."""
        charges = self.client.v1.charges
        return self._call(lambda: charges.retrieve(charge_id)).to_dict()

    def retrieve_dispute(self, dispute_id: str) -> dict[str, Any]:
        """``GET /v1/disputes/<id>``."""
        disputes = self.client.v1.disputes
        return self._call(lambda: disputes.retrieve(dispute_id)).to_dict()

    def list_events(self, *, created_gte: int, types: Iterable[str]) -> Iterator[dict[str, Any]]:
        """Page through events created since ``created_gte`` of the given types."""
        params: dict[str, Any] = {"created": {"gte": created_gte}, "limit": 100}
        wanted = list(types)
        if wanted:
            params["types"] = wanted
        page = self._call(lambda: self.client.v1.events.list(params))  # type: ignore[arg-type]
        while True:
            for event in page.data:
                yield event.to_dict()
            if not page.has_more:
                return
            page = self._call(page.next_page)

    def stage_dispute_evidence(
        self, dispute_id: str, *, evidence: dict[str, str]
    ) -> dict[str, Any]:
        """``POST /v1/disputes/<id>`` with ``evidence`` and ``submit=false`` (a draft the
        operator reviews and submits); repeating it stages the same draft again."""
        disputes = self.client.v1.disputes
        params: dict[str, Any] = {"evidence": evidence, "submit": False}
        obj = self._call(lambda: disputes.update(dispute_id, params))  # type: ignore[arg-type]
        return obj.to_dict()

    def verify_webhook(self, payload: bytes, signature_header: str) -> dict[str, Any]:
        """Verify the Stripe-Signature over the raw body against every active secret."""
        return verify_signature(
            payload, signature_header, self.webhook_secrets, tolerance=self.webhook_tolerance
        )

    # --- Wave 3: returning buyers -------------------------------------------------------

    def create_customer(self, *, user_id: str, idempotency_key: str) -> str:
        """``POST /v1/customers`` with ``metadata.userId`` only: no personal data at Stripe."""
        customers = self.client.v1.customers
        params: dict[str, Any] = {"metadata": {"userId": user_id}}
        obj = self._call(
            lambda: customers.create(params, {"idempotency_key": idempotency_key})  # type: ignore[arg-type]
        )
        return str(obj.id)

    def delete_customer(self, customer_id: str) -> None:
        """``DELETE /v1/customers/<id>``; a 404 (already deleted) counts as done."""
        customers = self.client.v1.customers
        try:
            self._call(lambda: customers.delete(customer_id))
        except PaymentProviderError as exc:
            if exc.provider_code != "resource_missing":
                raise

    def create_customer_session(self, customer_id: str) -> str:
        """``POST /v1/customer_sessions``: the Payment Element lists, saves and removes
        the buyer's cards; ``limited`` ones too (saved by a payment with
        ``setup_future_usage``, which the buyer asked for with ``savePaymentMethod``)."""
        features = {
            "payment_method_redisplay": "enabled",
            "payment_method_save": "enabled",
            "payment_method_remove": "enabled",
            "payment_method_allow_redisplay_filters": ["always", "limited"],
        }
        params: dict[str, Any] = {
            "customer": customer_id,
            "components": {"payment_element": {"enabled": True, "features": features}},
        }
        sessions = self.client.v1.customer_sessions
        obj = self._call(lambda: sessions.create(params))  # type: ignore[arg-type]
        return str(obj.client_secret)

    def list_saved_cards(self, customer_id: str) -> list[SavedCard]:
        """``GET /v1/customers/<id>/payment_methods?type=card``, every page."""
        methods = self.client.v1.customers.payment_methods
        params: dict[str, Any] = {"type": "card", "limit": 100}
        page = self._call(lambda: methods.list(customer_id, params))  # type: ignore[arg-type]
        found: list[SavedCard] = []
        while True:
            found.extend(SavedCard.from_dict(pm.to_dict()) for pm in page.data)
            if not page.has_more:
                return found
            page = self._call(page.next_page)

    def retrieve_saved_card(self, customer_id: str, payment_method_id: str) -> SavedCard | None:
        """``GET /v1/customers/<id>/payment_methods/<pm>``; None on Stripe's 404."""
        methods = self.client.v1.customers.payment_methods
        try:
            obj = self._call(lambda: methods.retrieve(customer_id, payment_method_id))
        except PaymentProviderError as exc:
            if exc.provider_code == "resource_missing":
                return None
            raise
        data = obj.to_dict()
        return SavedCard.from_dict(data) if data.get("type") == "card" else None

    def detach_payment_method(self, payment_method_id: str) -> None:
        """``POST /v1/payment_methods/<id>/detach``."""
        methods = self.client.v1.payment_methods
        self._call(lambda: methods.detach(payment_method_id))

    def create_checkout_session(
        self,
        *,
        lines: Sequence[SessionLine],
        shipping: SessionLine | None,
        currency: str,
        customer_email: str | None,
        metadata: dict[str, str],
        success_url: str,
        cancel_url: str,
        expires_at: int,
        idempotency_key: str,
        discount: int = 0,
        capture_method: str = "automatic",
    ) -> CheckoutSession:
        """``POST /v1/checkout/sessions``: our lines as ``price_data``, the shipping as a
        fixed ``shipping_rate_data``, the metadata on the session and its intent, a
        discount as a coupon made for this session alone (Stripe takes no negative line)."""
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": line.unit_amount,
                        "product_data": {"name": line.name},
                    },
                    "quantity": line.quantity,
                }
                for line in lines
            ],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata}
            | ({"capture_method": capture_method} if capture_method != "automatic" else {}),
            "expires_at": expires_at,
        }
        if shipping is not None:
            params["shipping_options"] = [
                {
                    "shipping_rate_data": {
                        "type": "fixed_amount",
                        "fixed_amount": {"amount": shipping.unit_amount, "currency": currency},
                        "display_name": shipping.name,
                    }
                }
            ]
        if customer_email:
            params["customer_email"] = customer_email
        if discount:
            coupon = self._session_coupon(discount, currency, idempotency_key)
            params["discounts"] = [{"coupon": coupon}]
        sessions = self.client.v1.checkout.sessions
        obj = self._call(
            lambda: sessions.create(params, {"idempotency_key": idempotency_key})  # type: ignore[arg-type]
        )
        return CheckoutSession.from_dict(obj.to_dict())

    def _session_coupon(self, amount: int, currency: str, session_key: str) -> str:
        """A one-off ``amount_off`` coupon (redeemable once), keyed from the session's key."""
        coupons = self.client.v1.coupons
        params: dict[str, Any] = {
            "amount_off": amount,
            "currency": currency,
            "duration": "once",
            "max_redemptions": 1,
            "name": "Order discount",
        }
        obj = self._call(
            lambda: coupons.create(params, {"idempotency_key": f"{session_key}-coupon"})  # type: ignore[arg-type]
        )
        return str(obj.id)

    def retrieve_checkout_session(self, session_id: str) -> CheckoutSession:
        """``GET /v1/checkout/sessions/<id>``."""
        sessions = self.client.v1.checkout.sessions
        return CheckoutSession.from_dict(
            self._call(lambda: sessions.retrieve(session_id)).to_dict()
        )

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> CheckoutSession:
        """``POST /v1/checkout/sessions/<id>/expire``."""
        sessions = self.client.v1.checkout.sessions
        obj = self._call(
            lambda: sessions.expire(session_id, {}, {"idempotency_key": idempotency_key})
        )
        return CheckoutSession.from_dict(obj.to_dict())

    # --- Wave 3: Stripe Tax ------------------------------------------------------------

    def calculate_tax(
        self,
        *,
        currency: str,
        lines: Sequence[TaxLine],
        shipping: int,
        address: dict[str, str],
    ) -> TaxCalculation:
        """``POST /v1/tax/calculations``: every line exclusive, the shipping cost, the
        shipping address as the customer's (a calculation changes nothing: no key)."""
        params: dict[str, Any] = {
            "currency": currency,
            "line_items": [
                {
                    "amount": line.amount,
                    "quantity": line.quantity,
                    "reference": line.reference,
                    "tax_behavior": "exclusive",
                }
                for line in lines
            ],
            "customer_details": {"address": address, "address_source": "shipping"},
            "shipping_cost": {"amount": shipping},
            "expand": ["line_items"],
        }
        calculations = self.client.v1.tax.calculations
        obj = self._call(lambda: calculations.create(params))  # type: ignore[arg-type]
        return TaxCalculation.from_dict(obj.to_dict())

    def record_tax_transaction(
        self, *, calculation_id: str, reference: str, idempotency_key: str
    ) -> str:
        """``POST /v1/tax/transactions/create_from_calculation``."""
        transactions = self.client.v1.tax.transactions
        params: dict[str, Any] = {"calculation": calculation_id, "reference": reference}
        obj = self._call(
            lambda: transactions.create_from_calculation(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        )
        return str(obj.id)

    def reverse_tax_transaction(
        self,
        *,
        transaction_id: str,
        reference: str,
        flat_amount: int | None,
        idempotency_key: str,
    ) -> str:
        """``POST /v1/tax/transactions/create_reversal``: ``mode=full``, or ``partial``
        with a negative ``flat_amount`` (Stripe spreads it over the lines pro rata)."""
        params: dict[str, Any] = {
            "original_transaction": transaction_id,
            "reference": reference,
            "mode": "full" if flat_amount is None else "partial",
        }
        if flat_amount is not None:
            params["flat_amount"] = -flat_amount
        transactions = self.client.v1.tax.transactions
        obj = self._call(
            lambda: transactions.create_reversal(
                params,  # type: ignore[arg-type]
                {"idempotency_key": idempotency_key},
            )
        )
        return str(obj.id)
