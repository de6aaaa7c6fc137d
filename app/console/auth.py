"""Sign-in, sign-out, the signed-in operator, CSRF and the role check of every view.

Order of the checks on each console request: CSRF on every state-changing method
(Flask-WTF's ``csrf.protect``: the hidden ``csrf_token`` field or the ``X-CSRFToken``
header; 403 without), then the session's operator (a page sends a stranger to the
sign-in page; anything else is 401), then the view's permission (403 above the role).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFProtect, generate_csrf
from werkzeug.wrappers import Response

from app.console import roles
from app.console.blueprint import bp
from app.console.session import PASSIVE_FLAG, ConsoleSession, RedisSessionInterface
from app.context import current_runtime
from app.errors import AccountLocked, Forbidden, SignInRefused, Unauthorized
from app.services import operators
from app.services.operator_sessions import OPERATOR_ID
from models import Operator

F = TypeVar("F", bound=Callable[..., Any])
# Endpoints a stranger may reach (everything else needs a session's operator).
PUBLIC_ENDPOINTS = frozenset({"console.login", "console.static"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ConsoleCsrf(CSRFProtect):
    """Flask-WTF's CSRF check, run by the console's own hook only.

    ``CSRFProtect.init_app`` adds a hook to every request of the app and a context
    processor to every template; the JSON API takes no cookies and its hot paths count
    their hooks, so this sets the configuration and the ``csrf_token()`` global only.
    """

    def init_app(self, app: Flask) -> None:
        """Configure Flask-WTF on ``app`` without app-wide hooks."""
        app.extensions["csrf"] = self
        app.config.setdefault("WTF_CSRF_ENABLED", True)
        app.config["WTF_CSRF_METHODS"] = set(STATE_CHANGING)
        app.config.setdefault("WTF_CSRF_FIELD_NAME", "csrf_token")
        app.config.setdefault("WTF_CSRF_HEADERS", ["X-CSRFToken"])
        app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
        app.config.setdefault("WTF_CSRF_SSL_STRICT", True)
        app.jinja_env.globals["csrf_token"] = generate_csrf


csrf = ConsoleCsrf()
EPOCH = "epoch"
# Where a signed-in operator lands: the dashboard.
HOME_ENDPOINT = "console.dashboard"


def current_operator() -> Operator:
    """The signed-in operator of this request (the hooks made sure there is one)."""
    operator: Operator = g.operator
    return operator


def actor() -> str:
    """The audit actor of this request's actions: ``operator:<email>``."""
    return f"operator:{current_operator().email}"


def can(permission: str) -> bool:
    """Whether the signed-in operator has ``permission`` (templates ask before offering)."""
    operator = g.get("operator")
    return operator is not None and roles.allows(operator.role, permission)


def requires(permission: str) -> Callable[[F], F]:
    """Refuse the view with 403 unless the operator's role has ``permission``."""
    if permission not in roles.PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    def decorate(view: F) -> F:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not can(permission):
                raise Forbidden("Your role does not allow this.")
            return view(*args, **kwargs)

        checked.permission = permission  # type: ignore[attr-defined]  # the role table test
        return cast(F, checked)

    return decorate


def passive(view: F) -> F:
    """Mark a view polled by a page (live fragments): it does not count as activity."""

    @wraps(view)
    def marked(*args: Any, **kwargs: Any) -> Any:
        setattr(g, PASSIVE_FLAG, True)
        return view(*args, **kwargs)

    return cast(F, marked)


@bp.before_request
def _check_csrf() -> None:
    """403 for a state-changing request without the session's CSRF token."""
    if request.method in STATE_CHANGING:
        csrf.protect()


@bp.before_request
def _load_operator() -> Response | None:
    """Put the session's operator on ``g``; strangers go to the sign-in page."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    operator = operators.session_operator(session.get(OPERATOR_ID), session.get(EPOCH))
    if operator is None:
        if isinstance(session, ConsoleSession) and OPERATOR_ID in session:
            session.destroy()  # expired by a password change or a disable
        if request.method == "GET" and "HX-Request" not in request.headers:
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        raise Unauthorized("Sign in first.")
    g.operator = operator
    return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in page; a right e-mail and password open a session."""
    target = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("console/login.html", next=target, email="")
    email = request.form.get("email", "")
    clock = cast(RedisSessionInterface, current_app.session_interface).clock
    try:
        operator = operators.authenticate(
            current_runtime().redis, email, request.form.get("password", ""), now=clock()
        )
    except (AccountLocked, SignInRefused) as exc:
        page = render_template("console/login.html", next=target, email=email, error=exc.message)
        return page, exc.status
    if isinstance(session, ConsoleSession):
        session.rotate()
    session.clear()
    session[OPERATOR_ID] = operator.id
    session[EPOCH] = operator.session_epoch
    return redirect(target or url_for(HOME_ENDPOINT), code=303)


@bp.post("/logout")
def logout() -> Response:
    """End this session and go back to the sign-in page."""
    if isinstance(session, ConsoleSession):
        session.destroy()
    return redirect(url_for("console.login"), code=303)


def _safe_next(value: str | None) -> str | None:
    """``next`` when it is a path inside the console (never another site)."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/admin") or "\\" in value:
        return None
    return value
