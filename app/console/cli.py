"""``flask --app wsgi operators ...``: the console's accounts from the command line.

A password is read from standard input (``--password-stdin``, one line) or typed at a
hidden prompt; it is never echoed, printed or logged, and an error never repeats it.
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from app.context import current_runtime
from app.errors import ServiceError
from app.services import operators
from models.operator import OPERATOR_ROLES

operators_group = AppGroup("operators", help="Console operator accounts.")


def _read_password(from_stdin: bool) -> str:
    """One line of standard input (the newline dropped), or a hidden, confirmed prompt."""
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


def _fail(exc: ServiceError) -> click.ClickException:
    return click.ClickException(exc.message)


password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)


@operators_group.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(OPERATOR_ROLES), required=True)
@password_stdin
@click.option(
    "--update-existing",
    is_flag=True,
    help="When the account exists, give it this role and password (and enable it).",
)
def create_command(email: str, role: str, password_stdin: bool, update_existing: bool) -> None:
    """Create an operator account."""
    password = _read_password(password_stdin)
    try:
        if update_existing and operators.find_operator(email) is not None:
            operator = operators.reset_operator(current_runtime().redis, email, role, password)
            click.echo(f"updated {operator.email} ({operator.role}); its sessions are ended")
            return
        operator = operators.create_operator(email, role, password)
    except ServiceError as exc:
        raise _fail(exc) from None
    click.echo(f"created {operator.email} ({operator.role})")


@operators_group.command("list")
def list_command() -> None:
    """List the operator accounts."""
    for operator in operators.list_operators():
        status = "disabled" if operator.disabled else "active"
        last = (
            operator.last_login_at.isoformat(timespec="seconds") if operator.last_login_at else "-"
        )
        click.echo(f"{operator.email}\t{operator.role}\t{status}\tlast sign-in {last}")


@operators_group.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Disable an account and end its sessions."""
    try:
        operator = operators.disable_operator(current_runtime().redis, email)
    except ServiceError as exc:
        raise _fail(exc) from None
    click.echo(f"disabled {operator.email}; its sessions are ended")


@operators_group.command("set-password")
@click.argument("email")
@password_stdin
def set_password_command(email: str, password_stdin: bool) -> None:
    """Set an account's password and end its sessions."""
    password = _read_password(password_stdin)
    try:
        operator = operators.set_password(current_runtime().redis, email, password)
    except ServiceError as exc:
        raise _fail(exc) from None
    click.echo(f"password set for {operator.email}; its sessions are ended")
