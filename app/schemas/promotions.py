"""Schemas of promotion codes: the code field (quote, submit, path), the admin upsert
and the admin's promotion object."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from app.schemas.common import BaseSchema, StrictBoolean, StrictInteger, Text

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{1,39}$"
CODE_ERROR = "2 to 40 letters, digits, '-' or '_'."
MAX_AMOUNT = 99_999_999


class PromotionCode(Text):
    """A promotion code: trimmed, case-insensitive (loaded in upper case)."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        return super()._deserialize(value, attr, data, **kwargs).upper()


def promotion_code_field(**kwargs: Any) -> PromotionCode:
    """``promotionCode`` of the quote and the submit."""
    return PromotionCode(
        data_key="promotionCode",
        validate=validate.Regexp(CODE_PATTERN, error=CODE_ERROR),
        **kwargs,
    )


def _amount(**kwargs: Any) -> StrictInteger:
    return StrictInteger(validate=validate.Range(min=1, max=MAX_AMOUNT), **kwargs)


class AmountOffSchema(BaseSchema):
    """An amount off in minor units, in the store's currency."""

    amount = _amount(required=True)
    currency = Text(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z]{3}$", error="Must be an ISO 4217 code."),
    )


class PromotionUpsertSchema(BaseSchema):
    """``PUT /api/admin/promotions/<code>``: exactly one of ``percentOff`` and
    ``amountOff``; times ISO 8601 with a zone; limits null or absent for none."""

    percent_off = StrictInteger(
        data_key="percentOff", allow_none=True, validate=validate.Range(min=1, max=100)
    )
    amount_off = fields.Nested(AmountOffSchema, data_key="amountOff", allow_none=True)
    min_subtotal = _amount(data_key="minSubtotal", allow_none=True)
    starts_at = fields.AwareDateTime(data_key="startsAt", allow_none=True)
    ends_at = fields.AwareDateTime(data_key="endsAt", allow_none=True)
    max_redemptions = StrictInteger(
        data_key="maxRedemptions", allow_none=True, validate=validate.Range(min=1, max=10**9)
    )
    per_buyer_limit = StrictInteger(
        data_key="perBuyerLimit", allow_none=True, validate=validate.Range(min=1, max=10**6)
    )
    active = StrictBoolean(required=True)

    @validates_schema
    def _one_kind_and_a_window(self, data: dict[str, Any], **_: Any) -> None:
        percent, amount = data.get("percent_off"), data.get("amount_off")
        if (percent is None) == (amount is None):
            message = "Give exactly one of percentOff and amountOff."
            raise ValidationError({"percentOff": [message], "amountOff": [message]})
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts is not None and ends is not None and ends <= starts:
            raise ValidationError({"endsAt": ["Must be after startsAt."]})


class PromotionSchema(BaseSchema):
    """A promotion as the admin sees it, with its redemptions used and left."""

    code = fields.String()
    description = fields.String()
    percent_off = fields.Integer(data_key="percentOff", allow_none=True)
    amount_off = fields.Nested(AmountOffSchema, data_key="amountOff", allow_none=True)
    min_subtotal = fields.Integer(data_key="minSubtotal", allow_none=True)
    starts_at = fields.String(data_key="startsAt", allow_none=True)
    ends_at = fields.String(data_key="endsAt", allow_none=True)
    max_redemptions = fields.Integer(data_key="maxRedemptions", allow_none=True)
    per_buyer_limit = fields.Integer(data_key="perBuyerLimit", allow_none=True)
    active = fields.Boolean()
    used = fields.Integer(
        metadata={
            "description": "Redemptions held: orders not FAILED or CANCELED, and "
            "submissions admitted but not written yet."
        }
    )
    left = fields.Integer(allow_none=True, metadata={"description": "null: unlimited."})


class PromotionSummarySchema(BaseSchema):
    """``promotion: {code, description}`` of a quote and an order."""

    code = fields.String()
    description = fields.String()
