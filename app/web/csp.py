"""The Content-Security-Policy of the reference checkout page.

Only our origin and the Stripe.js origin in use are allowed. Offline that is the
emulator (it serves the Stripe.js stand-in and answers its API calls, so it is also in
``connect-src``); with real keys it is js.stripe.com plus the API and 3-D Secure
origins Stripe documents for Stripe.js.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from app.config import Config

STRIPE_JS_ORIGIN = "https://js.stripe.com"
# Origins Stripe.js itself talks to or frames (Stripe's CSP guide for Stripe.js).
STRIPE_CONNECT = ("https://api.stripe.com",)
STRIPE_FRAMES = ("https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com")


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(config: Config) -> str:
    """The CSP header value for pages served with ``config``."""
    js_origin = origin_of(config.stripe_js_url)
    connect = ["'self'", js_origin]
    frames = [js_origin]
    if js_origin == STRIPE_JS_ORIGIN:
        connect += STRIPE_CONNECT
        frames = list(STRIPE_FRAMES)
    elif config.stripe_api_base:
        api_origin = origin_of(config.stripe_api_base)
        if api_origin not in connect:
            connect.append(api_origin)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", js_origin],
        "connect-src": connect,
        "frame-src": frames,
        # Stripe.js injects its own <style> element (the real one and the stand-in).
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", js_origin],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())
