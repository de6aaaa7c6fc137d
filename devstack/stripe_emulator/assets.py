"""The Stripe.js stand-in's files, served at ``/js.stripe.com/v3/``; the script also at
``/js.stripe.com/<release train>/stripe.js``, the URL a current ``@stripe/stripe-js`` loads
(the script announces the train of its own URL as ``Stripe.version``).

The files live in ``stripejs/`` beside this module (written separately); the script
finds the emulator's base URL from its own ``src`` origin, so the page needs only
``<script src="http://127.0.0.1:PORT/js.stripe.com/v3/">``.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from .errors import StripeError

STRIPEJS_DIR = Path(__file__).with_name("stripejs")
INDEX = "stripe.js"
TYPES = {
    ".js": "application/javascript",
    ".mjs": "application/javascript",
    ".css": "text/css",
    ".map": "application/json",
    ".html": "text/html",
}

# Stripe.js' release trains are lowercase words (`basil`, `clover`, `endive`, …).
RELEASE_TRAIN = re.compile(r"[a-z]+")

bp = Blueprint("stripejs", __name__, url_prefix="/js.stripe.com/v3")
trains = Blueprint("stripejs_trains", __name__, url_prefix="/js.stripe.com")


@trains.get("/<train>/stripe.js")
def by_release_train(train: str) -> Response:
    """``/js.stripe.com/<train>/stripe.js``: the script, announcing ``train``."""
    if not RELEASE_TRAIN.fullmatch(train):
        raise StripeError(404, "invalid_request_error", f"No Stripe.js release '{train}'.")
    return asset(INDEX)


@bp.get("/")
def index() -> Response:
    """``/js.stripe.com/v3/``: the script itself, as on Stripe's CDN."""
    return asset(INDEX)


@bp.get("/<path:name>")
def asset(name: str) -> Response:
    """Any other file of the stand-in, by name."""
    path = (STRIPEJS_DIR / name).resolve()
    if STRIPEJS_DIR.resolve() not in path.parents or not path.is_file():
        raise StripeError(404, "invalid_request_error", f"No Stripe.js asset named '{name}'.")
    mimetype = (
        TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    response = send_from_directory(STRIPEJS_DIR, name, mimetype=mimetype, max_age=0)
    # Always revalidate: the stand-in changes during development.
    response.headers["Cache-Control"] = "no-cache"
    return response
