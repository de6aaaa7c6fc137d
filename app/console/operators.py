"""Operators (admins only): the accounts, and creating, changing role, disabling,
enabling and setting the password of one, through the CLI's service functions.

Every change names the admin who made it (``by``): the service logs it with
``actor="operator:<email>"`` and refuses an admin's disable or demotion of their own
account. A refused change answers the page again with the service's status (400, 404,
409) and its message; a password is never put back into a page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.console import roles
from app.console.auth import current_operator, requires
from app.console.blueprint import bp
from app.context import current_runtime
from app.errors import InvalidRequest, InvalidState, NotFound, ServiceError
from app.schemas.common import load
from app.schemas.console import (
    OperatorCreateFormSchema,
    OperatorFormSchema,
    OperatorPasswordFormSchema,
    OperatorRoleFormSchema,
)
from app.services import operators as accounts
from models import Operator
from models.operator import OPERATOR_ROLES

_REFUSALS = (InvalidRequest, InvalidState, NotFound)
_create = OperatorCreateFormSchema()
_role = OperatorRoleFormSchema()
_which = OperatorFormSchema()
_password = OperatorPasswordFormSchema()


@bp.get("/operators")
@requires(roles.MANAGE)
def operators() -> str:
    """Every account (e-mail, role, disabled, last sign-in) and the create form."""
    return _page()


@bp.post("/operators")
@requires(roles.MANAGE)
def create_operator() -> Any:
    """Create an account; the form comes back (without the password) when refused."""
    typed = {"email": request.form.get("email", ""), "role": request.form.get("role", "")}
    try:
        data = load(_create, request.form.to_dict())
        made = accounts.create_operator(
            data["email"], data["role"], data["password"], by=current_operator()
        )
    except _REFUSALS as exc:
        return _page(error=exc, typed=typed), exc.status
    return _done(f"Created {made.email} ({made.role}).")


@bp.post("/operators/role")
@requires(roles.MANAGE)
def change_role() -> Any:
    """Give an account another role (never your own: another admin must)."""
    return _change(
        _role, lambda d: accounts.change_role(d["email"], d["role"], by=current_operator()),
        lambda o: f"{o.email} is now {o.role}.",
    )  # fmt: skip


@bp.post("/operators/disable")
@requires(roles.MANAGE)
def disable_operator() -> Any:
    """Disable an account; its sessions end at once."""
    redis = current_runtime().redis
    return _change(
        _which, lambda d: accounts.disable_operator(redis, d["email"], by=current_operator()),
        lambda o: f"{o.email} is disabled; its sessions are ended.",
    )  # fmt: skip


@bp.post("/operators/enable")
@requires(roles.MANAGE)
def enable_operator() -> Any:
    """Enable a disabled account (it signs in again)."""
    return _change(
        _which, lambda d: accounts.enable_operator(d["email"], by=current_operator()),
        lambda o: f"{o.email} is enabled.",
    )  # fmt: skip


@bp.post("/operators/password")
@requires(roles.MANAGE)
def set_password() -> Any:
    """Set an account's password; its sessions end at once."""
    redis = current_runtime().redis
    return _change(
        _password,
        lambda d: accounts.set_password(redis, d["email"], d["password"], by=current_operator()),
        lambda o: f"Password set for {o.email}; its sessions are ended.",
    )


def _change(
    schema: Any, call: Callable[[dict[str, Any]], Operator], said: Callable[[Operator], str]
) -> Any:
    """Validate the form, make the one service call, and say what happened."""
    try:
        changed = call(load(schema, request.form.to_dict()))
    except _REFUSALS as exc:
        return _page(error=exc), exc.status
    return _done(said(changed))


def _done(message: str) -> BaseResponse:
    flash(message, "ok")
    return redirect(url_for("console.operators"), code=303)


def _page(error: ServiceError | None = None, typed: dict[str, str] | None = None) -> str:
    return render_template(
        "console/operators.html",
        accounts=accounts.list_operators(),
        roles=OPERATOR_ROLES,
        me=current_operator(),
        error=error,
        typed=typed or {},
    )
