"""The console's forms and query strings (``app/console``): filters and action forms.

HTML forms send every field as text and empty inputs as ``""``: an empty field is taken
as absent. The CSRF token is checked before and is not part of these.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, pre_load, validate

from app.schemas.checkout import IDEMPOTENCY_KEY_LENGTH, SKU_PATTERN
from app.schemas.common import BaseSchema, Text
from models.operator import OPERATOR_ROLES
from models.order import ORDER_STATES
from models.shop_webhook import SHOP_DELIVERY_STATUSES
from models.webhook_event import WEBHOOK_STATUSES

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


class InboxFilterSchema(FormSchema):
    """``GET /admin/webhooks``: the Stripe inbox's status filter and cursor."""

    status = fields.String(load_default=None, validate=validate.OneOf(WEBHOOK_STATUSES))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


class DeliveryFilterSchema(FormSchema):
    """``GET /admin/webhooks/deliveries``: the shop deliveries' status filter and cursor."""

    status = fields.String(load_default=None, validate=validate.OneOf(SHOP_DELIVERY_STATUSES))
    cursor = fields.String(load_default=None, validate=validate.Length(max=512))


class ReplayFormSchema(FormSchema):
    """A "Replay" button: nothing to choose (a replay is idempotent by the inbox, I3)."""


class ResendFormSchema(FormSchema):
    """A "Resend" button: its own Idempotency-Key (a double click resends once)."""

    idempotency_key = _idempotency_key()


def _email() -> fields.String:
    return fields.String(required=True, validate=validate.Length(max=254))


def _password() -> fields.String:
    # The length rule is the service's (operators.MIN/MAX_PASSWORD_LENGTH), said once.
    return fields.String(required=True)


class OperatorCreateFormSchema(FormSchema):
    """Operators, "Create operator": e-mail, role, password."""

    email = _email()
    role = fields.String(required=True, validate=validate.OneOf(OPERATOR_ROLES))
    password = _password()


class OperatorRoleFormSchema(FormSchema):
    """Operators, "Change role"."""

    email = _email()
    role = fields.String(required=True, validate=validate.OneOf(OPERATOR_ROLES))


class OperatorFormSchema(FormSchema):
    """Operators, "Disable" / "Enable": which account."""

    email = _email()


class OperatorPasswordFormSchema(FormSchema):
    """Operators, "Set password"."""

    email = _email()
    password = _password()
