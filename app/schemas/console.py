"""The console's forms and query strings (``app/console``): filters and action forms.

HTML forms send every field as text and empty inputs as ``""``: an empty field is taken
as absent. The CSRF token is checked before and is not part of these.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, pre_load, validate

from app.schemas.checkout import IDEMPOTENCY_KEY_LENGTH, SKU_PATTERN
from app.schemas.common import BaseSchema, Text
from models.order import ORDER_STATES

CSRF_FIELD = "csrf_token"
# An amount as typed, in the currency's major units: "12", "12.5", "12.50".
AMOUNT_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,3})?$"
_CHECKBOX = {"on": True, "true": True, "1": True, "yes": True}


class FormSchema(BaseSchema):
    """A console form: empty fields dropped, the CSRF token set aside."""

    @pre_load
    def _drop_empty(self, data: Any, **_: Any) -> Any:
        if not hasattr(data, "items"):
            return data
        return {k: v for k, v in data.items() if k != CSRF_FIELD and v not in ("", None)}


def _idempotency_key() -> fields.String:
    return fields.String(
        required=True,
        validate=[
            validate.Length(*IDEMPOTENCY_KEY_LENGTH),
            validate.Regexp(r"^[\x21-\x7e]+$", error="Use printable ASCII without spaces."),
        ],
    )


def _amount(required: bool = False) -> fields.String:
    return fields.String(
        required=required,
        load_default=None,
        validate=validate.Regexp(AMOUNT_PATTERN, error="Enter an amount like 12.50."),
    )


class Checkbox(fields.Field):
    """An HTML checkbox: present ("on") is True, absent is False."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, str) or value.lower() not in _CHECKBOX:
            raise self.make_error("invalid")
        return True

    default_error_messages = {"invalid": "Not a checkbox value."}


class OrderFilterSchema(FormSchema):
    """``GET /admin/orders`` (and its CSV): search text, state, dates, SKU, cursor."""

    q = fields.String(load_default=None, validate=validate.Length(max=254))
    state = fields.String(load_default=None, validate=validate.OneOf(ORDER_STATES))
    created_from = fields.Date(load_default=None, data_key="from")
    created_to = fields.Date(load_default=None, data_key="to")
    sku = fields.String(load_default=None, validate=validate.Regexp(SKU_PATTERN))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


class RefundFormSchema(FormSchema):
    """The Refund dialog: amount in major units (default: all that is refundable)."""

    idempotency_key = _idempotency_key()
    amount = _amount()
    restock = Checkbox(load_default=False)


class CaptureFormSchema(FormSchema):
    """The Capture dialog: amount in major units (default: all that is authorised)."""

    idempotency_key = _idempotency_key()
    amount = _amount()


class CancelFormSchema(FormSchema):
    """The Cancel order dialog: nothing to choose."""

    idempotency_key = _idempotency_key()


class FulfilmentFormSchema(FormSchema):
    """Start fulfilment / Mark fulfilled: carrier and tracking number optional."""

    idempotency_key = _idempotency_key()
    action = fields.String(required=True, validate=validate.OneOf(("start", "complete")))
    carrier = Text(load_default=None, validate=validate.Length(max=100))
    tracking_number = Text(load_default=None, validate=validate.Length(max=100))
