"""The submit path's Redis work: ONE script call (admit.lua) that claims the
idempotency key, holds every line, writes the checkout read model and queues the
submission in ``{shop}:pending`` and the worker's message — or refuses and writes nothing.

Also the id helpers the endpoint and the worker share (order ids, order numbers,
checkout tokens, request fingerprints) and the ``{shop}:pending`` queue accessors.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import limits
from prometheus_client import Counter
from redis import Redis

from app import keys, lua
from app.config import Config
from app.errors import InvalidRequest, OutOfStock, RateLimited, ServiceUnavailable
from app.gateways.jobs import Jobs, ScriptedMessage
from app.services import checkout_status
from app.services.checkout_status import derive_token, token_hash
from app.services.inventory import (
    counters_lost,
    flat_lines,
    validate_lines,
    with_product_names,
)
from app.services.order_body import iso_utc
from app.services.pricing import TotalCheck, over_maximum
from app.services.pricing.promotions import admission_refusal, buyer_keys
from app.services.state_machine import PENDING
from models.statuses import CaptureMethod, PaymentStatus

__all__ = [
    "Admission",
    "Submission",
    "admit",
    "fingerprint",
    "iso_utc",
    "load_submission",
    "mark_written",
    "message_for",
    "new_checkout_token",
    "new_order_id",
    "new_order_number",
    "pending_older_than",
    "token_hash",
]

REPLICA_ACK_MISSING = Counter(
    "checkout_admission_replica_ack_missing_total",
    "Admissions answered 503: no replica acknowledged them in time (REDIS_MIN_REPLICAS_ACK).",
)

# Crockford base32 without I, L, O, U: nothing a buyer can misread on the phone.
ORDER_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ORDER_NUMBER_LENGTH = 8


def new_order_id() -> str:
    """A fresh order id (uuid4, as a string)."""
    return str(uuid.uuid4())


def new_reservation_id() -> str:
    """A fresh reservation id (uuid4, as a string)."""
    return str(uuid.uuid4())


def new_order_number() -> str:
    """A human order number: ``ORD-`` + 8 Crockford base32 characters (40 random bits)."""
    # One draw of 40 bits, five per character (the alphabet has 32): uniform as eight
    # secrets.choice calls were, without their eight reads of the system's randomness.
    bits = secrets.randbits(5 * ORDER_NUMBER_LENGTH)
    body = "".join(
        ORDER_NUMBER_ALPHABET[(bits >> (5 * i)) & 31] for i in range(ORDER_NUMBER_LENGTH)
    )
    return f"ORD-{body}"


def new_checkout_token() -> str:
    """The buyer's secret for reading the checkout status (only its hash is stored)."""
    return secrets.token_urlsafe(24)


def fingerprint(body: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a validated request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def idempotency_key_hash(key: str) -> str:
    """sha256 hex of an Idempotency-Key (keys are stored hashed)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Submission:
    """A validated submit, built by the endpoint; everything admit.lua writes."""

    order_id: str
    order_number: str
    checkout_token: str
    reservation_id: str
    idempotency_key: str
    fingerprint: str
    items: list[tuple[str, int]]
    body: dict[str, Any]  # the validated request (camelCase), stored for the worker
    user_id: str | None
    hold_expires_at: datetime
    capture_method: str = CaptureMethod.AUTOMATIC  # CAPTURE_METHOD when submitted

    @classmethod
    def create(
        cls,
        body: dict[str, Any],
        *,
        idempotency_key: str,
        hold_ttl: int,
        user_id: str | None = None,
        now: datetime | None = None,
        token_secret: str | None = None,
        capture_method: str = CaptureMethod.AUTOMATIC,
    ) -> Submission:
        """A submission with fresh ids from a validated body (``items: [{sku, quantity}]``).

        With ``token_secret`` the checkout token is derived from the order id (so the
        return-URL lookup can answer it again); without, it is random.
        """
        start = now or datetime.now(UTC)
        order_id = new_order_id()
        return cls(
            order_id=order_id,
            order_number=new_order_number(),
            checkout_token=(
                derive_token(token_secret, order_id) if token_secret else new_checkout_token()
            ),
            reservation_id=new_reservation_id(),
            idempotency_key=idempotency_key,
            fingerprint=fingerprint(body),
            items=[(line["sku"], line["quantity"]) for line in body["items"]],
            body=body,
            user_id=user_id,
            hold_expires_at=start + timedelta(seconds=hold_ttl),
            capture_method=capture_method,
        )

    def response(self) -> dict[str, Any]:
        """The 202 body of the HTTP contract."""
        return {
            "orderId": self.order_id,
            "orderNumber": self.order_number,
            "checkoutToken": self.checkout_token,
            "state": PENDING,
            "statusUrl": f"/api/checkout/{self.order_id}",
            "holdExpiresAt": iso_utc(self.hold_expires_at),
        }


@lru_cache(maxsize=8)
def first_limit(rule: str) -> tuple[int, int]:
    """The first limit of a flask-limiter rule (``"30/minute;500/hour"``): requests and
    window seconds, parsed once per rule (the parse cost every submit about 8 µs)."""
    item = limits.parse_many(rule)[0]
    return item.amount, int(item.get_expiry())


@dataclass(frozen=True)
class SubmitRate:
    """The submit endpoint's rate limit for one client, counted inside admit.lua.

    The same fixed window as flask-limiter's on the other routes (RATELIMIT_CHECKOUT,
    per client IP), but counted in the admission script, so an admitted submit costs
    one Redis round trip for limit, claim, hold and read model together.
    """

    limit: int  # requests per window; 0 means no limit
    window: int  # seconds
    client: str

    @classmethod
    def of(cls, config: Config, client: str) -> SubmitRate:
        """The first limit of ``config.ratelimit_checkout`` (0 when limits are off)."""
        if not config.ratelimit_enabled:
            return cls(0, 1, client)
        return cls(*first_limit(config.ratelimit_checkout), client)

    @property
    def key(self) -> str:
        """The client's counter."""
        return keys.submit_rate(self.client)


@dataclass(frozen=True)
class RateState:
    """Where a client stands in its window: the ``X-RateLimit-*`` headers."""

    limit: int
    remaining: int
    reset_in: int

    def headers(self) -> dict[str, str]:
        """flask-limiter's header names, so a client sees one convention everywhere."""
        if not self.limit:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(int(time.time()) + self.reset_in),
        }


NO_LIMIT = RateState(0, 0, 0)


@dataclass(frozen=True)
class Admission:
    """The outcome of :func:`admit`: the 202 body, whether it is a replay, the limit."""

    response: dict[str, Any]
    replayed: bool
    rate: RateState = NO_LIMIT


def caller_hash(user_id: str | None) -> str:
    """The submitter's credential (the JWT's user), hashed; ``""`` for a guest.

    A replay carries the checkout token only to this credential. The client IP is none
    (a NAT or proxy shares it) and neither is the Idempotency-Key (it may be guessed),
    so a guest, who has no credential, never gets the token from a replay.
    """
    return hashlib.sha256(f"user:{user_id}".encode()).hexdigest() if user_id else ""


def count_refused(redis: Redis, rate: SubmitRate) -> None:
    """Count a submit refused before admission (bad input); RateLimited once over."""
    if not rate.limit:
        return
    with redis.pipeline(transaction=True) as pipe:
        pipe.set(rate.key, 0, ex=rate.window, nx=True)
        pipe.incr(rate.key)
        pipe.ttl(rate.key)
        _, used, ttl = pipe.execute()
    if int(used) > rate.limit:
        raise RateLimited(retry_after=max(1, int(ttl)))


def read_model_fields(submission: Submission, submitted_at: datetime) -> dict[str, Any]:
    """The first version of the checkout read model (``{shop}:co:<orderId>``)."""
    stored = {
        **submission.body,
        "reservationId": submission.reservation_id,
        "idempotencyKey": submission.idempotency_key,
        # Kept with the order (ORDER_CREATED): a key reused after its claim lapsed is
        # told apart from a replay by it (checkout.write_order).
        "requestFingerprint": submission.fingerprint,
        "submittedAt": iso_utc(submitted_at),
    }
    return {
        "orderId": submission.order_id,
        "orderNumber": submission.order_number,
        "tokenHash": token_hash(submission.checkout_token),
        "userId": submission.user_id or "",
        "state": PENDING,
        "paymentStatus": PaymentStatus.CREATING,
        "captureMethod": submission.capture_method,
        "intentId": "",
        "clientSecret": "",
        "reservationId": submission.reservation_id,
        "holdExpiresAt": iso_utc(submission.hold_expires_at),
        "submission": stored,
        "lineItems": None,
        "totals": None,
        "error": None,
    }


def admit(
    redis: Redis,
    submission: Submission,
    *,
    hold_ttl: int,
    key_ttl: int,
    rate: SubmitRate | None = None,
    caller: str = "",
    total_check: TotalCheck | None = None,
    replicas: int = 0,
    replica_timeout_ms: int = 0,
    message: ScriptedMessage | None = None,
) -> Admission:
    """Count the rate limit, claim the key, hold every line and write the read model in
    ONE EVALSHA (followed by ``WAIT replicas`` in the same round trip when ``replicas``).

    With ``message`` (:func:`message_for`) the same script queues the worker's
    ``create_payment_intent`` when, and only when, it admits the submit (not on a replay).

    A 202 is a promise: with ``replicas``, one is only given once that many replicas hold
    the submission, so a failover cannot lose it. Fewer in ``replica_timeout_ms`` raises
    ServiceUnavailable; the submission stays on the primary, where a retry with the same
    key replays it (docs/reliability.md, "Redis failover").

    With ``total_check`` the script first prices the cart from ``{shop}:price`` (the
    prices the catalog script wrote) and refuses one over Stripe's maximum:
    InvalidRequest on ``items``, nothing held. With a ``promotionCode`` in the body it
    checks the code's terms (InvalidRequest on ``promotionCode``) and redeems it with the
    hold, all or nothing (PromotionUnavailable when none is left for everyone or for
    this buyer); the terms are copied into the read model for the worker.

    Same key + same fingerprint → the stored response (``replayed=True``), without the
    checkout token unless ``caller`` (:func:`caller_hash`) is the user who submitted it.
    Raises RateLimited, IdempotencyKeyReused (same key, other body), OutOfStock, or
    InvalidRequest on ``items.N.sku`` for unknown SKUs; a refused submit leaves nothing
    behind but its rate-limit count and the day's counts (``keys.day_stats``: submits,
    admitted, out_of_stock; the dashboard reads them).
    """
    if message is not None and replicas:
        raise ValueError("a message is queued with the admission only when no replica is awaited")
    rate = rate or SubmitRate(0, 1, "")
    lines = validate_lines(submission.items)
    code = str(submission.body.get("promotionCode") or "")
    response = submission.response()
    now = datetime.now(UTC)
    fields: list[Any] = []
    for name, value in read_model_fields(submission, now).items():
        fields += [name, checkout_status.encode(value)]
    names = [
        keys.AVAIL,
        keys.reservation(submission.reservation_id),
        keys.HOLDS,
        keys.idempotency(idempotency_key_hash(submission.idempotency_key)),
        keys.checkout(submission.order_id),
        keys.PENDING,
        rate.key,
        keys.PRICE,
        keys.promotion(code),
        keys.promotion_orders(code),
        keys.promotion_buyers(code),
        keys.day_stats(now.strftime("%Y-%m-%d")),
    ]
    if message is not None:
        names += [message.messages_key, message.queue_key]
    check = total_check
    args = [
        submission.fingerprint,
        json.dumps(response, separators=(",", ":")),
        submission.order_id,
        submission.reservation_id,
        int(submission.hold_expires_at.timestamp()),
        now.timestamp(),
        hold_ttl + keys.RESERVATION_KEEP_SECONDS,
        key_ttl,
        hold_ttl + keys.CHECKOUT_KEEP_SECONDS,
        rate.limit,
        rate.window,
        caller,
        0 if check is None else check.limit,
        0 if check is None else check.tax_basis_points,
        0 if check is None else check.shipping,
        -1 if check is None or check.free_over is None else check.free_over,
        code,
        buyer_keys(str(submission.body.get("email") or ""), submission.user_id) if code else "",
        keys.DAY_STATS_TTL_SECONDS,
        "" if message is None else message.message_id,
        b"" if message is None else message.data,
        len(fields),
        *fields,
        *flat_lines(lines),
    ]
    if replicas:
        reply, acked = lua.run_replicated(
            redis, "admit", names, args, replicas=replicas, timeout_ms=replica_timeout_ms
        )
    else:
        reply, acked = lua.run(redis, "admit", names, args), 0
    used, ttl, *outcome = reply
    state = RateState(rate.limit, max(0, rate.limit - int(used)), int(ttl))
    kind = lua.text(outcome[0])
    if kind == "LIMITED":
        raise RateLimited(retry_after=max(1, int(ttl)))
    if kind == "REPLAY":
        stored = json.loads(lua.text(outcome[1]))
        first_delivery = int(outcome[2]) == 2
        if not (first_delivery or (caller and int(outcome[2]))):
            # Someone else holding the key and the body must not read the buyer's order.
            stored["checkoutToken"] = None
        _require_replicas(
            acked, replicas, redis=redis, unanswered=names[3] if first_delivery else None
        )
        return Admission(response=stored, replayed=True, rate=state)
    if kind == "TOO_LARGE" and check is not None:
        raise over_maximum(check.currency)
    promotion_refused = admission_refusal(kind, lua.text(outcome[-1]))
    if promotion_refused is not None:
        raise promotion_refused
    try:
        lua.raise_for_refusal(outcome, lines)
    except OutOfStock as exc:
        raise with_product_names(exc) from None  # names looked up on the refusal path only
    except InvalidRequest:
        if kind == "UNKNOWN" and counters_lost([lua.text(sku) for sku in outcome[1:]]):
            raise ServiceUnavailable("Stock counters are being restored; retry.") from None
        raise
    _require_replicas(acked, replicas, redis=redis, unanswered=names[3])
    return Admission(response=response, replayed=False, rate=state)


def message_for(jobs: Jobs, order_id: str, *, replicas: int) -> ScriptedMessage | None:
    """The worker's ``create_payment_intent`` for :func:`admit` to queue in the admission's
    own round trip, or None: the caller enqueues once admitted (a broker that is not Redis).

    None too when ``replicas`` must acknowledge: a 503 for want of one promises that no
    worker wrote an order from the submission (docs/reliability.md, "Redis failover"), and
    a message queued in the script could be taken before the acknowledgement is known.
    """
    if replicas:
        return None
    return jobs.scripted_create_payment_intent(order_id)


def _require_replicas(
    acked: int, replicas: int, *, redis: Redis | None = None, unanswered: str | None = None
) -> None:
    """Refuse to promise an admission fewer than ``replicas`` replicas acknowledged.

    The refused answer was never delivered, so nobody holds its checkout token: the claim
    at ``unanswered`` is marked, and the first replay of it (admit.lua) hands the token
    over, as a guest's first answer would have (a later replay does not).
    """
    if acked < replicas:
        if redis is not None and unanswered is not None:
            redis.hset(unanswered, "unanswered", 1)
        REPLICA_ACK_MISSING.inc()
        raise ServiceUnavailable(
            "The submission is not yet safe on a replica; retry with the same Idempotency-Key."
        )


def load_submission(redis: Redis, order_id: str) -> dict[str, Any] | None:
    """The stored submission of ``order_id`` (body + reservationId, idempotencyKey,
    submittedAt), or None when the read model is gone."""
    view = checkout_status.read(redis, order_id)
    return None if view is None else view.get("submission")


def pending_older_than(redis: Redis, seconds: float) -> list[str]:
    """Order ids admitted more than ``seconds`` ago whose order row is not written yet."""
    cutoff = time.time() - seconds
    return [lua.text(oid) for oid in redis.zrangebyscore(keys.PENDING, "-inf", cutoff)]


def queue_position(redis: Redis, order_id: str) -> int:
    """How many admitted submissions wait before this one (0: it is being written or
    its order already exists)."""
    return position_of(redis.execute_command(*queue_rank(order_id)))


def queue_rank(order_id: str) -> tuple[str, str, str]:
    """The command :func:`queue_position` sends, for a caller that pipelines it beside
    other work; :func:`position_of` reads its answer."""
    return ("ZRANK", keys.PENDING, order_id)


def position_of(rank: Any) -> int:
    """The queue position a ``ZRANK`` answered (none: not queued any more, so 0)."""
    return int(rank) if rank is not None else 0


def mark_written(redis: Redis, order_id: str) -> None:
    """Drop ``order_id`` from ``{shop}:pending`` once its order row exists."""
    redis.zrem(keys.PENDING, order_id)
