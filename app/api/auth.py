"""Identity from the optional JWT (HS256, JWT_SECRET), and the access rules.

Token: ``Authorization: Bearer <jwt>`` or the existing frontend's ``x-auth-token``.
User id: ``sub``, else ``user.id``. Admin: ``role == "admin"`` (top level or ``user.role``).
Every token needs ``exp``; ``iss`` and ``aud`` are checked when JWT_ISSUER / JWT_AUDIENCE are set.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any

import jwt
from flask import request

from app.context import current_config
from app.errors import Forbidden, NotFound, Unauthorized
from app.services import checkout_status


@dataclass(frozen=True)
class Identity:
    """Who is calling, as far as a valid JWT says."""

    user_id: str | None
    is_admin: bool


def _raw_bearer(environ: dict[str, Any]) -> str | None:
    header = environ.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return None


def _raw_token() -> str | None:
    # The WSGI environ as ``request.headers`` reads it (the same value), without building
    # werkzeug's header view: this runs before every request.
    environ = request.environ
    return _raw_bearer(environ) or environ.get("HTTP_X_AUTH_TOKEN") or None


def _decode(token: str) -> dict[str, Any] | None:
    config = current_config()
    # `exp` is required: a token without one would be valid forever. `iss` / `aud` are
    # required and checked when JWT_ISSUER / JWT_AUDIENCE are configured.
    required = ["exp"]
    required += ["iss"] if config.jwt_issuer else []
    required += ["aud"] if config.jwt_audience else []
    try:
        claims = jwt.decode(
            token,
            config.jwt_secret,
            algorithms=["HS256"],
            issuer=config.jwt_issuer,
            audience=config.jwt_audience,
            options={"require": required},
        )
    except jwt.PyJWTError:
        return None
    return claims if isinstance(claims, dict) else None


# Endpoints whose Authorization bearer is their own secret, not a JWT (METRICS_TOKEN).
NON_JWT_BEARER_ENDPOINTS = frozenset({"ops.metrics"})


def refuse_invalid_token() -> None:
    """Before every request: a JWT that is sent but expired or invalid is 401.

    Without this a buyer whose session lapsed would silently check out as a guest and
    lose the order from "my orders"; a caller who sends no token is a guest as before.
    """
    if request.endpoint in NON_JWT_BEARER_ENDPOINTS:
        return
    token = _raw_token()
    if token and _decode(token) is None:
        raise Unauthorized(_why_refused(token))


def _why_refused(token: str) -> str:
    """Say whether the token expired (sign in again) or is not ours at all."""
    try:
        jwt.decode(token, options={"verify_signature": False, "verify_exp": True})
    except jwt.ExpiredSignatureError:
        return "The token has expired; sign in again."
    except jwt.PyJWTError:
        pass
    return "The token is invalid."


def identity() -> Identity | None:
    """The caller's identity, or None without a valid JWT."""
    token = _raw_token()
    claims = _decode(token) if token else None
    if claims is None:
        return None
    raw_user = claims.get("user")
    user: dict[str, Any] = raw_user if isinstance(raw_user, dict) else {}
    user_id = claims.get("sub") or user.get("id")
    role = claims.get("role") or user.get("role")
    return Identity(user_id=str(user_id) if user_id else None, is_admin=role == "admin")


def require_admin() -> Identity:
    """The admin's identity; 401 without a valid JWT, 403 without the admin role."""
    who = identity()
    if who is None:
        raise Unauthorized("A valid admin token is required.")
    if not who.is_admin:
        raise Forbidden("This needs the admin role.")
    return who


def require_buyer() -> str:
    """The signed-in buyer's user id; 401 without a valid JWT naming a user."""
    who = identity()
    if who is None or not who.user_id:
        raise Unauthorized("A signed-in buyer's token is required.")
    return who.user_id


def require_metrics_access() -> None:
    """``GET /metrics``: the METRICS_TOKEN bearer when one is configured (401 otherwise);
    without one, loopback clients only (403 otherwise)."""
    expected = current_config().metrics_token
    if expected:
        given = _raw_bearer(request.environ) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("The metrics token is required.")
        return
    try:
        loopback = ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise Forbidden("Metrics are served to loopback clients only (or set METRICS_TOKEN).")


def token_hash(token: str) -> str:
    """sha256 hex of a checkout token (what the read model and the order store)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def require_order_access(token_digest: str | None, owner_id: str | None) -> str:
    """Allow the checkout token's holder, the buyer's JWT or an admin; else 404.

    Returns the credential that was accepted (``token:<hash>`` or ``user:<id>``), the
    unit long-polls are capped by.
    """
    token = request.headers.get("X-Checkout-Token")
    if token and token_digest and hmac.compare_digest(token_hash(token), token_digest):
        return checkout_status.token_credential(token_digest)
    who = identity()
    if who is not None and (who.is_admin or (owner_id and who.user_id == owner_id)):
        return f"user:{who.user_id}"
    # 404, not 403: an order's existence is not disclosed.
    raise NotFound("No such order.")
