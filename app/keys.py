"""Every Redis key the service writes, its ``{shop}`` hash-tag prefix and its TTL.

All keys share the hash tag ``{shop}`` so one Lua script may touch any of them on one
Redis Cluster slot. The Lua scripts receive these keys as KEYS (their headers name
them for the reader); nothing else spells a key.

::

    key                               TTL            meaning
    --------------------------------  -------------  ------------------------------
    {shop}:avail                      none           hash sku -> units that may still be held
    {shop}:avail:inactive             none           the same count for inactive products (not sold)
    {shop}:res:<reservationId>        hold + 7 d     the reservation: status, items, orderId, ...
    {shop}:holds                      none           zset reservationId -> expiresAt, HELD only
    {shop}:pending                    none           zset orderId -> submitted at (no order row yet)
    {shop}:idem:<sha256(key)>         24 h (config)  the submit's idempotency claim
    {shop}:idem:refund:<sha256(key)>  24 h           an admin refund request's idempotency claim
    {shop}:co:<orderId>               hold + 1 d     the checkout read model
    {shop}:co:<orderId>:changed       channel        pub/sub: the read model has a new version
    {shop}:evt:<eventId>              30 d           Stripe event done (fast path; inbox is truth)
    {shop}:lock:order:<orderId>       lock timeout   one actor at a time per order
    {shop}:stripe:bucket              refill time    token bucket under Stripe's rate limit
    {shop}:reconcile:checkpoint       none           reconciled Stripe events up to this time
    {shop}:clock:<kind>:<item>        5 min          the clock re-enqueued this item recently
    {shop}:ratelimit...               limiter's      flask-limiter counters (its key_prefix)
"""

from __future__ import annotations

PREFIX = "{shop}:"

# Stock (app/services/inventory.py, hold/confirm/release/extend/rebuild/admit.lua).
AVAIL = PREFIX + "avail"
# An inactive product's counter is parked here: holds read AVAIL only, so they refuse the
# SKU like an unknown one, while releases and restocks still keep its count exact.
AVAIL_INACTIVE = AVAIL + ":inactive"
HOLDS = PREFIX + "holds"
RESERVATION_PREFIX = PREFIX + "res:"
# A reservation record outlives its hold by a week, for late webhooks and support.
RESERVATION_KEEP_SECONDS = 7 * 24 * 3600

# The submit path (app/services/admission.py, admit.lua).
PENDING = PREFIX + "pending"
IDEMPOTENCY_PREFIX = PREFIX + "idem:"
# The submit claim's TTL is ``Config.idempotency_ttl_seconds`` (24 h by default).

# The checkout read model (app/services/checkout_status.py, publish.lua).
CHECKOUT_PREFIX = PREFIX + "co:"
# The read model outlives the hold by a day; after that the database answers.
CHECKOUT_KEEP_SECONDS = 24 * 3600
# A publish to a hash with no TTL yet (admit.lua normally sets one): default hold + a day.
CHECKOUT_FALLBACK_TTL_SECONDS = 900 + CHECKOUT_KEEP_SECONDS

# Admin refund requests (app/services/admin.py).
REFUND_CLAIM_PREFIX = IDEMPOTENCY_PREFIX + "refund:"
REFUND_CLAIM_TTL_SECONDS = 24 * 3600

# Stripe webhooks (app/services/webhooks.py): the inbox row is the truth.
EVENT_SEEN_PREFIX = PREFIX + "evt:"
EVENT_SEEN_TTL_SECONDS = 30 * 24 * 3600

# Actors (app/services/records.order_lock); the TTL is the lock's timeout.
ORDER_LOCK_PREFIX = PREFIX + "lock:order:"

# The Stripe gateway's shared token bucket (token_bucket.lua sets its own expiry).
STRIPE_BUCKET = PREFIX + "stripe:bucket"

# The clock (tasks/clock.py) and its reconciliation (app/services/reconcile.py).
RECONCILE_CHECKPOINT = PREFIX + "reconcile:checkpoint"
CLOCK_CLAIM_PREFIX = PREFIX + "clock:"
CLOCK_CLAIM_TTL_SECONDS = 300

# flask-limiter's ``key_prefix`` (app/__init__.py); the limiter names the rest.
RATELIMIT_PREFIX = PREFIX + "ratelimit"


def reservation(reservation_id: str) -> str:
    """``{shop}:res:<reservationId>``: one reservation record."""
    return RESERVATION_PREFIX + reservation_id


def idempotency(key_hash: str) -> str:
    """``{shop}:idem:<sha256(key)>``: the submit path's idempotency claim."""
    return IDEMPOTENCY_PREFIX + key_hash


def refund_claim(key_hash: str) -> str:
    """``{shop}:idem:refund:<sha256(key)>``: an admin refund request's idempotency claim."""
    return REFUND_CLAIM_PREFIX + key_hash


def checkout(order_id: str) -> str:
    """``{shop}:co:<orderId>``: one order's checkout read model."""
    return CHECKOUT_PREFIX + order_id


def checkout_channel(order_id: str) -> str:
    """``{shop}:co:<orderId>:changed``: the channel announcing a new read-model version."""
    return checkout(order_id) + ":changed"


def event_seen(event_id: str) -> str:
    """``{shop}:evt:<eventId>``: set once a Stripe event is processed or ignored."""
    return EVENT_SEEN_PREFIX + event_id


def order_lock(order_id: str) -> str:
    """``{shop}:lock:order:<orderId>``: the per-order actor lock."""
    return ORDER_LOCK_PREFIX + order_id


def clock_claim(kind: str, item: str) -> str:
    """``{shop}:clock:<kind>:<item>``: the clock re-enqueued this item recently."""
    return f"{CLOCK_CLAIM_PREFIX}{kind}:{item}"
