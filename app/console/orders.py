"""Orders: the list (search, filters, keyset pages, CSV) and one order's page."""

from __future__ import annotations

from flask import render_template, request

from app.console import roles
from app.console.auth import requires
from app.console.blueprint import bp
from app.services import admin

PAGE_SIZE = 50


@bp.get("/orders")
@requires(roles.READ)
def orders() -> str:
    """A page of orders, newest first."""
    page = admin.list_orders(state=None, limit=PAGE_SIZE, cursor=request.args.get("cursor"))
    return render_template("console/orders.html", page=page)
