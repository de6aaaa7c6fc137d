"""The console's Catalog forms and query string (``app/console/catalog.py``).

As the other console forms (:class:`app.schemas.console.FormSchema`): every field comes
as text, an empty field is absent, the CSRF token is checked before and set aside.
"""

from __future__ import annotations

from marshmallow import fields, validate

from app.schemas.checkout import IDEMPOTENCY_KEY_LENGTH, SKU_PATTERN
from app.schemas.common import Text
from app.schemas.console import AMOUNT_PATTERN, Checkbox, FormSchema
from app.schemas.products import MAX_UNITS
from models.stock_adjustment import ADJUSTMENT_REASONS


class CatalogFilterSchema(FormSchema):
    """``GET /admin/catalog``: search text (SKU or name) and the keyset cursor (a SKU)."""

    q = Text(load_default=None, validate=validate.Length(max=200))
    cursor = fields.String(load_default=None, validate=validate.Regexp(SKU_PATTERN))


class ProductEditFormSchema(FormSchema):
    """Price (the currency's major units, ``0`` allowed) and Active."""

    price = fields.String(
        required=True,
        validate=validate.Regexp(AMOUNT_PATTERN, error="Enter a price like 12.50."),
    )
    active = Checkbox(load_default=False)


class OnHandFormSchema(FormSchema):
    """Set on hand: the units on the shelf (sold, unshipped ones included)."""

    stock_on_hand = fields.Integer(
        required=True, strict=False, validate=validate.Range(min=0, max=MAX_UNITS)
    )


class AdjustmentFormSchema(FormSchema):
    """Adjust stock: add or remove a number of units, with a reason (and a note)."""

    idempotency_key = fields.String(
        required=True,
        validate=[
            validate.Length(*IDEMPOTENCY_KEY_LENGTH),
            validate.Regexp(r"^[\x21-\x7e]+$", error="Use printable ASCII without spaces."),
        ],
    )
    direction = fields.String(required=True, validate=validate.OneOf(("add", "remove")))
    units = fields.Integer(required=True, strict=False, validate=validate.Range(1, MAX_UNITS))
    reason = fields.String(required=True, validate=validate.OneOf(ADJUSTMENT_REASONS))
    note = Text(load_default="", validate=validate.Length(max=200))


class ImportFormSchema(FormSchema):
    """The upload's options (the file itself comes as ``request.files["file"]``)."""

    set_stock = Checkbox(load_default=False)
