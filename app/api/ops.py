"""Operations endpoints: liveness, readiness, metrics, the OpenAPI document and its page."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api import auth
from app.api.observability import metrics_registry
from app.api.openapi import build_spec
from app.context import current_database, current_runtime
from app.services import health

blueprint = Blueprint("ops", __name__)

DOCS_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
    "padding:0 1rem}code,pre{background:#f4f4f4;padding:.1rem .3rem}pre{padding:.6rem;"
    "overflow:auto}h2{border-top:1px solid #ddd;padding-top:1rem}"
    "summary{cursor:pointer}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(DOCS_STYLE.encode()).digest()).decode()
# The page has no script and one inline style (allowed by its hash); nothing else loads.
DOCS_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


@blueprint.get("/healthz")
def healthz() -> Response:
    """Liveness: the process answers."""
    return jsonify({"status": "ok"})


@blueprint.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: the database and Redis both answer (503 otherwise)."""
    checks = health.readiness(current_database, lambda: current_runtime().redis)
    ready = all(value == "ok" for value in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), (
        200 if ready else 503
    )


@blueprint.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition: every process on this host in multiprocess mode."""
    auth.require_metrics_access()
    # content_type, not mimetype: CONTENT_TYPE_LATEST has its charset already, and Flask
    # would add a second one, which Prometheus 3's parser refuses.
    return Response(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)


def _spec() -> dict[str, Any]:
    cached = current_app.extensions.get("checkout_openapi")
    if cached is None:
        cached = current_app.extensions["checkout_openapi"] = build_spec()
    return cached


@blueprint.get("/openapi.json")
def openapi_json() -> Response:
    """The OpenAPI 3 document."""
    return jsonify(_spec())


@blueprint.get("/docs")
def docs() -> Response:
    """The document as a plain HTML page: no scripts, no CDN, works offline."""
    response = Response(render_docs(_spec()), mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    return response


def render_docs(spec: dict[str, Any]) -> str:
    """Render the OpenAPI document as a self-contained HTML page."""
    esc = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(spec['info']['title'])} API</title>",
        f"<style>{DOCS_STYLE}</style></head><body>",
        f"<h1>{esc(spec['info']['title'])} <small>{esc(spec['info']['version'])}</small></h1>",
        f"<p>{esc(spec['info'].get('description', ''))}</p>",
        "<p><a href='/openapi.json'>openapi.json</a></p>",
    ]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            parts.append(f"<h2><code>{esc(method.upper())} {esc(path)}</code></h2>")
            parts.append(f"<p>{esc(op.get('summary', ''))}</p>")
            for param in op.get("parameters", []):
                parts.append(
                    f"<p>{esc(param['in'])} <code>{esc(param['name'])}</code>"
                    f"{' (required)' if param.get('required') else ''}</p>"
                )
            body = op.get("requestBody")
            if body:
                schema = body["content"]["application/json"]["schema"]
                parts.append(_details("Request body", schema, spec))
            parts.append("<ul>")
            for status, response in op["responses"].items():
                parts.append(f"<li><b>{esc(str(status))}</b> {esc(response['description'])}</li>")
            parts.append("</ul>")
    parts.append("</body></html>")
    return "".join(parts)


def _details(title: str, schema: dict[str, Any], spec: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    name = ref.rsplit("/", 1)[-1]
    resolved = spec.get("components", {}).get("schemas", {}).get(name, schema)
    text = json.dumps(resolved, indent=2)
    return (
        f"<details><summary>{html.escape(title)} ({html.escape(name or 'inline')})</summary>"
        f"<pre>{html.escape(text)}</pre></details>"
    )
