"""The checkout read model in Redis (``{shop}:co:<orderId>``): publish, read, long-poll.

admit.lua writes the first version at submit; workers :func:`publish` every change
(client secret, payment status, errors). Each publish bumps ``version`` and wakes the
long-pollers waiting in :func:`wait` through the ``{shop}:co:<orderId>:changed`` channel.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.client import PubSub

from app import keys, lua

# The longest long-poll: the HTTP contract's ``?wait=0..25``; longer asks are cut to it.
MAX_WAIT_SECONDS = 25
# Fields stored as JSON; any other value that parses as a JSON object/array is decoded too.
JSON_FIELDS = frozenset({"submission", "lineItems", "totals", "error"})


def token_hash(token: str) -> str:
    """sha256 hex of a checkout token (only the hash is stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def derive_token(secret: str, order_id: str) -> str:
    """The checkout token of ``order_id`` under ``secret``: HMAC-SHA256, base64url (43 chars).

    Derived rather than random so that the return-URL lookup can answer it again
    without the token ever being stored (only its hash is) or logged.
    """
    mac = hmac.new(secret.encode("utf-8"), f"checkout-token:{order_id}".encode(), "sha256")
    return base64.urlsafe_b64encode(mac.digest()).decode("ascii").rstrip("=")


def recover_token(order_id: str, stored_hash: str, secrets: Sequence[str]) -> str | None:
    """The order's checkout token, re-derived with whichever secret made it; None if none
    did (an order from before tokens were derived, or a secret rotated out)."""
    for secret in secrets:
        token = derive_token(secret, order_id)
        if hmac.compare_digest(token_hash(token), stored_hash or ""):
            return token
    return None


def encode(value: Any) -> str:
    """A field value as stored: dict/list/bool as JSON, None as "", the rest as str."""
    if isinstance(value, dict | list | tuple | bool):
        return json.dumps(value, separators=(",", ":"), default=str)
    if value is None:
        return ""
    return str(value)


def publish(redis: Redis, order_id: str, /, **fields: Any) -> int:
    """HSET ``fields``, bump ``version`` and wake waiters, atomically; return the version."""
    args: list[Any] = [keys.CHECKOUT_FALLBACK_TTL_SECONDS]
    for name, value in fields.items():
        args += [name, encode(value)]
    names = [keys.checkout(order_id), keys.checkout_channel(order_id)]
    return int(lua.run(redis, "publish", names, args))


def decode(raw: dict[Any, Any]) -> dict[str, Any]:
    """The stored hash as a dict: ``version`` an int, JSON fields decoded, "" → None."""
    view: dict[str, Any] = {}
    for key, value in raw.items():
        name, text = lua.text(key), lua.text(value)
        view[name] = _decode_field(name, text)
    view["version"] = int(view.get("version") or 0)
    return view


def _decode_field(name: str, text: str) -> Any:
    if name in JSON_FIELDS:
        return json.loads(text) if text else None
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def read(redis: Redis, order_id: str) -> dict[str, Any] | None:
    """The read model of ``order_id`` (JSON fields decoded), or None when absent."""
    raw = redis.hgetall(keys.checkout(order_id))
    return decode(raw) if raw else None


def wait(redis: Redis, order_id: str, since_version: int, timeout: float) -> dict[str, Any] | None:
    """Long-poll: the read model once its version exceeds ``since_version``.

    Returns None when the timeout ends first or the order is unknown. Subscribes
    before re-reading, so a publish between the read and the subscribe is never lost.
    """
    current = read(redis, order_id)
    if current is None or current["version"] > since_version:
        return current
    deadline = time.monotonic() + max(0.0, min(float(timeout), MAX_WAIT_SECONDS))
    pubsub = redis.pubsub()
    try:
        pubsub.subscribe(keys.checkout_channel(order_id))
        if not _await_subscribed(pubsub, deadline):
            return None
        while True:
            current = read(redis, order_id)
            if current is None or current["version"] > since_version:
                return current
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            pubsub.get_message(timeout=remaining)
    finally:
        pubsub.close()


def _await_subscribed(pubsub: PubSub, deadline: float) -> bool:
    """Block until the server confirms the subscription (or the deadline passes)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        message = pubsub.get_message(timeout=remaining)
        if message and message.get("type") in ("subscribe", b"subscribe"):
            return True


def verify_token(redis: Redis, order_id: str, token: str | None) -> bool:
    """True if ``token`` is this order's checkout token (constant-time comparison)."""
    if not token:
        return False
    stored = redis.hget(keys.checkout(order_id), "tokenHash")
    if not stored:
        return False
    return hmac.compare_digest(lua.text(stored), token_hash(token))
