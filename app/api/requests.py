"""Reading request bodies: content type, size, strict JSON, and the card-data guard."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from flask import Request, request
from werkzeug.exceptions import RequestEntityTooLarge

from app import strict_json
from app.errors import CardDataRejected, InvalidRequest, MalformedJSON, UnsupportedMediaType
from app.schemas.card_data import contains_card_data, header_looks_like_pan
from app.schemas.checkout import IdempotencyKeySchema, valid_idempotency_key
from app.schemas.common import load, unencodable_paths

_key_schema = IdempotencyKeySchema()


class BodyLimitedRequest(Request):
    """Flask's request, with a body sent without Content-Length (chunked) held to the
    same ``MAX_CONTENT_LENGTH`` as one with it.

    werkzeug stops reading such a stream at the limit and returns what it read, so a
    longer body would be silently cut; one byte more is let through here and
    :func:`body_bytes` refuses a body longer than the limit (413).
    """

    @property
    def max_content_length(self) -> int | None:
        limit = Request.max_content_length.fget(self)  # type: ignore[attr-defined]
        if limit is not None and self.content_length is None:
            return int(limit) + 1
        return limit

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        Request.max_content_length.fset(self, value)  # type: ignore[attr-defined]


def body_bytes(*, cache: bool = True) -> bytes:
    """The raw request body; 413 (``payload_too_large``) when longer than the limit."""
    data = request.get_data(cache=cache)
    # The request's own limit: a route may raise it (the catalog sync) before reading.
    limit = Request.max_content_length.fget(request)  # type: ignore[attr-defined]
    if limit is not None and len(data) > limit:
        raise RequestEntityTooLarge()
    return data


def parse_json(raw: bytes) -> Any:
    """Strictly parse JSON bytes (see app.strict_json); raises MalformedJSON."""
    try:
        return strict_json.loads(raw)
    except ValueError as exc:
        raise MalformedJSON(f"The body is not valid JSON: {_reason(exc)}.") from exc


def _reason(exc: ValueError) -> str:
    """What was wrong, in the parser's words (never the body's text)."""
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at position {exc.pos}"
    return str(exc)


def json_object(
    *, check_card_data: bool = True, not_card_data: Collection[str] = ()
) -> dict[str, Any]:
    """The request's JSON object body, refused on wrong type, bad JSON or card data.

    ``not_card_data``: keys whose values the card guard skips (admin routes only).
    """
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType("Send the body as application/json.")
    raw = body_bytes()  # the size limit (413), chunked bodies included
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise MalformedJSON("The body must be a JSON object.")
    if check_card_data and contains_card_data(body, not_card_data=not_card_data):
        # Never echo or log the value: SAQ-A means card data must not touch us at all.
        raise CardDataRejected(
            "Card details must go to Stripe directly (Payment Element), never to this API."
        )
    broken = unencodable_paths(body) if may_hold_unencodable(raw) else None
    if broken:
        raise InvalidRequest("The request has invalid fields.", fields=broken)
    return body


def may_hold_unencodable(raw: bytes) -> bool:
    """Whether a body parsed from ``raw`` can hold a lone surrogate or a NUL.

    Both reach a parsed string only through a ``\\u`` escape: UTF-8 decoding never
    yields a surrogate, and the strict parser refuses a raw control character. Without
    the escape the walk (:func:`unencodable_paths`) is skipped.
    """
    return b"\\u" in raw


def idempotency_key(body: dict[str, Any] | None = None) -> str:
    """The Idempotency-Key header (or, where ``body`` is given, its ``idempotencyKey``).

    Header and body must agree when both are sent; the value is validated like a field
    (8-255 characters), so a bad key is ``validation_failed`` on ``idempotencyKey``.
    """
    header = request.headers.get("Idempotency-Key")
    in_body = body.get("idempotencyKey") if body is not None else None
    if header is not None and in_body is not None and header != in_body:
        raise InvalidRequest(
            "Idempotency-Key header and body disagree.",
            fields={"idempotencyKey": ["Header and body values differ."]},
        )
    value = header if header is not None else in_body
    if value is None:
        raise InvalidRequest(
            "An Idempotency-Key is required.",
            fields={"idempotencyKey": ["Missing: send the Idempotency-Key header."]},
        )
    if isinstance(value, str) and header_looks_like_pan(value):
        # The key is stored with the order and its read model: never a card number (I6).
        raise CardDataRejected("A card number is not an Idempotency-Key; never send card data.")
    valid = valid_idempotency_key(value)  # the common case, without a schema load
    if valid is not None:
        return valid
    return str(load(_key_schema, {"idempotencyKey": value})["idempotency_key"])


def refuse_nul_parameters() -> None:
    """``before_request``: a NUL in a path or query parameter is 400 ``validation_failed``
    on that parameter, named as documented (``orderId``, ``category``); no id, SKU or
    filter can hold one, and PostgreSQL refuses it in a query (a 500 otherwise)."""
    environ = request.environ
    if not _may_hold_nul(environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", "")):
        return  # the common case, without parsing the query string
    path = {_camel(name): value for name, value in (request.view_args or {}).items()}
    fields = {
        name.replace("\x00", "?"): ["May not contain NUL."]
        for name, value in [*path.items(), *request.args.items(multi=True)]
        if isinstance(value, str) and "\x00" in value
    }
    if fields:
        raise InvalidRequest("The request has invalid parameters.", fields=fields)


def _may_hold_nul(path: str, query: str) -> bool:
    """Whether a NUL can be in the path or query parameters: raw, or %00 still encoded."""
    return "\x00" in path or "\x00" in query or "%00" in query or "%00" in path


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)
