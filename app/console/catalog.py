"""Catalog: the products with their live stock, one product's page (edit price / active,
set on hand, adjust stock with a reason, the adjustment history), and the CSV/JSON upload.

Everyone signed in reads (a viewer or operator answering "do we have it?" needs the
numbers); changes are for admins (``roles.MANAGE``). Every change is the admin API's
service call: the upsert of ``PUT /api/admin/products/<sku>`` (price, active, set on
hand), the stock adjustment service, and the file import of ``flask products import``.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.console import roles
from app.console.auth import actor, requires
from app.console.blueprint import bp
from app.console.money import to_minor
from app.context import current_runtime
from app.errors import IdempotencyKeyReused, InvalidRequest, InvalidState, ServiceError
from app.schemas.common import load
from app.schemas.console_catalog import (
    AdjustmentFormSchema,
    CatalogFilterSchema,
    ImportFormSchema,
    OnHandFormSchema,
    ProductEditFormSchema,
)
from app.services import catalog as catalog_service
from app.services import catalog_admin, catalog_import, stock_adjustments

# The upload's body limit: the API's catalog sync limit (1,000 long products and more).
UPLOAD_MAX_BYTES = 8 * 1024 * 1024
# Rows per upload: the API's sync limit. The import runs inside the request (one
# transaction), on a gevent web worker whose other requests wait while it computes;
# bigger catalogs go through `flask products import` (no limit).
UPLOAD_MAX_ROWS = catalog_service.MAX_SYNC
IMPORT_ENDPOINT = "console.catalog_upload"
# What a change refused by its service says (the page shows it, then reloads).
_REFUSALS = (InvalidState, InvalidRequest, IdempotencyKeyReused)
_filters = CatalogFilterSchema()
_edit = ProductEditFormSchema()
_on_hand = OnHandFormSchema()
_adjustment = AdjustmentFormSchema()
_import = ImportFormSchema()


def _upload_limit() -> None:
    """The upload may be larger than the app's body limit (64 KB): raised for it alone."""
    if request.endpoint == IMPORT_ENDPOINT and request.method == "POST":
        request.max_content_length = UPLOAD_MAX_BYTES


# First of the console's hooks: the CSRF check (auth.py's, registered before) reads the
# form, so the limit must be raised before it. A console hook, not an app-wide one: the
# API's requests pay nothing for it.
bp.before_request_funcs.setdefault(None, []).insert(0, _upload_limit)


@bp.get("/catalog")
@requires(roles.READ)
def catalog() -> str:
    """Products by SKU with on hand, held and available; search by SKU or name."""
    data = load(_filters, request.args.to_dict())
    page = catalog_admin.catalog_page(current_runtime().redis, q=data["q"], cursor=data["cursor"])
    typed = {"q": data["q"]} if data["q"] else {}
    return render_template(
        "console/catalog.html", page=page, typed=typed, paged=bool(data["cursor"])
    )


@bp.get("/catalog/products/<sku>")
@requires(roles.READ)
def product(sku: str) -> str:
    """One product: its numbers, the admin's forms, the stock adjustment history."""
    detail = catalog_admin.product_detail(current_runtime().redis, sku)
    return render_template("console/product.html", p=detail, reasons=stock_adjustments.reasons())


def _back(sku: str) -> BaseResponse:
    return redirect(url_for("console.product", sku=sku), code=303)


@bp.post("/catalog/products/<sku>/edit")
@requires(roles.MANAGE)
def product_edit(sku: str) -> BaseResponse:
    """Price and Active, through the admin upsert (stock left as it is)."""
    runtime = current_runtime()
    currency = runtime.config.store_currency
    try:
        data = load(_edit, request.form.to_dict())
        catalog_admin.edit_product(
            runtime.redis,
            sku,
            price_amount=_price(data["price"], currency),
            active=data["active"],
            store_currency=currency,
            actor=actor(),
        )
    except _REFUSALS as exc:
        flash(f"Not saved: {_detail(exc)}", "error")
        return _back(sku)
    flash(f"{sku} saved: price and {'active' if data['active'] else 'inactive'}.", "ok")
    return _back(sku)


@bp.post("/catalog/products/<sku>/on-hand")
@requires(roles.MANAGE)
def product_on_hand(sku: str) -> BaseResponse:
    """Set on hand: the shelf count, through the admin upsert."""
    runtime = current_runtime()
    try:
        data = load(_on_hand, request.form.to_dict())
        catalog_admin.set_on_hand(
            runtime.redis,
            sku,
            data["stock_on_hand"],
            store_currency=runtime.config.store_currency,
            actor=actor(),
        )
    except _REFUSALS as exc:
        flash(f"On hand not set: {_detail(exc)}", "error")
        return _back(sku)
    flash(f"{sku}: {data['stock_on_hand']} on the shelf.", "ok")
    return _back(sku)


@bp.post("/catalog/products/<sku>/adjustments")
@requires(roles.MANAGE)
def product_adjustment(sku: str) -> BaseResponse:
    """Add or remove units with a reason (once per the dialog's Idempotency-Key)."""
    try:
        data = load(_adjustment, request.form.to_dict())
        delta = data["units"] if data["direction"] == "add" else -data["units"]
        result = stock_adjustments.adjust_stock(
            current_runtime().redis,
            stock_adjustments.AdjustmentRequest(sku, delta, data["reason"], data["note"]),
            actor=actor(),
            idempotency_key=data["idempotency_key"],
        )
    except _REFUSALS as exc:
        flash(f"Stock not adjusted: {_detail(exc)}", "error")
        return _back(sku)
    done = result.adjustment
    flash(
        f"Stock of {sku} {done['delta']:+d} ({done['reason']}): {done['onHandAfter']} on hand now.",
        "ok",
    )
    return _back(sku)


@bp.get("/catalog/import")
@requires(roles.MANAGE)
def catalog_upload_page() -> str:
    """The upload form."""
    return render_template("console/catalog_import.html", result=None)


@bp.post("/catalog/import")
@requires(roles.MANAGE)
def catalog_upload() -> Any:
    """Import a CSV or JSON file: every row checked, then one write (or nothing).

    From ``console.js`` (the page with its progress bar) the answer is the result
    fragment; from a plain form post, the whole page with it.
    """
    result = _run_import()
    status = 200 if result["ok"] else 400
    if "HX-Request" in request.headers:
        return render_template("console/_import_result.html", result=result), status
    return render_template("console/catalog_import.html", result=result), status


def _run_import() -> dict[str, Any]:
    """The import's outcome for the result template: ok, summary or errors."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return {"ok": False, "errors": ["Choose a CSV or JSON file to upload."]}
    runtime = current_runtime()
    fmt = catalog_import.file_format(upload.filename)
    checked: list[int] = []
    try:
        options = load(_import, request.form.to_dict())
        summary = catalog_import.import_file(
            runtime.redis,
            upload.read(),
            fmt,
            store_currency=runtime.config.store_currency,
            set_stock=options["set_stock"],
            checked=checked.append,
            max_rows=UPLOAD_MAX_ROWS,
        )
    except catalog_import.ImportRefused as exc:
        return {"ok": False, "filename": upload.filename, "errors": exc.errors}
    except ServiceError as exc:  # the write refused (stock below what is held): nothing written
        return {"ok": False, "filename": upload.filename, "errors": [_detail(exc)]}
    return {"ok": True, "filename": upload.filename, "rows": checked[0], "summary": summary}


def _price(text: str, currency: str) -> int:
    """A price typed in major units as minor units (0 is a price: a free sample)."""
    if text.strip("0.") == "":
        return 0
    return to_minor(text, currency, field="price")


def _detail(exc: ServiceError) -> str:
    """The service's message with the fields it names (a form's refusal)."""
    fields = exc.extra.get("fields") or {}
    named = "; ".join(f"{name}: {' '.join(texts)}" for name, texts in fields.items())
    return f"{exc.message} ({named})" if named else exc.message
