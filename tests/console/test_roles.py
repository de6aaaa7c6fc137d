"""app/console/roles.py: the role table, and every console route for every role on the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app.console import roles
from app.console.auth import PUBLIC_ENDPOINTS
from tests.console.conftest import csrf_token_of

ROLES = ("viewer", "operator", "admin")


def console_routes(app: Any) -> list[tuple[str, str, str]]:
    """``(endpoint, method, path)`` of every console route behind a sign-in."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("console.") or rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", "ord_unknown")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            routes.append((rule.endpoint, method, path))
    return routes


class TestRoleTable:
    @pytest.mark.parametrize(
        ("role", "permission", "allowed"),
        [
            ("viewer", roles.READ, True),
            ("viewer", roles.ACT, False),
            ("viewer", roles.MANAGE, False),
            ("operator", roles.READ, True),
            ("operator", roles.ACT, True),
            ("operator", roles.MANAGE, False),
            ("admin", roles.READ, True),
            ("admin", roles.ACT, True),
            ("admin", roles.MANAGE, True),
            ("nobody", roles.READ, False),
            ("admin", "unknown", False),
        ],
    )
    def test_allows(self, role: str, permission: str, allowed: bool) -> None:
        assert roles.allows(role, permission) is allowed

    def test_every_route_names_its_permission(self, app: Any) -> None:
        routes = console_routes(app)
        assert routes
        for endpoint, _method, _path in routes:
            if endpoint == "console.logout":
                continue  # anyone signed in may sign out
            assert getattr(app.view_functions[endpoint], "permission", None) in roles.PERMISSIONS


class TestEveryRouteForEveryRole:
    @pytest.mark.parametrize("role", ROLES)
    def test_the_server_refuses_what_the_role_lacks(
        self, app: Any, signed_in: Callable[..., Any], role: str
    ) -> None:
        client = signed_in(role)
        token = csrf_token_of(client, "/admin/orders")
        for endpoint, method, path in console_routes(app):
            if endpoint == "console.logout":
                continue
            permission = app.view_functions[endpoint].permission
            answer = client.open(path, method=method, headers={"X-CSRFToken": token})
            refused = answer.status_code == 403
            assert refused is not roles.allows(role, permission), (endpoint, method, role)
            assert answer.status_code != 500, (endpoint, method, role)
