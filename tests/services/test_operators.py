"""app/services/operators.py: accounts, argon2id, and the sign-in lockout window."""

from __future__ import annotations

from typing import Any

import pytest

from app import keys
from app.errors import AccountLocked, InvalidRequest, InvalidState, SignInRefused
from app.services import operators

PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"
T0 = 1_800_000_000.0


@pytest.fixture
def account(runtime: Any) -> Any:
    return operators.create_operator("Ops@Shop.example ", "operator", PASSWORD)


def fail(redis: Any, times: int, now: float) -> None:
    for _ in range(times):
        with pytest.raises(SignInRefused):
            operators.authenticate(redis, "ops@shop.example", WRONG, now=now)


class TestAccounts:
    def test_email_is_stored_lower_case_and_the_hash_is_argon2id(self, account: Any) -> None:
        assert account.email == "ops@shop.example"
        assert account.password_hash.startswith("$argon2id$")
        assert PASSWORD not in account.password_hash

    @pytest.mark.parametrize(
        ("email", "role", "password"),
        [
            ("not-an-email", "viewer", PASSWORD),
            ("a@b.example", "root", PASSWORD),
            ("a@b.example", "viewer", "short"),
        ],
    )
    def test_bad_fields_are_refused(
        self, runtime: Any, email: str, role: str, password: str
    ) -> None:
        with pytest.raises(InvalidRequest):
            operators.create_operator(email, role, password)


class TestChangesFromTheConsole:
    def test_role_and_enable_and_the_last_enabled_admin_stays(
        self, runtime: Any, account: Any
    ) -> None:
        admin = operators.create_operator("boss@shop.example", "admin", PASSWORD)
        assert operators.change_role(account.email, "admin", by=admin).role == "admin"
        assert operators.change_role(account.email, "viewer", by=admin).role == "viewer"
        with pytest.raises(InvalidState, match="your own account"):
            operators.change_role(admin.email, "operator", by=admin)
        # Whoever asks (here a viewer, as a guard), the only enabled admin stays one.
        with pytest.raises(InvalidState, match="the last enabled admin"):
            operators.disable_operator(runtime.redis, admin.email, by=account)
        disabled = operators.disable_operator(runtime.redis, account.email, by=admin)
        assert disabled.disabled and disabled.session_epoch == account.session_epoch + 1
        assert not operators.enable_operator(account.email, by=admin).disabled

    def test_the_cli_is_the_way_back_in(self, runtime: Any) -> None:
        admin = operators.create_operator("boss@shop.example", "admin", PASSWORD)
        assert operators.disable_operator(runtime.redis, admin.email).disabled  # by=None


class TestLockout:
    def test_four_wrong_then_the_right_one_signs_in(self, runtime: Any, account: Any) -> None:
        fail(runtime.redis, 4, T0)
        signed = operators.authenticate(runtime.redis, "ops@shop.example", PASSWORD, now=T0 + 1)
        assert signed.id == account.id

    def test_the_fifth_wrong_locks_and_the_right_one_is_refused(
        self, runtime: Any, account: Any
    ) -> None:
        fail(runtime.redis, 4, T0)
        with pytest.raises(AccountLocked):
            operators.authenticate(runtime.redis, "ops@shop.example", WRONG, now=T0 + 10)
        with pytest.raises(AccountLocked, match="locked for 15 minutes"):
            operators.authenticate(runtime.redis, "ops@shop.example", PASSWORD, now=T0 + 11)

    def test_the_lock_ends_after_15_minutes(self, runtime: Any, account: Any) -> None:
        fail(runtime.redis, 4, T0)
        with pytest.raises(AccountLocked):
            operators.authenticate(runtime.redis, "ops@shop.example", WRONG, now=T0)
        with pytest.raises(AccountLocked):
            operators.authenticate(runtime.redis, "ops@shop.example", PASSWORD, now=T0 + 899)
        operators.authenticate(runtime.redis, "ops@shop.example", PASSWORD, now=T0 + 901)

    def test_failures_older_than_the_window_do_not_count(self, runtime: Any, account: Any) -> None:
        fail(runtime.redis, 4, T0)
        fail(runtime.redis, 1, T0 + 15 * 60 + 1)  # the first four have left the window
        fail(runtime.redis, 3, T0 + 15 * 60 + 2)
        with pytest.raises(AccountLocked):
            operators.authenticate(runtime.redis, "ops@shop.example", WRONG, now=T0 + 15 * 60 + 3)

    def test_a_success_clears_the_count(self, runtime: Any, account: Any) -> None:
        fail(runtime.redis, 4, T0)
        operators.authenticate(runtime.redis, "ops@shop.example", PASSWORD, now=T0 + 1)
        fail(runtime.redis, 4, T0 + 2)

    def test_one_account_locked_leaves_another_alone(self, runtime: Any, account: Any) -> None:
        operators.create_operator("other@shop.example", "viewer", PASSWORD)
        fail(runtime.redis, 4, T0)
        with pytest.raises(AccountLocked):
            operators.authenticate(runtime.redis, "ops@shop.example", WRONG, now=T0)
        operators.authenticate(runtime.redis, "other@shop.example", PASSWORD, now=T0)

    def test_an_unknown_email_is_refused_like_a_wrong_password(self, runtime: Any) -> None:
        with pytest.raises(SignInRefused, match=r"Wrong e-mail or password\."):
            operators.authenticate(runtime.redis, "nobody@shop.example", PASSWORD, now=T0)

    def test_the_lock_key_expires_with_the_lock(self, runtime: Any, account: Any) -> None:
        fail(runtime.redis, 4, T0)
        with pytest.raises(AccountLocked):
            operators.authenticate(runtime.redis, "ops@shop.example", WRONG, now=T0)
        (locked,) = runtime.redis.keys(keys.CONSOLE_LOCKED_PREFIX + "*")
        assert 0 < runtime.redis.ttl(locked) <= keys.CONSOLE_LOCKOUT_SECONDS


class TestTiming:
    def test_an_unknown_email_is_hashed_too(self, runtime: Any, monkeypatch: Any) -> None:
        real = operators._hasher
        calls: list[str] = []

        class Spy:
            def verify(self, hash_: str, password: str) -> bool:
                calls.append(hash_)
                return real.verify(hash_, password)

        monkeypatch.setattr(operators, "_hasher", Spy())
        with pytest.raises(SignInRefused):
            operators.authenticate(runtime.redis, "nobody@shop.example", PASSWORD, now=T0)
        assert calls == [operators._DUMMY_HASH]


@pytest.mark.usefixtures("db")
class TestOnRealRedis:
    """The lockout's pipeline and the session index behave alike on fakeredis and Redis."""

    def test_lockout_and_revocation(self, any_redis: Any) -> None:
        from app.services import operator_sessions

        account = operators.create_operator("ops@shop.example", "operator", PASSWORD)
        for _ in range(4):
            with pytest.raises(SignInRefused):
                operators.authenticate(any_redis, "ops@shop.example", WRONG, now=T0)
        with pytest.raises(AccountLocked):
            operators.authenticate(any_redis, "ops@shop.example", WRONG, now=T0)
        with pytest.raises(AccountLocked):
            operators.authenticate(any_redis, "ops@shop.example", PASSWORD, now=T0 + 1)
        for sid in ("one-session-id", "another-session-id"):
            operator_sessions.save(any_redis, sid, {"operatorId": account.id}, T0, touch=True)
        assert operator_sessions.load(any_redis, "one-session-id", T0 + 60) is not None
        assert operator_sessions.revoke_all(any_redis, account.id) == 2
        assert operator_sessions.load(any_redis, "one-session-id", T0 + 60) is None
