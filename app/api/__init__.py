"""The HTTP API: one blueprint per resource, all thin; plus the reference page's."""

from __future__ import annotations

from flask import Flask

from app import web
from app.api import admin, checkout, me, ops, orders, products, webhooks


def register_blueprints(app: Flask) -> None:
    """Attach every blueprint to ``app``."""
    for module in (products, checkout, orders, me, webhooks, admin, ops):
        app.register_blueprint(module.blueprint)
    app.register_blueprint(web.bp)
