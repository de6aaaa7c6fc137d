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
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import Any

from redis import Redis
from redis.client import PubSub

from app import keys, lua
from app.config import Config
from app.errors import RateLimited

log = logging.getLogger(__name__)

# The longest long-poll: the HTTP contract's ``?wait=0..25``; longer asks are cut to it.
MAX_WAIT_SECONDS = 25
# The version admit.lua writes a read model at; publishes only raise it. (A hash a publish
# recreated after the model was lost starts at 1 too, but has no token hash: the order
# row answers for it.)
FIRST_VERSION = 1
# Fields stored as JSON; any other value that parses as a JSON object/array is decoded too.
JSON_FIELDS = frozenset({"submission", "lineItems", "totals", "error", "promotion"})


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
    return int(lua.run(redis, *publish_call(order_id, **fields)))


def publish_call(order_id: str, /, **fields: Any) -> tuple[str, list[str], list[Any]]:
    """:func:`publish` as a script name, keys and arguments, for a caller that sends it
    beside other commands in one round trip."""
    args: list[Any] = [keys.CHECKOUT_FALLBACK_TTL_SECONDS]
    for name, value in fields.items():
        args += [name, encode(value)]
    return "publish", [keys.checkout(order_id), keys.checkout_channel(order_id)], args


def decode(raw: dict[Any, Any]) -> dict[str, Any]:
    """The stored hash as a dict: ``version`` an int, JSON fields decoded, "" → None."""
    view: dict[str, Any] = {}
    for key, value in raw.items():
        # The web's client decodes replies already: ``lua.text`` only for a bytes client.
        name = key if type(key) is str else lua.text(key)
        text = value if type(value) is str else lua.text(value)
        if name in JSON_FIELDS:
            view[name] = json.loads(text) if text else None
        elif text[:1] in ("{", "["):
            try:
                view[name] = json.loads(text)
            except ValueError:
                view[name] = text
        else:
            view[name] = text
    view["version"] = int(view.get("version") or 0)
    return view


def forget_personal_data(redis: Redis, order_id: str) -> None:
    """Drop the stored submission (e-mail, addresses) from the read model (erasure); the
    order row is the record from the moment the worker wrote it."""
    redis.hdel(keys.checkout(order_id), "submission")


def read(redis: Redis, order_id: str) -> dict[str, Any] | None:
    """The read model of ``order_id`` (JSON fields decoded), or None when absent."""
    raw = redis.hgetall(keys.checkout(order_id))
    return decode(raw) if raw else None


def wait(redis: Redis, order_id: str, since_version: int, timeout: float) -> dict[str, Any] | None:
    """Long-poll on a subscription of its own: the read model once its version exceeds
    ``since_version``; None when the timeout ends first or the order is unknown.

    Subscribes before re-reading, so a publish between the read and the subscribe is
    never lost. The web process waits through its :class:`ChangeFeed` instead (one
    subscription for all waiters); this is for scripts and tools.
    """
    current = read(redis, order_id)
    if current is None or current["version"] > since_version:
        return current
    deadline = time.monotonic() + _clamp(timeout)
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


def _clamp(timeout: float) -> float:
    return max(0.0, min(float(timeout), MAX_WAIT_SECONDS))


def _await_subscribed(pubsub: PubSub, deadline: float) -> bool:
    """Block until the server confirms the subscription (or the deadline passes)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        message = pubsub.get_message(timeout=remaining)
        if message and message.get("type") in ("subscribe", b"subscribe", "psubscribe"):
            return True


class ChangeFeed:
    """One Redis subscription per process that wakes every long-poll of that process.

    A waiter costs an event and a dict entry, not a connection or (under the gevent web
    worker) a thread: :meth:`wait` parks on an event that the feed's listener sets when
    the order's channel fires. The listener pattern-subscribes to every read-model
    channel once; after a reconnect it wakes every waiter, so each re-reads its order
    (a publish missed while disconnected is never waited out).
    """

    def __init__(self, redis: Redis, *, reconnect_pause: float = 0.5) -> None:
        self.redis = redis
        self.reconnect_pause = reconnect_pause
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = {}
        self._subscribed = threading.Event()
        self._listener: threading.Thread | None = None
        self._stopped = threading.Event()

    def wait(
        self,
        order_id: str,
        since_version: int,
        timeout: float,
        *,
        gate: Callable[[], Watch] | None = None,
    ) -> dict[str, Any] | None:
        """The read model once its version exceeds ``since_version``; None on timeout.

        ``gate`` (:meth:`WaiterCaps.watch`) is entered once this waiter listens and held
        while it waits (:meth:`Listener.watched`); on timeout a gated wait answers the read
        model as it is then (None: gone) rather than None.
        """
        with self.listen(order_id, timeout) as listener:
            if gate is None:
                read_newer = partial(self._newer, order_id, since_version)
                return self.until_newer(listener.event, listener.deadline, read_newer)[1]
            return listener.watched(gate(), since_version)

    @contextmanager
    def listen(self, order_id: str, timeout: float) -> Iterator[Listener]:
        """Register a waiter for ``order_id`` for the ``with`` block, subscribed (or the
        wait's deadline passed) by the time it is entered: a read made inside the block
        misses no publish."""
        listener = Listener(self, threading.Event(), time.monotonic() + _clamp(timeout))
        self._add(order_id, listener.event)
        try:
            self._subscribed_by(listener.deadline)
            yield listener
        finally:
            self._remove(order_id, listener.event)

    def _newer(self, order_id: str, since_version: int) -> tuple[bool, dict[str, Any] | None]:
        current = read(self.redis, order_id)
        return current is None or current["version"] > since_version, current

    def until_newer(
        self,
        event: threading.Event,
        deadline: float,
        read_newer: Callable[[], tuple[bool, dict[str, Any] | None]],
        skip_read: bool = False,
    ) -> tuple[bool, dict[str, Any] | None]:
        """``(True, model)`` once ``read_newer`` (asked at once unless ``skip_read``, then
        after each wake-up) finds the model newer (None: gone); ``(False, None)`` once the
        deadline passes."""
        while True:
            if not skip_read:
                newer, current = read_newer()
                if newer:
                    return True, current
            skip_read = False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, None
            event.wait(remaining)
            event.clear()

    def waiting(self) -> int:
        """How many waiters this process holds now."""
        with self._lock:
            return sum(len(events) for events in self._waiters.values())

    def stop(self) -> None:
        """End the listener (tests); waiters still parked time out."""
        self._stopped.set()

    def _add(self, order_id: str, event: threading.Event) -> None:
        with self._lock:
            self._waiters.setdefault(order_id, set()).add(event)
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(
                    target=self._listen, name="checkout-change-feed", daemon=True
                )
                self._listener.start()

    def _remove(self, order_id: str, event: threading.Event) -> None:
        with self._lock:
            events = self._waiters.get(order_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[order_id]

    def _subscribed_by(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            self._subscribed.wait(remaining)

    def _wake(self, order_id: str | None) -> None:
        with self._lock:
            if order_id is None:
                events = [e for group in self._waiters.values() for e in group]
            else:
                events = list(self._waiters.get(order_id, ()))
        for event in events:
            event.set()

    def _listen(self) -> None:
        while not self._stopped.is_set():
            pubsub = self.redis.pubsub()
            try:
                pubsub.psubscribe(keys.CHECKOUT_CHANNEL_PATTERN)
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        self._subscribed.set()
                        self._wake(None)  # re-read after a reconnect: nothing is missed
                    elif message["type"] == "pmessage":
                        self._wake(keys.order_of_channel(lua.text(message["channel"])))
            except Exception:  # Redis went away: waiters re-read when it is back
                log.warning("checkout change feed lost its subscription; reconnecting")
                self._subscribed.clear()
                self._stopped.wait(self.reconnect_pause)
            finally:
                pubsub.close()


@dataclass(frozen=True)
class Listener:
    """One waiter registered on a :class:`ChangeFeed` (:meth:`ChangeFeed.listen`)."""

    feed: ChangeFeed
    event: threading.Event
    deadline: float

    def watched(self, watch: Watch, since_version: int) -> dict[str, Any] | None:
        """The read model once newer than ``since_version`` (None: gone), waiting counted
        against the caps by ``watch``; at the deadline, the model as it is then.

        ``watch`` is entered here unless already counted (:meth:`WaiterCaps.open`). Its
        ``version`` was read after this waiter was registered: when not newer, the model
        need not be read until a publish (or a reconnect) wakes the waiter; each later
        read leaves the caps in the same round trip (:meth:`Watch.take`).
        """
        with watch:
            skip = watch.version is not None and watch.version <= since_version
            read_newer = partial(watch.take, since_version)
            found, current = self.feed.until_newer(self.event, self.deadline, read_newer, skip)
            # Timed out: leave, reading the model as it is (every version is above -1).
            return current if found else watch.take(-1)[1]


@dataclass(frozen=True)
class WaiterCaps:
    """How many long-polls may be in flight per order, per credential and per client IP."""

    per_order: int
    per_credential: int
    per_ip: int

    @classmethod
    def of(cls, config: Config) -> WaiterCaps:
        """The caps ``config`` sets (LONGPOLL_MAX_PER_ORDER / _CREDENTIAL / _IP)."""
        return cls(
            config.longpoll_max_per_order,
            config.longpoll_max_per_credential,
            config.longpoll_max_per_ip,
        )

    @contextmanager
    def enter(self, redis: Redis, order_id: str, credential: str, ip: str) -> Iterator[None]:
        """Count one waiter for the duration of the ``with`` block; RateLimited at a cap."""
        names = _counters(order_id, credential, ip)
        args = ["enter", keys.WAITERS_TTL_SECONDS, *self._limits()]
        _refuse(int(lua.run(redis, "waiters", names, args)))
        try:
            yield
        finally:
            lua.run(redis, "waiters", names, ["leave", keys.WAITERS_TTL_SECONDS])

    def watch(self, redis: Redis, order_id: str, credential: str, ip: str) -> Watch:
        """:meth:`enter` for a waiter already listening (a :class:`Watch`, to enter with
        ``with``): the gate of :meth:`ChangeFeed.wait`."""
        return Watch(redis, order_id, _counters(order_id, credential, ip), self._limits())

    def open(
        self, redis: Redis, order_id: str, presented: str | None, ip: str, since: int | None
    ) -> Watch:
        """A long-poll's first read, for a waiter already listening: one round trip that
        answers the read model (``Watch.model``) and, when ``presented`` (the request's
        checkout token hash) is the model's and the model is not newer than ``since``
        (None: the model's own version), counts the waiter against the caps under that
        token's credential (``Watch.held``; a refusal is kept for :meth:`Watch.refuse`,
        to be raised once access is checked). Anyone else is not counted here."""
        # No token presented: nothing is counted here, the credential's counter is never touched.
        counters = _counters(order_id, token_credential(presented or ""), ip)
        watch = Watch(redis, order_id, counters, self._limits())
        watch.open(presented, since)
        return watch

    def _limits(self) -> list[int]:
        return [self.per_order, self.per_credential, self.per_ip]


class Watch:
    """One long-poll counted against the caps while it waits (``waiters.lua``).

    Entering counts it (RateLimited at a cap) and learns the read model's ``version``
    in the same round trip (None: no read model); :meth:`take` reads the model and,
    when it is newer, leaves the caps in the same round trip; leaving the ``with``
    block (or :meth:`release`) leaves them if :meth:`take` has not. :meth:`open` is
    the long-poll's first read instead: the whole model, and the caps entered in that
    round trip for the holder of the model's token (entering then changes nothing).
    """

    def __init__(self, redis: Redis, order_id: str, counters: list[str], limits: list[int]):
        self.redis = redis
        self.version: int | None = None
        self.model: dict[str, Any] | None = None  # what :meth:`open` read
        self.refused = 0  # the cap :meth:`open` met (1-based), if any
        self._counters = counters
        self.names = [*counters, keys.checkout(order_id)]
        self._limits = limits
        self._held = False

    @property
    def held(self) -> bool:
        """Counted against the caps now."""
        return self._held

    def refuse(self) -> None:
        """RateLimited if :meth:`open` met a cap."""
        _refuse(self.refused)

    def open(self, presented: str | None, since: int | None) -> None:
        """Read the model and, for the holder of its token with nothing newer than
        ``since``, enter the caps: one round trip (:meth:`WaiterCaps.open`)."""
        wanted = "" if since is None else since
        args = ["open", keys.WAITERS_TTL_SECONDS, *self._limits, presented or "", wanted]
        outcome, fields = lua.run(self.redis, "waiters", self.names, args)
        self.model = _decode_pairs(fields)
        self.refused = max(int(outcome), 0)
        self._held = int(outcome) == 0
        if self._held and self.model is not None:
            self.version = self.model["version"]

    def __enter__(self) -> Watch:
        if self._held:  # counted already (:meth:`WaiterCaps.open`)
            return self
        args = ["watch", keys.WAITERS_TTL_SECONDS, *self._limits]
        refused, version = lua.run(self.redis, "waiters", self.names, args)
        _refuse(int(refused))
        self._held = True
        self.version = None if int(version) < 0 else int(version)
        return self

    def take(self, since_version: int) -> tuple[bool, dict[str, Any] | None]:
        """``(True, the read model)`` when it is newer than ``since_version`` or gone
        (None), the caps left; ``(False, None)`` otherwise, still counted."""
        args = ["take", keys.WAITERS_TTL_SECONDS, since_version]
        reply = lua.run(self.redis, "waiters", self.names, args)
        if not int(reply[0]):
            return False, None
        self._held = False
        return True, _decode_pairs(reply[1])

    def release(self) -> None:
        """Leave the caps if still counted."""
        if self._held:
            self._held = False
            lua.run(self.redis, "waiters", self._counters, ["leave", keys.WAITERS_TTL_SECONDS])

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


def _decode_pairs(fields: list[Any]) -> dict[str, Any] | None:
    """A script's HGETALL reply (a flat list of names and values) decoded; None if empty."""
    return decode(dict(zip(fields[::2], fields[1::2], strict=True))) if fields else None


def token_credential(digest: str) -> str:
    """The credential a checkout token's holder is capped under (``token:<its hash>``)."""
    return f"token:{digest}"


def _counters(order_id: str, credential: str, ip: str) -> list[str]:
    """The waiter counters of a long-poll: its order, its credential, its client IP."""
    return [
        keys.waiters("order", order_id),
        keys.waiters("credential", credential),
        keys.waiters("ip", ip),
    ]


def _refuse(refused: int) -> None:
    """RateLimited naming the cap a waiter met (``refused``: its 1-based index), if any."""
    if refused:
        which = ("order", "credential", "client")[refused - 1]
        raise RateLimited(f"Too many requests are already waiting for this {which}.", 1)


def verify_token(redis: Redis, order_id: str, token: str | None) -> bool:
    """True if ``token`` is this order's checkout token (constant-time comparison)."""
    if not token:
        return False
    stored = redis.hget(keys.checkout(order_id), "tokenHash")
    if not stored:
        return False
    return hmac.compare_digest(lua.text(stored), token_hash(token))
