"""app/console/auth.py: sign-in, sign-out, lockout on the page, CSRF, strangers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from app import keys
from tests.console.conftest import PASSWORD, Clock, csrf_token_of, sign_in


class TestSignIn:
    def test_the_page_has_the_labelled_fields(self, client: Any) -> None:
        page = client.get("/admin/login").get_data(as_text=True)
        assert '<label for="email">Email</label>' in page
        assert '<label for="password">Password</label>' in page
        assert ">Sign in</button>" in page

    def test_right_password_opens_a_session(
        self, app: Any, make_operator: Callable[..., Any], clock: Clock
    ) -> None:
        make_operator("viewer")
        client = app.test_client()
        answer = sign_in(client, "viewer@shop.example")
        assert answer.status_code == 303
        assert answer.headers["Location"].endswith("/admin")  # the dashboard
        cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
        assert "Secure" not in cookie  # plain http in the test
        assert client.get("/admin/orders").status_code == 200

    def test_cookie_is_secure_behind_https(
        self, app: Any, make_operator: Callable[..., Any], clock: Clock
    ) -> None:
        make_operator("viewer")
        client = app.test_client()
        token = csrf_token_of(client)
        answer = client.post(
            "/admin/login",
            base_url="https://localhost",
            headers={"Referer": "https://localhost/admin/login"},
            data={"email": "viewer@shop.example", "password": PASSWORD, "csrf_token": token},
        )
        assert answer.status_code == 303
        assert "Secure" in answer.headers["Set-Cookie"]

    def test_the_session_id_changes_at_sign_in(
        self, app: Any, make_operator: Callable[..., Any], clock: Clock
    ) -> None:
        make_operator("viewer")
        client = app.test_client()
        client.get("/admin/login")
        before = client.get_cookie("console_session", path="/admin")
        sign_in(client, "viewer@shop.example")
        after = client.get_cookie("console_session", path="/admin")
        assert before is not None and after is not None and before.value != after.value

    def test_wrong_password_is_refused(
        self, client: Any, make_operator: Callable[..., Any], clock: Clock
    ) -> None:
        make_operator("viewer")
        answer = sign_in(client, "viewer@shop.example", "wrong password here")
        assert answer.status_code == 401
        assert "Wrong e-mail or password." in answer.get_data(as_text=True)
        assert client.get("/admin/orders").status_code == 302

    def test_five_wrong_passwords_lock_and_the_page_says_so(
        self, client: Any, make_operator: Callable[..., Any], clock: Clock
    ) -> None:
        make_operator("viewer")
        for _ in range(4):
            assert sign_in(client, "viewer@shop.example", "wrong password here").status_code == 401
        fifth = sign_in(client, "viewer@shop.example", "wrong password here")
        assert "locked for 15 minutes" in fifth.get_data(as_text=True)
        right = sign_in(client, "viewer@shop.example")
        assert right.status_code == 401
        assert "locked for 15 minutes" in right.get_data(as_text=True)

    def test_next_stays_inside_the_console(
        self, client: Any, make_operator: Callable[..., Any], clock: Clock
    ) -> None:
        make_operator("viewer")
        token = csrf_token_of(client)
        answer = client.post(
            "/admin/login",
            data={
                "email": "viewer@shop.example",
                "password": PASSWORD,
                "csrf_token": token,
                "next": "https://evil.example/admin",
            },
        )
        assert answer.headers["Location"] == "/admin"  # the dashboard, not another site

    def test_a_stranger_is_sent_to_sign_in(self, client: Any) -> None:
        answer = client.get("/admin/orders?state=PAID")
        assert answer.status_code == 302
        assert "/admin/login?next=" in answer.headers["Location"]


class TestCsrf:
    def test_sign_in_without_the_token_is_403(
        self, client: Any, make_operator: Callable[..., Any]
    ) -> None:
        make_operator("viewer")
        answer = client.post(
            "/admin/login", data={"email": "viewer@shop.example", "password": PASSWORD}
        )
        assert answer.status_code == 403

    def test_a_post_without_the_token_is_403(self, signed_in: Callable[..., Any]) -> None:
        client = signed_in("admin")
        assert client.post("/admin/logout").status_code == 403
        assert client.get("/admin/orders").status_code == 200  # still signed in

    def test_a_wrong_token_is_403(self, signed_in: Callable[..., Any]) -> None:
        client = signed_in("admin")
        assert client.post("/admin/logout", data={"csrf_token": "forged"}).status_code == 403

    def test_the_header_is_accepted(self, signed_in: Callable[..., Any]) -> None:
        client = signed_in("admin")
        token = csrf_token_of(client, "/admin/orders")
        answer = client.post("/admin/logout", headers={"X-CSRFToken": token})
        assert answer.status_code == 303


class TestSignOut:
    def test_sign_out_ends_the_session(self, signed_in: Callable[..., Any]) -> None:
        client = signed_in("viewer")
        token = csrf_token_of(client, "/admin/orders")
        assert client.post("/admin/logout", data={"csrf_token": token}).status_code == 303
        assert client.get("/admin/orders").status_code == 302


class TestHeaders:
    def test_pages_carry_a_strict_csp(self, client: Any) -> None:
        answer = client.get("/admin/login")
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp
        assert answer.headers["Cache-Control"] == "no-store"

    def test_htmx_is_served_by_the_app(self, client: Any) -> None:
        answer = client.get("/admin/static/vendor/htmx-2.0.4.min.js")
        assert answer.status_code == 200
        assert b"htmx" in answer.get_data()[:200]
        assert client.get_cookie("console_session", path="/admin") is None


class TestScope:
    def test_no_csrf_hook_runs_for_the_api(self, app: Any) -> None:
        hooks = app.before_request_funcs.get(None, [])
        assert not any(getattr(hook, "__module__", "").startswith("flask_wtf") for hook in hooks)

    def test_an_api_post_needs_no_csrf_token(self, client: Any) -> None:
        answer = client.post("/api/checkout/quote", json={"items": []})
        assert answer.status_code == 400  # validation, not CSRF
        assert answer.get_json()["error"]["code"] == "validation_failed"


class TestRateLimit:
    @pytest.fixture
    def limited(self, runtime: Any, clock: Clock) -> Any:
        from app import create_app

        config = runtime.config.with_overrides(
            ratelimit_enabled=True, ratelimit_admin_login="2/minute"
        )
        return create_app(config, runtime=runtime).test_client()

    def test_sign_in_posts_are_limited_per_ip(self, limited: Any) -> None:
        token = csrf_token_of(limited)
        form = {"email": "nobody@shop.example", "password": "wrong", "csrf_token": token}
        codes = [limited.post("/admin/login", data=form).status_code for _ in range(3)]
        assert codes == [401, 401, 429]
        refused = limited.post("/admin/login", data=form)
        assert "Too many sign-in attempts" in refused.get_data(as_text=True)
        other_ip = limited.post("/admin/login", data=form, environ_base={"REMOTE_ADDR": "10.0.0.9"})
        assert other_ip.status_code == 401

    def test_the_page_is_limited_apart(self, limited: Any, runtime: Any) -> None:
        """Each page view stores a session for its CSRF token: one address cannot fill
        Redis with them."""
        codes = [limited.get("/admin/login").status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert len(runtime.redis.keys(keys.CONSOLE_SESSION_PREFIX + "*")) <= 2
