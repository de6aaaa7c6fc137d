"""Fixtures for the console: operators of each role, a clock to move, signed-in clients."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

PASSWORD = "correct horse battery staple"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A clock the session interface reads; tests move it forward."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def clock(app: Any) -> Clock:
    """The console's clock, under the test's control."""
    moving = Clock()
    app.session_interface.clock = moving
    return moving


@pytest.fixture
def make_operator(runtime: Any) -> Callable[..., Any]:
    """Create an operator account: ``make_operator("viewer")``."""
    from app.services.operators import create_operator

    def make(role: str = "operator", email: str | None = None) -> Any:
        return create_operator(email or f"{role}@shop.example", role, PASSWORD)

    return make


def csrf_token_of(client: Any, path: str = "/admin/login") -> str:
    """The CSRF token a page of the console hands to this client's session."""
    page = client.get(path)
    match = _CSRF_FIELD.search(page.get_data(as_text=True))
    assert match, page.get_data(as_text=True)[:500]
    return match.group(1)


def sign_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    """Post the sign-in form as a browser would (token from the page first)."""
    token = csrf_token_of(client)
    return client.post(
        "/admin/login", data={"email": email, "password": password, "csrf_token": token}
    )


@pytest.fixture
def signed_in(app: Any, make_operator: Callable[..., Any], clock: Clock) -> Callable[..., Any]:
    """A test client signed in as a new operator of ``role``: ``signed_in("viewer")``."""

    def open_session(role: str = "operator") -> Any:
        operator = make_operator(role)
        client = app.test_client()
        answer = sign_in(client, operator.email)
        assert answer.status_code == 303, answer.get_data(as_text=True)[:500]
        client.operator = operator
        return client

    return open_session


# The API tests' orders (a PENDING, a PAID and an AUTHORIZED one), shared rather than
# copied: pytest registers fixtures imported into a conftest.
from tests.api.conftest import authorized_order, paid_order, pending_order  # noqa: E402

__all__ = ["authorized_order", "paid_order", "pending_order"]
