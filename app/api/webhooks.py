"""``POST /api/webhooks/stripe``: verify the raw body, keep it and enqueue (one Redis
round trip on the Redis broker), answer 200.

Exempt from rate limits and from the card-data guard (Stripe's own events describe
cards by brand and last four digits; the body is verified, never parsed loosely).

Only the types the worker handles (``webhooks.HANDLED_TYPES``) are kept and queued;
any other verified event is acknowledged here (200, the same body) with nothing
stored or queued, and counted in ``checkout_webhook_unhandled_total``.
"""

from __future__ import annotations

import structlog
from flask import Blueprint, Response, request

from app.api.observability import WEBHOOK_EVENTS, WEBHOOK_UNHANDLED
from app.api.requests import body_bytes
from app.context import current_runtime
from app.errors import ServiceUnavailable
from app.services import webhooks

blueprint = Blueprint("webhooks", __name__, url_prefix="/api/webhooks")
log = structlog.get_logger("app.api.webhooks")

# Every acknowledgement is this body: built once (jsonify costs a JSON encoding each time).
RECEIVED = b'{"received":true}\n'


@blueprint.post("/stripe")
def stripe_webhook() -> Response:
    """Verify the signature (SignatureInvalid / MalformedJSON → 400), then enqueue the
    handled types; acknowledge the others at once."""
    payload = body_bytes(cache=False)
    header = request.environ.get("HTTP_STRIPE_SIGNATURE", "")  # as request.headers reads it
    runtime = current_runtime()
    event = webhooks.verified_event(runtime.gateway, payload, header)
    event_id, event_type = event["id"], event["type"]
    if not webhooks.handled(event_type):
        # Nothing a handler reads: no body kept, no message, no inbox row (docs/payments.md).
        WEBHOOK_UNHANDLED.labels(event_type).inc()
        return _received()
    try:
        # On the Redis broker the message rides with the kept body: one round trip.
        message = runtime.jobs.scripted_handle_stripe_event(event_id)
        webhooks.receive(runtime.redis, event, payload, message)
        if message is None:
            runtime.jobs.handle_stripe_event(event_id)
        else:
            message.written()
    except Exception as exc:
        # Not acknowledged: Stripe retries the delivery later.
        log.error("webhook_enqueue_failed", event_id=event_id, error_class=type(exc).__name__)
        raise ServiceUnavailable("Could not queue the event; retry.") from exc
    WEBHOOK_EVENTS.labels(event_type).inc()
    log.info("webhook_received", event_id=event_id, event_type=event_type)
    return _received()


def _received() -> Response:
    """``200 {"received": true}``, Stripe's acknowledgement."""
    return Response(RECEIVED, mimetype="application/json")
