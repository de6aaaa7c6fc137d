"""Stripe's ``Idempotency-Key`` semantics (docs.stripe.com/api/idempotent_requests).

A POST with a key is claimed before it runs. The first finished result (status and
body) is replayed for 24 hours to requests with the same key, marked
``Idempotent-Replayed: true``. Another endpoint or other parameters under the same key
get a 400 ``idempotency_error``; a request arriving while the first is still running
gets a 409. Results of requests refused before the endpoint ran (validation, rate
limit, conflicts) are not kept, so those are safe to retry. Keys are scoped per API key.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import StripeError, invalid_request

RETENTION_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 255


@dataclass
class Entry:
    """One key's request fingerprint and, once finished, its stored response."""

    method: str
    path: str
    fingerprint: str
    created: float = field(default_factory=time.time)
    done: bool = False
    status: int = 0
    body: str = ""
    request_id: str = ""  # the first request's id, sent back as ``Original-Request``


class IdempotencyStore:
    """Claims, replays and expires idempotency keys."""

    def __init__(self, retention: float = RETENTION_SECONDS) -> None:
        self.retention = retention
        self._entries: dict[tuple[str, str], Entry] = {}
        self._lock = threading.Lock()
        self._claims = 0

    def reset(self) -> None:
        """Forget every key."""
        with self._lock:
            self._entries.clear()

    def claim(
        self, api_key: str, key: str, method: str, path: str, params: dict[str, Any]
    ) -> Entry | None:
        """Claim ``key`` for this request; returns a finished entry to replay, else None.

        Raises the 400/409 errors Stripe gives for a reused or busy key.
        """
        if len(key) > MAX_KEY_LENGTH:
            raise invalid_request(
                f"Idempotency key length must be at most {MAX_KEY_LENGTH} characters.",
                stored=False,
            )
        fingerprint = json.dumps(params, sort_keys=True)
        scope = (api_key, key)
        now = time.time()
        with self._lock:
            self._claims += 1
            if self._claims % 1000 == 0:
                self._expire(now)
            entry = self._entries.get(scope)
            if entry is not None and now - entry.created > self.retention:
                entry = None
            if entry is None:
                self._entries[scope] = Entry(method, path, fingerprint, created=now)
                return None
            if not entry.done:
                raise StripeError(
                    409,
                    "invalid_request_error",
                    "There is currently another in-progress request using this Idempotent Key "
                    "(that probably means you submitted twice, and the other request is still "
                    f"going through): {key}. Please try again later.",
                    code="idempotency_key_in_use",
                    stored=False,
                )
            if (entry.method, entry.path) != (method, path):
                raise StripeError(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used for the same endpoint they "
                    f"were first used for ('{entry.method} {entry.path}' vs '{method} {path}'). "
                    f"Try using a key other than '{key}' if you meant to execute a different "
                    "request.",
                    stored=False,
                )
            if entry.fingerprint != fingerprint:
                raise StripeError(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they "
                    f"were first used with. Try using a key other than '{key}' if you meant to "
                    "execute a different request.",
                    stored=False,
                )
            return entry

    def finish(
        self, api_key: str, key: str, status: int, body: str, *, store: bool, request_id: str = ""
    ) -> None:
        """Keep the result for replays, or release the claim when it must not be kept."""
        scope = (api_key, key)
        with self._lock:
            entry = self._entries.get(scope)
            if entry is None or entry.done:
                return
            if store:
                entry.done, entry.status, entry.body = True, status, body
                entry.request_id = request_id
            else:
                del self._entries[scope]

    def _expire(self, now: float) -> None:
        stale = [k for k, e in self._entries.items() if e.done and now - e.created > self.retention]
        for k in stale:
            del self._entries[k]
