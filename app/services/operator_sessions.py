"""Server-side console sessions in Redis: 30 minutes idle, 12 hours at most.

The browser holds only a random id; Redis holds ``{createdAt, seenAt, ...}`` as JSON
under the id's sha256 (a Redis dump signs nobody in). Expiry is decided here from the
times stored, with ``now`` passed in, and the key's TTL follows so Redis forgets a
session when it can no longer be used. Each operator's session hashes are kept in a set,
so a password change or a disable deletes them all.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from typing import Any, cast

from redis import Redis

from app import keys

CREATED_AT = "_createdAt"
SEEN_AT = "_seenAt"
OPERATOR_ID = "operatorId"


def new_session_id() -> str:
    """A fresh, unguessable session id (the cookie's value)."""
    return secrets.token_urlsafe(32)


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8")).hexdigest()


def expired(data: dict[str, Any], now: float) -> bool:
    """Whether a session is past its idle or its absolute limit at ``now``."""
    created, seen = data.get(CREATED_AT), data.get(SEEN_AT)
    if not isinstance(created, int | float) or not isinstance(seen, int | float):
        return True
    return (
        now - seen > keys.CONSOLE_SESSION_IDLE_SECONDS
        or now - created > keys.CONSOLE_SESSION_MAX_SECONDS
    )


def load(redis: Redis, sid: str, now: float) -> dict[str, Any] | None:
    """The session's data, or None when unknown or expired (then it is deleted)."""
    if not sid or len(sid) > 128:
        return None
    raw = redis.get(keys.console_session(_hash(sid)))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict) or expired(data, now):
        destroy(redis, sid)
        return None
    return data


def save(redis: Redis, sid: str, data: dict[str, Any], now: float, *, touch: bool) -> None:
    """Store a session; ``touch`` marks it used now (its idle clock restarts)."""
    data.setdefault(CREATED_AT, now)
    if touch or SEEN_AT not in data:
        data[SEEN_AT] = now
    left = min(
        keys.CONSOLE_SESSION_IDLE_SECONDS - (now - data[SEEN_AT]),
        keys.CONSOLE_SESSION_MAX_SECONDS - (now - data[CREATED_AT]),
    )
    if left <= 0:
        destroy(redis, sid)
        return
    digest = _hash(sid)
    pipe = redis.pipeline(transaction=True)
    pipe.set(keys.console_session(digest), json.dumps(data), ex=math.ceil(left))
    operator_id = data.get(OPERATOR_ID)
    if isinstance(operator_id, int):
        index = keys.console_sessions(operator_id)
        pipe.sadd(index, digest)
        pipe.expire(index, keys.CONSOLE_SESSION_MAX_SECONDS)
    pipe.execute()


def destroy(redis: Redis, sid: str) -> None:
    """Forget one session (sign-out, expiry, a new id at sign-in)."""
    redis.delete(keys.console_session(_hash(sid)))


def revoke_all(redis: Redis, operator_id: int) -> int:
    """End every session of an operator; how many Redis still held."""
    index = keys.console_sessions(operator_id)
    digests = list(cast(set[str], redis.smembers(index)))  # clients decode responses
    if not digests:
        return 0
    ended = int(redis.delete(*[keys.console_session(d) for d in digests]))
    redis.delete(index)
    return ended
