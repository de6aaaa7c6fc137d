"""app/console/session.py + app/services/operator_sessions.py: expiry and revocation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app import keys
from app.services import operators
from tests.console.conftest import PASSWORD, Clock, sign_in

MINUTE = 60


def signed_in_now(client: Any) -> bool:
    """Whether the client's session still opens a page (a stranger is redirected)."""
    return client.get("/admin/orders").status_code == 200


class TestIdleExpiry:
    def test_use_within_30_minutes_keeps_the_session(
        self, signed_in: Callable[..., Any], clock: Clock
    ) -> None:
        client = signed_in("viewer")
        for _ in range(3):
            clock.advance(29 * MINUTE)
            assert signed_in_now(client)

    def test_31_idle_minutes_end_it(self, signed_in: Callable[..., Any], clock: Clock) -> None:
        client = signed_in("viewer")
        clock.advance(31 * MINUTE)
        assert not signed_in_now(client)
        clock.advance(-30 * MINUTE)  # the session was deleted, not only refused
        assert not signed_in_now(client)


class TestAbsoluteExpiry:
    def test_12_hours_end_even_a_busy_session(
        self, signed_in: Callable[..., Any], clock: Clock
    ) -> None:
        client = signed_in("viewer")
        for _ in range(12 * 3):  # every 20 minutes for 12 hours
            assert signed_in_now(client)
            clock.advance(20 * MINUTE)
        clock.advance(1)
        assert not signed_in_now(client)

    def test_the_redis_ttl_follows_the_nearer_limit(
        self, signed_in: Callable[..., Any], runtime: Any
    ) -> None:
        signed_in("viewer")
        (key,) = runtime.redis.keys(keys.CONSOLE_SESSION_PREFIX + "*")
        assert 0 < runtime.redis.ttl(key) <= keys.CONSOLE_SESSION_IDLE_SECONDS


class TestRevocation:
    def test_a_password_change_ends_every_session(
        self, app: Any, signed_in: Callable[..., Any], runtime: Any
    ) -> None:
        first = signed_in("operator")
        second = app.test_client()
        sign_in(second, first.operator.email)
        assert signed_in_now(first) and signed_in_now(second)
        operators.set_password(runtime.redis, first.operator.email, "another long password")
        assert not signed_in_now(first)
        assert not signed_in_now(second)
        assert runtime.redis.keys(keys.CONSOLE_SESSION_PREFIX + "*") == []
        assert sign_in(second, first.operator.email, "another long password").status_code == 303

    def test_disabling_ends_every_session_and_sign_in(
        self, app: Any, signed_in: Callable[..., Any], runtime: Any
    ) -> None:
        client = signed_in("operator")
        operators.disable_operator(runtime.redis, client.operator.email)
        assert not signed_in_now(client)
        assert sign_in(app.test_client(), client.operator.email, PASSWORD).status_code == 401

    def test_a_session_redis_kept_is_refused_after_the_epoch_moved(
        self, signed_in: Callable[..., Any], runtime: Any
    ) -> None:
        client = signed_in("operator")
        stored = {
            k: runtime.redis.get(k) for k in runtime.redis.keys(keys.CONSOLE_SESSION_PREFIX + "*")
        }
        operators.set_password(runtime.redis, client.operator.email, "another long password")
        for key, value in stored.items():  # a revocation that raced the sign-in
            runtime.redis.set(key, value)
        assert not signed_in_now(client)


class TestCookieScope:
    def test_the_api_never_opens_a_console_session(self, client: Any, runtime: Any) -> None:
        client.get("/api/products")
        client.get("/healthz")
        assert runtime.redis.keys(keys.CONSOLE_SESSION_PREFIX + "*") == []
