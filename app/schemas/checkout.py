"""Schemas of the checkout endpoints: quote and submit (payment-intent)."""

from __future__ import annotations

from typing import Any

from marshmallow import (
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from app.schemas.common import BaseSchema, Email, StrictBoolean, StrictInteger, Text
from app.schemas.countries import ISO_3166_ALPHA2
from app.schemas.promotions import promotion_code_field

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_LINES = 100
MAX_QUANTITY = 100
IDEMPOTENCY_KEY_LENGTH = (8, 255)
CONFIRMATION_TOKEN_PATTERN = r"^ctoken_[A-Za-z0-9_]{1,250}$"
OPTION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
# The submit's ``ui``: the Payment Element on the shop's page, or Stripe's hosted page.
ELEMENTS, HOSTED = "elements", "hosted"
CHECKOUT_UIS = (ELEMENTS, HOSTED)
MAX_URL = 2000


def _confirmation_token_field(**kwargs: Any) -> fields.String:
    """A ConfirmationToken id from ``stripe.createConfirmationToken`` (``ctoken_…``)."""
    return fields.String(
        data_key="confirmationTokenId",
        validate=validate.Regexp(CONFIRMATION_TOKEN_PATTERN, error="Must be a ctoken_… id."),
        **kwargs,
    )


class Country(Text):
    """An ISO 3166-1 alpha-2 code of ASCII letters, normalised to upper case."""

    default_error_messages = {"country": "Must be an ISO 3166-1 alpha-2 country code."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        code = super()._deserialize(value, attr, data, **kwargs)
        # ASCII first: Unicode case mapping upper-cases "\u0131t" (dotless i) to "IT".
        if not code.isascii() or code.upper() not in ISO_3166_ALPHA2:
            raise self.make_error("country")
        return code.upper()


class LineSchema(BaseSchema):
    """One cart line: which product and how many."""

    sku = Text(required=True, validate=validate.Regexp(SKU_PATTERN, error="Invalid SKU format."))
    quantity = StrictInteger(required=True, validate=validate.Range(min=1, max=MAX_QUANTITY))


POSTAL_CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9 -]{0,15}$", error="Invalid postal code.")


class AddressSchema(BaseSchema):
    """A postal address (shipping or billing)."""

    name = Text(required=True, validate=validate.Length(max=200))
    line1 = Text(required=True, validate=validate.Length(max=200))
    line2 = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    city = Text(required=True, validate=validate.Length(max=100))
    state = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=100))
    postal_code = Text(required=True, data_key="postalCode", validate=POSTAL_CODE)
    country = Country(required=True)

    @post_load
    def _blank_optionals(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        for key in ("line2", "state"):
            value = data.get(key)
            data[key] = value.strip() or None if isinstance(value, str) else None
        return data


def _optional_text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=max_length), **kwargs
    )


class QuoteAddressSchema(BaseSchema):
    """The submit's address with every field but ``country`` optional: Express Checkout
    and a half-filled form send partial addresses, and a shop passes the same object to
    the quote and the submit. A blank field counts as absent; a given one is checked as
    at submit."""

    name = _optional_text(200)
    line1 = _optional_text(200)
    line2 = _optional_text(200)
    city = _optional_text(100)
    state = _optional_text(100)
    postal_code = fields.String(
        load_default=None, allow_none=True, data_key="postalCode", validate=POSTAL_CODE
    )
    country = Country(required=True)

    @pre_load
    def _blanks_are_absent(self, data: Any, **_: Any) -> Any:
        if not isinstance(data, dict):
            return data
        trimmed = {k: v.strip() if isinstance(v, str) else v for k, v in data.items()}
        return {k: None if v == "" else v for k, v in trimmed.items()}


def _shipping_option_field(**kwargs: Any) -> fields.String:
    """The id of one of the destination's ``shippingOptions`` (default: the cheapest)."""
    return fields.String(
        data_key="shippingOptionId",
        validate=validate.Regexp(OPTION_ID_PATTERN, error="Invalid shipping option id."),
        **kwargs,
    )


def _lines_field() -> fields.List:
    return fields.List(
        fields.Nested(LineSchema),
        required=True,
        validate=validate.Length(min=1, max=MAX_LINES, error="A cart has 1 to 100 lines."),
    )


def refuse_duplicate_skus(lines: list[dict[str, Any]], field: str = "items") -> None:
    """One line per SKU (errors on ``<field>.N.sku``): lines are keyed by SKU downstream."""
    seen: set[str] = set()
    errors: dict[int, dict[str, list[str]]] = {}
    for index, line in enumerate(lines):
        if line["sku"] in seen:
            errors[index] = {"sku": ["Duplicate SKU: put the whole quantity on one line."]}
        seen.add(line["sku"])
    if errors:
        raise ValidationError({field: errors})


class QuoteSchema(BaseSchema):
    """``POST /api/checkout/quote``."""

    items = _lines_field()
    shipping_address = fields.Nested(
        QuoteAddressSchema, data_key="shippingAddress", load_default=None, allow_none=True
    )
    shipping_option_id = _shipping_option_field(load_default=None)
    promotion_code = promotion_code_field(load_default=None)

    @validates_schema
    def _unique_skus(self, data: dict[str, Any], **_: Any) -> None:
        refuse_duplicate_skus(data.get("items") or [])


class SubmitSchema(BaseSchema):
    """``POST /api/checkout/payment-intent`` (the idempotency key is read separately)."""

    items = _lines_field()
    email = Email(required=True, validate=validate.Length(max=254))
    shipping_address = fields.Nested(AddressSchema, required=True, data_key="shippingAddress")
    billing_address = fields.Nested(
        AddressSchema, data_key="billingAddress", load_default=None, allow_none=True
    )
    # The body form of the Idempotency-Key header: read and checked by
    # app.api.requests.idempotency_key; known here so that it is not refused, and
    # load-only so the request fingerprint (the dump) stays the same with or without it.
    idempotency_key = fields.String(
        load_only=True,
        data_key="idempotencyKey",
        load_default=None,
        validate=validate.Length(*IDEMPOTENCY_KEY_LENGTH),
    )
    # Server-side confirmation (wave 2): absent, the client-secret flow is unchanged (and
    # absent from the stored body, so its fingerprint is what it always was).
    confirmation_token_id = _confirmation_token_field()
    # Wave 3, returning buyers (a JWT only): save the payment method on the buyer's Stripe
    # Customer when the payment succeeds. Absent, the stored body is what it always was.
    save_payment_method = StrictBoolean(
        data_key="savePaymentMethod",
        metadata={"description": "Save the card for next time (needs the buyer's JWT)."},
    )
    # Absent (the cheapest option) it stays absent from the stored body, as above.
    shipping_option_id = _shipping_option_field()
    promotion_code = promotion_code_field()
    # Wave 3: ``hosted`` pays on Stripe's Checkout page, which sends the buyer back to
    # ``successUrl`` / ``cancelUrl`` (their origins are checked against the shop's by the
    # endpoint). Absent: the Payment Element, and the stored body is what it always was.
    ui = fields.String(validate=validate.OneOf(CHECKOUT_UIS))
    success_url = fields.String(data_key="successUrl", validate=validate.Length(max=MAX_URL))
    cancel_url = fields.String(data_key="cancelUrl", validate=validate.Length(max=MAX_URL))

    @validates_schema
    def _unique_skus(self, data: dict[str, Any], **_: Any) -> None:
        refuse_duplicate_skus(data.get("items") or [])

    @validates_schema
    def _hosted_urls(self, data: dict[str, Any], **_: Any) -> None:
        hosted = data.get("ui") == HOSTED
        errors = {}
        for name, key in (("success_url", "successUrl"), ("cancel_url", "cancelUrl")):
            if hosted and not data.get(name):
                errors[key] = ['Required with "ui": "hosted".']
            elif not hosted and name in data:
                errors[key] = ['Only with "ui": "hosted".']
        if hosted and data.get("confirmation_token_id"):
            errors["confirmationTokenId"] = ['Not with "ui": "hosted" (Stripe\'s page confirms).']
        if errors:
            raise ValidationError(errors)


class ConfirmSchema(BaseSchema):
    """``POST /api/checkout/<orderId>/confirm``: a new attempt with a new token."""

    confirmation_token_id = _confirmation_token_field(required=True)


class ConfirmResponseSchema(BaseSchema):
    """202 body of a confirm."""

    order_id = fields.String(data_key="orderId")
    state = fields.String()
    status_url = fields.String(data_key="statusUrl")


IDEMPOTENCY_KEY_PATTERN = validate.Regexp(
    r"^[\x21-\x7e]+$", error="Use printable ASCII without spaces."
)


class IdempotencyKeySchema(BaseSchema):
    """The key as it arrives (header or body), checked like a field."""

    idempotency_key = fields.String(
        required=True,
        data_key="idempotencyKey",
        validate=[validate.Length(*IDEMPOTENCY_KEY_LENGTH), IDEMPOTENCY_KEY_PATTERN],
    )


def valid_idempotency_key(value: Any) -> str | None:
    """``value`` when :class:`IdempotencyKeySchema` would load it unchanged, else None.

    The same checks as the schema's (a string, its length, the same compiled pattern),
    without a schema load per submit; None sends the caller to the schema, which words
    the error.
    """
    low, high = IDEMPOTENCY_KEY_LENGTH
    fits = isinstance(value, str) and low <= len(value) <= high
    return value if fits and IDEMPOTENCY_KEY_PATTERN.regex.match(value) else None


class SubmitResponseSchema(BaseSchema):
    """202 body of the submit."""

    order_id = fields.String(data_key="orderId")
    order_number = fields.String(data_key="orderNumber")
    # Null on a guest's replay: only the first answer carries the token (docs/api.md).
    checkout_token = fields.String(data_key="checkoutToken", allow_none=True)
    state = fields.String()
    status_url = fields.String(data_key="statusUrl")
    hold_expires_at = fields.String(data_key="holdExpiresAt")


class LookupQuerySchema(BaseSchema):
    """``GET /api/checkout/lookup``: the query Stripe appends to a ``return_url``, or the
    Checkout Session id a hosted page's ``successUrl`` carries."""

    session_id = fields.String(
        validate=[
            validate.Length(max=255),
            validate.Regexp(r"^cs_[A-Za-z0-9_]+$", error="Not a Checkout Session id."),
        ],
    )
    payment_intent = fields.String(
        validate=[
            validate.Length(max=255),
            validate.Regexp(r"^pi_[A-Za-z0-9_]+$", error="Not a PaymentIntent id."),
        ],
    )
    payment_intent_client_secret = fields.String(
        validate=[
            validate.Length(max=255),
            validate.Regexp(
                r"^pi_[A-Za-z0-9_]+_secret_[A-Za-z0-9]+$", error="Not a PaymentIntent secret."
            ),
        ],
    )
    # Stripe adds it too (succeeded, processing, failed); the order's state is the truth.
    redirect_status = fields.String(load_default=None, validate=validate.Length(max=32))

    @validates_schema
    def _one_way(self, data: dict[str, Any], **_: Any) -> None:
        if "session_id" in data:
            return
        missing = ["Missing data for required field."]
        errors = {
            name: missing
            for name in ("payment_intent", "payment_intent_client_secret")
            if name not in data
        }
        if errors:
            raise ValidationError(errors)


class LookupResponseSchema(BaseSchema):
    """``GET /api/checkout/lookup``: the order behind a PaymentIntent, and its token."""

    order_id = fields.String(data_key="orderId")
    order_number = fields.String(data_key="orderNumber")
    state = fields.String()
    checkout_token = fields.String(data_key="checkoutToken")
