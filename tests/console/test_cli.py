"""app/console/cli.py: ``flask operators ...`` reads passwords from stdin, never shows them."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from app.services import operators

SECRET = "a-very-long-secret-passphrase"


def invoke(app: Any, *args: str, stdin: str | None = None) -> Any:
    return app.test_cli_runner().invoke(args=["operators", *args], input=stdin)


class TestOperatorsCli:
    def test_create_reads_the_password_from_stdin(
        self, app: Any, runtime: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        result = invoke(
            app, "create", "Ops@Shop.example", "--role", "operator", "--password-stdin",
            stdin=SECRET + "\n",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "created ops@shop.example (operator)" in result.output
        assert SECRET not in result.output
        assert SECRET not in caplog.text
        operator = operators.authenticate(runtime.redis, "ops@shop.example", SECRET, now=0.0)
        assert operator.role == "operator"
        assert operator.password_hash.startswith("$argon2id$")

    def test_a_refused_password_is_not_repeated(
        self, app: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        result = invoke(
            app, "create", "ops@shop.example", "--role", "viewer", "--password-stdin",
            stdin="sEcr3t7\n",
        )  # fmt: skip
        assert result.exit_code != 0
        assert "8 to 1024 characters" in result.output
        assert "sEcr3t7" not in result.output and "sEcr3t7" not in caplog.text

    def test_the_prompt_hides_the_password(self, app: Any) -> None:
        result = invoke(app, "create", "ops@shop.example", "--role", "viewer",
                        stdin=f"{SECRET}\n{SECRET}\n")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output

    def test_duplicate_and_bad_role(self, app: Any) -> None:
        args = ("create", "ops@shop.example", "--role", "viewer", "--password-stdin")
        assert invoke(app, *args, stdin=SECRET).exit_code == 0
        again = invoke(app, *args, stdin=SECRET)
        assert again.exit_code != 0 and "exists" in again.output
        bad = invoke(app, "create", "x@shop.example", "--role", "root", "--password-stdin",
                     stdin=SECRET)  # fmt: skip
        assert bad.exit_code != 0

    def test_list_disable_and_set_password(self, app: Any, runtime: Any) -> None:
        invoke(
            app, "create", "ops@shop.example", "--role", "admin", "--password-stdin", stdin=SECRET
        )
        listed = invoke(app, "list")
        assert "ops@shop.example\tadmin\tactive" in listed.output
        changed = invoke(app, "set-password", "ops@shop.example", "--password-stdin",
                         stdin="another-long-passphrase\n")  # fmt: skip
        assert changed.exit_code == 0 and "another-long-passphrase" not in changed.output
        operators.authenticate(
            runtime.redis, "ops@shop.example", "another-long-passphrase", now=0.0
        )
        assert invoke(app, "disable", "ops@shop.example").exit_code == 0
        assert "ops@shop.example\tadmin\tdisabled" in invoke(app, "list").output
        unknown = invoke(app, "disable", "nobody@shop.example")
        assert unknown.exit_code != 0 and "No operator" in unknown.output

    def test_update_existing_resets_role_and_password(self, app: Any, runtime: Any) -> None:
        create = ("create", "ops@shop.example", "--role", "viewer", "--password-stdin")
        invoke(app, *create, stdin=SECRET)
        invoke(app, "disable", "ops@shop.example")
        again = invoke(app, "create", "ops@shop.example", "--role", "admin", "--password-stdin",
                       "--update-existing", stdin="another-long-passphrase\n")  # fmt: skip
        assert again.exit_code == 0, again.output
        operator = operators.authenticate(
            runtime.redis, "ops@shop.example", "another-long-passphrase", now=0.0
        )
        assert operator.role == "admin" and not operator.disabled
