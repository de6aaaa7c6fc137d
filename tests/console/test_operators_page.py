"""app/console/operators.py: the Operators page (admins only): list, create, change role,
disable / enable, set password; an admin never disables or demotes themself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from structlog.testing import capture_logs

from app.console import roles
from models import Operator
from tests.console.conftest import PASSWORD, csrf_token_of, sign_in

NEW_PASSWORD = "a new and long passphrase"


def post(client: Any, path: str, **fields: str) -> Any:
    """Post an Operators form as the page renders it (with its CSRF token)."""
    token = csrf_token_of(client, "/admin/operators")
    return client.post(path, data={"csrf_token": token, **fields})


def account(email: str) -> Operator:
    return Operator.get(Operator.email == email)


def test_every_operators_route_is_for_admins(app: Any) -> None:
    endpoints = [rule.endpoint for rule in app.url_map.iter_rules() if "/operators" in rule.rule]
    assert len(endpoints) == 6
    assert {app.view_functions[e].permission for e in endpoints} == {roles.MANAGE}


class TestOperatorsPage:
    def test_admins_only_and_only_they_get_the_nav_entry(
        self, signed_in: Callable[..., Any]
    ) -> None:
        for role in ("viewer", "operator"):
            client = signed_in(role)
            assert client.get("/admin/operators").status_code == 403
            assert 'href="/admin/operators"' not in client.get("/admin/orders").get_data(
                as_text=True
            )
        admin = signed_in("admin")
        page = admin.get("/admin/operators").get_data(as_text=True)
        assert 'href="/admin/operators" aria-current="page"' in page
        for email in ("viewer@shop.example", "operator@shop.example", "admin@shop.example"):
            assert email in page
        assert "never" not in page.split("admin@shop.example")[1].split("</tr>")[0]  # signed in

    def test_create_names_the_admin_and_never_echoes_the_password(
        self, signed_in: Callable[..., Any]
    ) -> None:
        admin = signed_in("admin")
        with capture_logs() as logs:
            answer = post(
                admin, "/admin/operators", email="New@Shop.example", role="operator",
                password=NEW_PASSWORD,
            )  # fmt: skip
        assert answer.status_code == 303
        made = account("new@shop.example")
        assert (made.role, made.disabled) == ("operator", False)
        page = admin.get("/admin/operators").get_data(as_text=True)
        assert "Created new@shop.example (operator)." in page and NEW_PASSWORD not in page
        (line,) = [entry for entry in logs if entry["event"] == "operator_created"]
        assert line["actor"] == "operator:admin@shop.example"
        assert NEW_PASSWORD not in repr(logs)
        assert sign_in(admin.application.test_client(), made.email, NEW_PASSWORD).status_code == 303

    def test_a_refused_create_says_why_and_keeps_no_password(
        self, signed_in: Callable[..., Any]
    ) -> None:
        admin = signed_in("admin")
        cases = (
            ({"email": "admin@shop.example", "role": "viewer"}, "with this e-mail exists."),
            ({"email": "not-an-email", "role": "viewer"}, "Not an e-mail address."),
            ({"email": "x@shop.example", "role": "owner"}, "Must be one of"),
        )
        for fields, message in cases:
            answer = post(admin, "/admin/operators", password=NEW_PASSWORD, **fields)
            assert answer.status_code == 400, fields
            page = answer.get_data(as_text=True)
            assert message in page and NEW_PASSWORD not in page
        short = post(
            admin, "/admin/operators", email="y@shop.example", role="viewer", password="short"
        )
        assert short.status_code == 400
        assert "A password has 8 to 1024 characters." in short.get_data(as_text=True)
        assert (
            not Operator.select()
            .where(Operator.email.in_(["x@shop.example", "y@shop.example"]))
            .exists()
        )

    def test_change_role_and_the_new_role_applies_at_once(
        self, signed_in: Callable[..., Any]
    ) -> None:
        viewer = signed_in("viewer")
        admin = signed_in("admin")
        answer = post(admin, "/admin/operators/role", email="viewer@shop.example", role="operator")
        assert answer.status_code == 303
        assert account("viewer@shop.example").role == "operator"
        token = csrf_token_of(viewer, "/admin/orders")
        refund = viewer.post("/admin/orders/ord_unknown/refund", headers={"X-CSRFToken": token})
        assert refund.status_code != 403  # an operator now (404: no such order)

    def test_an_admin_cannot_disable_or_demote_themself(
        self, signed_in: Callable[..., Any]
    ) -> None:
        admin = signed_in("admin")
        me = "admin@shop.example"
        for path, fields in (
            ("/admin/operators/role", {"role": "viewer"}),
            ("/admin/operators/disable", {}),
        ):
            answer = post(admin, path, email=me, **fields)
            assert answer.status_code == 409
            assert "your own account" in answer.get_data(as_text=True)
        assert (account(me).role, account(me).disabled) == ("admin", False)
        page = admin.get("/admin/operators").get_data(as_text=True)
        assert f"Role of {me}" not in page and f"Disable {me}" not in page  # not offered

    def test_disable_ends_the_sessions_and_enable_lets_them_sign_in_again(
        self, signed_in: Callable[..., Any]
    ) -> None:
        operator = signed_in("operator")
        admin = signed_in("admin")
        with capture_logs() as logs:
            answer = post(admin, "/admin/operators/disable", email="operator@shop.example")
        assert answer.status_code == 303 and account("operator@shop.example").disabled
        assert operator.get("/admin/orders").status_code == 302  # signed out
        (line,) = [entry for entry in logs if entry["event"] == "operator_disabled"]
        assert (line["actor"], line["operator"]) == (
            "operator:admin@shop.example",
            "operator@shop.example",
        )
        again = operator.application.test_client()
        assert sign_in(again, "operator@shop.example").status_code == 401
        assert (
            post(admin, "/admin/operators/enable", email="operator@shop.example").status_code == 303
        )
        assert sign_in(again, "operator@shop.example").status_code == 303

    def test_set_password_ends_the_sessions(self, signed_in: Callable[..., Any]) -> None:
        viewer = signed_in("viewer")
        admin = signed_in("admin")
        answer = post(
            admin, "/admin/operators/password", email="viewer@shop.example", password=NEW_PASSWORD
        )
        assert answer.status_code == 303
        assert viewer.get("/admin/orders").status_code == 302
        fresh = viewer.application.test_client()
        assert sign_in(fresh, "viewer@shop.example", PASSWORD).status_code == 401
        assert sign_in(fresh, "viewer@shop.example", NEW_PASSWORD).status_code == 303

    def test_unknown_account_is_404_and_no_csrf_is_403(self, signed_in: Callable[..., Any]) -> None:
        admin = signed_in("admin")
        answer = post(admin, "/admin/operators/disable", email="ghost@shop.example")
        assert answer.status_code == 404
        assert "No operator with this e-mail." in answer.get_data(as_text=True)
        refused = admin.post(
            "/admin/operators",
            data={"email": "z@shop.example", "role": "viewer", "password": NEW_PASSWORD},
        )
        assert refused.status_code == 403
        assert not Operator.select().where(Operator.email == "z@shop.example").exists()
