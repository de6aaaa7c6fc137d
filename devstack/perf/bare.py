"""The baseline: a bare Flask app with nothing but ``/healthz``, served by gunicorn with
the same settings as ours (``gunicorn devstack.perf.bare:app``)."""

from flask import Flask, Response, jsonify

app = Flask(__name__)


@app.get("/healthz")
def healthz() -> Response:
    """What our ``/healthz`` answers, without our middleware."""
    return jsonify({"status": "ok"})
