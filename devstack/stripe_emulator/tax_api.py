"""The ``/v1/tax`` endpoints of Stripe Tax: calculations and transactions.

Thin, as in :mod:`.api`: look up, call :class:`~.tax.Tax`, render JSON.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from .forms import reject_unknown
from .pipeline import Call, api

bp = Blueprint("stripe_tax", __name__, url_prefix="/v1/tax")

LIST_PARAMS = {"limit", "starting_after", "ending_before", "expand"}


def _render(call: Call, obj: dict[str, Any]) -> str:
    return call.emulator.store.render(obj, call.expand)


def _lines(call: Call, obj: dict[str, Any]) -> str:
    """A one-page list of an object's line items (``limit`` and cursors are accepted)."""
    reject_unknown(call.params, LIST_PARAMS)
    return call.emulator.store.render(obj["line_items"])


@bp.post("/calculations")
@api()
def create_calculation(call: Call) -> str:
    """Calculate the tax of a cart for a destination."""
    return _render(call, call.emulator.tax.calculate(call.params))


@bp.get("/calculations/<calc_id>/line_items")
@api()
def calculation_line_items(call: Call, calc_id: str) -> str:
    """The calculation's line items, each with its tax."""
    return _lines(call, call.emulator.tax.calculation(calc_id, param="calculation"))


@bp.post("/transactions/create_from_calculation")
@api()
def create_transaction(call: Call) -> str:
    """Record a tax transaction from a calculation (its reference unique)."""
    return _render(call, call.emulator.tax.create_from_calculation(call.params))


@bp.post("/transactions/create_reversal")
@api()
def create_reversal(call: Call) -> str:
    """Reverse a transaction in full or in part."""
    return _render(call, call.emulator.tax.create_reversal(call.params))


@bp.get("/transactions/<txn_id>")
@api()
def retrieve_transaction(call: Call, txn_id: str) -> str:
    """Retrieve a transaction or reversal."""
    reject_unknown(call.params, {"expand"})
    return _render(call, call.emulator.tax.transaction(txn_id))


@bp.get("/transactions/<txn_id>/line_items")
@api()
def transaction_line_items(call: Call, txn_id: str) -> str:
    """The transaction's line items."""
    return _lines(call, call.emulator.tax.transaction(txn_id))
