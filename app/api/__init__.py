"""The HTTP API: one blueprint per resource, all thin."""

from __future__ import annotations

import importlib.util

from flask import Flask


def register_blueprints(app: Flask) -> None:
    """Attach every blueprint to ``app``."""
    from app.api.admin import blueprint as admin
    from app.api.checkout import blueprint as checkout
    from app.api.ops import blueprint as ops
    from app.api.orders import blueprint as orders
    from app.api.products import blueprint as products
    from app.api.webhooks import blueprint as webhooks

    for blueprint in (products, checkout, orders, webhooks, admin, ops):
        app.register_blueprint(blueprint)
    _register_web_page(app)


def _register_web_page(app: Flask) -> None:
    """The reference checkout page (app/web), when that package is present."""
    if importlib.util.find_spec("app.web") is None:
        return
    from app.web import bp

    app.register_blueprint(bp)
