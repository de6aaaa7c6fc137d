"""Every Redis key the service writes, its ``{shop}`` hash-tag prefix and its TTL.

All keys share the hash tag ``{shop}`` so one Lua script may touch any of them on one
Redis Cluster slot. The Lua scripts receive these keys as KEYS (their headers name
them for the reader); nothing else spells a key.

::

    key                               TTL            meaning
    --------------------------------  -------------  ------------------------------
    {shop}:avail                      none           hash sku -> units that may still be held
    {shop}:avail:inactive             none           the same count for inactive products (not sold)
    {shop}:price                      none           hash sku -> unit price in minor units
    {shop}:res:<reservationId>        hold + 7 d     the reservation: status, items, orderId, ...
    {shop}:holds                      none           zset reservationId -> expiresAt, HELD only
    {shop}:pending                    none           zset orderId -> submitted at (no order row yet)
    {shop}:idem:<sha256(key)>         24 h (config)  the submit's idempotency claim
    {shop}:idem:refund:<sha256(key)>  24 h           an admin refund request's idempotency claim
    {shop}:confirming:<orderId>       3 min          a buyer payment retry in flight (its token)
    {shop}:reclaim:<orderId>:<eventId> 7 d           units a failed refund took off sale again
    {shop}:co:<orderId>               hold + 1 d     the checkout read model
    {shop}:co:<orderId>:changed       channel        pub/sub: the read model has a new version
    {shop}:evt:<eventId>              30 d           Stripe event done (fast path; inbox is truth)
    {shop}:evtbody:<eventId>          7 d            a received event's body until its inbox row is
    {shop}:lock:order:<orderId>       lock timeout   one actor at a time per order
    {shop}:lock:shophook:<sha256(url)> lock timeout  one delivery at a time per shop endpoint
    {shop}:waiters:<kind>:<who>       60 s           long-polls in flight (order, token, IP)
    {shop}:stripe:window              2 s            grants of the last second (Stripe budget)
    {shop}:stripe:budget              1 h            the budget in force (AIMD on 429s)
    {shop}:reconcile:checkpoint       none           reconciled Stripe events up to this time
    {shop}:clock:<kind>:<item>        5 min          the clock re-enqueued this item recently
    {shop}:ratelimit...               limiter's      flask-limiter counters (its key_prefix)
    {shop}:ratelimit:submit:<ip>      the window     submit requests this window (admit.lua)
    {shop}:console:session:<sha256>   30 min idle    an operator's console session (JSON)
    {shop}:console:sessions:<opId>    12 h           set: that operator's session hashes
    {shop}:console:failures:<sha256>  15 min         zset: wrong passwords for one e-mail
    {shop}:console:locked:<sha256>    15 min         that e-mail's sign-in is locked until
    {shop}:promo:<code>               none           hash: a promotion's terms (admit.lua reads)
    {shop}:promo:<code>:orders        none           hash orderId -> buyer keys: redemptions held
    {shop}:promo:<code>:buyers        none           hash buyer key -> redemptions held
    {shop}:stats:<YYYY-MM-DD>         8 d            hash: the UTC day's submit counts (admit.lua)
    {shop}:taxcalc:<sha256(cart)>     a quote's life a Stripe Tax calculation for one cart (JSON)
"""

from __future__ import annotations

PREFIX = "{shop}:"

# Stock (app/services/inventory.py, hold/confirm/release/extend/rebuild/admit.lua).
AVAIL = PREFIX + "avail"
# An inactive product's counter is parked here: holds read AVAIL only, so they refuse the
# SKU like an unknown one, while releases and restocks still keep its count exact.
AVAIL_INACTIVE = AVAIL + ":inactive"
# Unit prices beside the stock, written by the same catalog script: the submit's check
# against Stripe's maximum (admit.lua) reads them, never a per-process copy.
PRICE = PREFIX + "price"
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
_channel_suffix = ":changed"
# Every process's change feed subscribes to all read-model channels with one pattern.
CHECKOUT_CHANNEL_PATTERN = CHECKOUT_PREFIX + "*" + _channel_suffix
# Long-polls in flight, per order, credential and client IP (checkout_status.WaiterCaps);
# a crashed web process's counts lapse after the TTL (longer than the longest wait).
WAITERS_PREFIX = PREFIX + "waiters:"
WAITERS_TTL_SECONDS = 60
# The read model outlives the hold by a day; after that the database answers.
CHECKOUT_KEEP_SECONDS = 24 * 3600
# A publish to a hash with no TTL yet (admit.lua normally sets one): default hold + a day.
CHECKOUT_FALLBACK_TTL_SECONDS = 900 + CHECKOUT_KEEP_SECONDS

# Promotion codes (app/services/promotions.py, admit.lua, unredeem.lua, promo_rebuild.lua):
# the terms, and the redemptions held (one entry per order, given back when it ends
# FAILED or CANCELED), rebuilt from the database with the stock (I9).
PROMOTION_PREFIX = PREFIX + "promo:"

# Admin refund requests (app/services/admin.py).
REFUND_CLAIM_PREFIX = IDEMPOTENCY_PREFIX + "refund:"
REFUND_CLAIM_TTL_SECONDS = 24 * 3600
# A shop event resent from the console, once per Idempotency-Key (app/services/admin.py).
RESEND_CLAIM_PREFIX = IDEMPOTENCY_PREFIX + "resend:"
RESEND_CLAIM_TTL_SECONDS = 24 * 3600

# A refund that failed after its restock takes the units off sale again, once per restock
# (app/services/holds.reclaim_refund_restock, reclaim.lua): the answer is kept this long.
RECLAIM_PREFIX = PREFIX + "reclaim:"
RECLAIM_KEEP_SECONDS = 7 * 24 * 3600

# Buyer retries after a decline (POST /api/checkout/<id>/confirm) and admin captures.
CONFIRM_CLAIM_PREFIX = IDEMPOTENCY_PREFIX + "confirm:"
CAPTURE_CLAIM_PREFIX = IDEMPOTENCY_PREFIX + "capture:"
CONFIRM_CLAIM_TTL_SECONDS = 24 * 3600
# One buyer attempt in flight per order: taken when a confirm is admitted, given back
# when the worker has applied its outcome. The TTL frees an order whose message was
# lost: longer than a redelivery (90 s) plus a Stripe call, shorter than a hold.
CONFIRMING_PREFIX = PREFIX + "confirming:"
CONFIRMING_TTL_SECONDS = 180

# Stripe webhooks (app/services/webhooks.py): the inbox row is the truth.
EVENT_SEEN_PREFIX = PREFIX + "evt:"
EVENT_SEEN_TTL_SECONDS = 30 * 24 * 3600
# A received event's body waits here for the worker (messages carry its id only, since
# Dramatiq logs a failed message with its arguments); as long as a message may wait.
EVENT_BODY_PREFIX = PREFIX + "evtbody:"
EVENT_BODY_TTL_SECONDS = 7 * 24 * 3600

# Actors (app/services/records.order_lock). The holder renews the TTL every third of it,
# so a worker killed mid-actor frees its orders within the TTL, not after its longest call.
ORDER_LOCK_PREFIX = PREFIX + "lock:order:"
ORDER_LOCK_TTL_SECONDS = 15

# Shop webhooks (app/services/shop_webhooks.py): one delivery in flight per endpoint, so
# an endpoint's events go out in order. Longer than the 10 s request timeout.
SHOP_HOOK_LOCK_PREFIX = PREFIX + "lock:shophook:"
SHOP_HOOK_LOCK_TIMEOUT_SECONDS = 60

# The fleet's Stripe request budget (stripe_budget.lua sets their expiry: 2 s and 1 h).
STRIPE_WINDOW = PREFIX + "stripe:window"
STRIPE_BUDGET = PREFIX + "stripe:budget"

# The clock (tasks/clock.py) and its reconciliation (app/services/reconcile.py).
RECONCILE_CHECKPOINT = PREFIX + "reconcile:checkpoint"
CLOCK_CLAIM_PREFIX = PREFIX + "clock:"
CLOCK_CLAIM_TTL_SECONDS = 300

# The dashboard's per-day submit counts (admit.lua, app/services/dashboard.py): counted in
# the admission script's own call, so the submit stays one round trip. Kept a week and a day.
DAY_STATS_PREFIX = PREFIX + "stats:"
DAY_STATS_TTL_SECONDS = 8 * 24 * 3600
DAY_STATS_FIELDS = ("submits", "admitted", "out_of_stock")
# Stripe Tax (app/services/pricing/stripe_tax.py): one calculation per cart, destination,
# shipping option and discount, kept for a quote's life (HOLD_TTL_SECONDS: the time a buyer
# takes from quote to submit) so repeated quotes and the worker's pricing reuse it.
TAX_CALCULATION_PREFIX = PREFIX + "taxcalc:"

# flask-limiter's ``key_prefix`` (app/__init__.py); the limiter names the rest.
RATELIMIT_PREFIX = PREFIX + "ratelimit"

# The operator's console (app/services/operator_sessions.py, app/services/operators.py).
# Sessions are keyed by the sha256 of the cookie's value: a Redis dump signs nobody in.
CONSOLE_SESSION_PREFIX = PREFIX + "console:session:"
CONSOLE_SESSION_IDLE_SECONDS = 30 * 60
CONSOLE_SESSION_MAX_SECONDS = 12 * 3600
CONSOLE_SESSIONS_PREFIX = PREFIX + "console:sessions:"
CONSOLE_FAILURES_PREFIX = PREFIX + "console:failures:"
CONSOLE_LOCKED_PREFIX = PREFIX + "console:locked:"
# Five wrong passwords within 15 minutes lock the account for 15 minutes.
CONSOLE_LOCKOUT_FAILURES = 5
CONSOLE_LOCKOUT_WINDOW_SECONDS = 15 * 60
CONSOLE_LOCKOUT_SECONDS = 15 * 60


def reservation(reservation_id: str) -> str:
    """``{shop}:res:<reservationId>``: one reservation record."""
    return RESERVATION_PREFIX + reservation_id


def idempotency(key_hash: str) -> str:
    """``{shop}:idem:<sha256(key)>``: the submit path's idempotency claim."""
    return IDEMPOTENCY_PREFIX + key_hash


def refund_claim(key_hash: str) -> str:
    """``{shop}:idem:refund:<sha256(key)>``: an admin refund request's idempotency claim."""
    return REFUND_CLAIM_PREFIX + key_hash


def resend_claim(key_hash: str) -> str:
    """``{shop}:idem:resend:<sha256(key)>``: a console resend of a shop event (its id)."""
    return RESEND_CLAIM_PREFIX + key_hash


def confirm_claim(key_hash: str) -> str:
    """``{shop}:idem:confirm:<sha256(key)>``: a buyer's confirm request (fingerprint)."""
    return CONFIRM_CLAIM_PREFIX + key_hash


def confirming(order_id: str) -> str:
    """``{shop}:confirming:<orderId>``: the order's payment attempt in flight (its token)."""
    return CONFIRMING_PREFIX + order_id


def reclaim(order_id: str, restock_event_id: int) -> str:
    """``{shop}:reclaim:<orderId>:<eventId>``: what a failed refund took off sale again."""
    return f"{RECLAIM_PREFIX}{order_id}:{restock_event_id}"


def capture_claim(key_hash: str) -> str:
    """``{shop}:idem:capture:<sha256(key)>``: an admin capture request (fingerprint)."""
    return CAPTURE_CLAIM_PREFIX + key_hash


def checkout(order_id: str) -> str:
    """``{shop}:co:<orderId>``: one order's checkout read model."""
    return CHECKOUT_PREFIX + order_id


def checkout_channel(order_id: str) -> str:
    """``{shop}:co:<orderId>:changed``: the channel announcing a new read-model version."""
    return checkout(order_id) + _channel_suffix


def order_of_channel(channel: str) -> str | None:
    """The order id of a :func:`checkout_channel` name, or None for any other name."""
    if channel.startswith(CHECKOUT_PREFIX) and channel.endswith(_channel_suffix):
        return channel[len(CHECKOUT_PREFIX) : -len(_channel_suffix)]
    return None


def submit_rate(client: str) -> str:
    """``{shop}:ratelimit:submit:<client ip>``: the submit's window, counted by admit.lua."""
    return f"{RATELIMIT_PREFIX}:submit:{client}"


def waiters(kind: str, who: str) -> str:
    """``{shop}:waiters:<kind>:<who>``: long-polls in flight for an order, credential or IP."""
    return f"{WAITERS_PREFIX}{kind}:{who}"


def event_seen(event_id: str) -> str:
    """``{shop}:evt:<eventId>``: set once a Stripe event is processed or ignored."""
    return EVENT_SEEN_PREFIX + event_id


def event_body(event_id: str) -> str:
    """``{shop}:evtbody:<eventId>``: a received event's body, read once by the worker."""
    return EVENT_BODY_PREFIX + event_id


def order_lock(order_id: str) -> str:
    """``{shop}:lock:order:<orderId>``: the per-order actor lock."""
    return ORDER_LOCK_PREFIX + order_id


def shop_hook_lock(endpoint_hash: str) -> str:
    """``{shop}:lock:shophook:<sha256(url)>``: the lock of one shop webhook endpoint."""
    return SHOP_HOOK_LOCK_PREFIX + endpoint_hash


def clock_claim(kind: str, item: str) -> str:
    """``{shop}:clock:<kind>:<item>``: the clock re-enqueued this item recently."""
    return f"{CLOCK_CLAIM_PREFIX}{kind}:{item}"


def console_session(sid_hash: str) -> str:
    """``{shop}:console:session:<sha256(sid)>``: one console session."""
    return CONSOLE_SESSION_PREFIX + sid_hash


def console_sessions(operator_id: int) -> str:
    """``{shop}:console:sessions:<operatorId>``: the hashes of an operator's sessions."""
    return f"{CONSOLE_SESSIONS_PREFIX}{operator_id}"


def console_failures(email_hash: str) -> str:
    """``{shop}:console:failures:<sha256(email)>``: recent wrong passwords for an e-mail."""
    return CONSOLE_FAILURES_PREFIX + email_hash


def console_locked(email_hash: str) -> str:
    """``{shop}:console:locked:<sha256(email)>``: that e-mail's sign-in is locked."""
    return CONSOLE_LOCKED_PREFIX + email_hash


def promotion(code: str) -> str:
    """``{shop}:promo:<code>``: a promotion's terms as admit.lua reads them."""
    return PROMOTION_PREFIX + code


def promotion_orders(code: str) -> str:
    """``{shop}:promo:<code>:orders``: the orders holding a redemption (their buyer keys)."""
    return promotion(code) + ":orders"


def promotion_buyers(code: str) -> str:
    """``{shop}:promo:<code>:buyers``: redemptions held per buyer (e-mail, user id)."""
    return promotion(code) + ":buyers"


def day_stats(day: str) -> str:
    """``{shop}:stats:<YYYY-MM-DD>``: the UTC day's submit counts (admit.lua writes them)."""
    return DAY_STATS_PREFIX + day


def tax_calculation(cart_hash: str) -> str:
    """``{shop}:taxcalc:<sha256(cart)>``: the Stripe Tax calculation of one priced cart."""
    return TAX_CALCULATION_PREFIX + cart_hash
