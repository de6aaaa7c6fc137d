"""Operator accounts of the console: create, list, disable, set a password, sign in.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second
recommended profile). Five wrong passwords for one e-mail within 15 minutes lock its
sign-in for 15 minutes; while locked, the right password is refused too. A password
change or a disable bumps the account's ``session_epoch`` and deletes its sessions.
No Flask here: the console and the CLI call these.

Changes made from the console name the admin who made them (``by``): each is logged with
``actor="operator:<email>"``, and an admin can neither disable nor demote their own
account, so the console always keeps an enabled admin. The CLI (``by=None``, actor
``cli``) is the way back in and is not held to that rule.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from typing import NoReturn

import peewee
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from redis import Redis

from app import keys
from app.errors import AccountLocked, InvalidRequest, InvalidState, NotFound, SignInRefused
from app.services import operator_sessions
from models import Operator, database, utcnow
from models.operator import OPERATOR_ROLES

log = structlog.get_logger("app.services.operators")
ADMIN = "admin"
# NIST SP 800-63B's floor; the lockout and the per-IP limit slow guessing down.
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes any length; this bounds the work per attempt
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s.]{1,63}$")
_hasher = PasswordHasher()  # argon2id
# Checked against when the e-mail is unknown, so both answers take as long.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def normalize_email(email: str) -> str:
    """The stored form of an e-mail (trimmed, lower-case); InvalidRequest when malformed."""
    value = email.strip().lower()
    if not _EMAIL.match(value):
        raise InvalidRequest("Not an e-mail address.", fields={"email": ["Not an e-mail address."]})
    return value


def _check_password(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        message = f"A password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters."
        raise InvalidRequest(message, fields={"password": [message]})


def _check_role(role: str) -> None:
    if role not in OPERATOR_ROLES:
        message = f"A role is one of {', '.join(OPERATOR_ROLES)}."
        raise InvalidRequest(message, fields={"role": [message]})


def create_operator(
    email: str, role: str, password: str, *, by: Operator | None = None
) -> Operator:
    """A new enabled account; InvalidRequest for a bad field or an e-mail already used."""
    address = normalize_email(email)
    _check_role(role)
    _check_password(password)
    try:
        with database().atomic():
            created: Operator = Operator.create(
                email=address, role=role, password_hash=_hasher.hash(password)
            )
    except peewee.IntegrityError as exc:
        message = "An operator with this e-mail exists."
        raise InvalidRequest(message, fields={"email": [message]}) from exc
    _audit("operator_created", by, created, role=role)
    return created


def list_operators() -> list[Operator]:
    """Every account, by e-mail."""
    return list(Operator.select().order_by(Operator.email))


def find_operator(email: str) -> Operator | None:
    """The account with ``email``, or None."""
    found: Operator | None = Operator.get_or_none(Operator.email == normalize_email(email))
    return found


def get_operator(email: str) -> Operator:
    """The account with ``email``; NotFound otherwise."""
    found = find_operator(email)
    if found is None:
        raise NotFound("No operator with this e-mail.")
    return found


def disable_operator(redis: Redis, email: str, *, by: Operator | None = None) -> Operator:
    """Disable an account and end every session it has (never ``by``'s own)."""
    operator = get_operator(email)
    _keep_an_admin(operator, by, "disable")
    _end_sessions(redis, operator, disabled=True)
    _audit("operator_disabled", by, operator)
    return Operator.get_by_id(operator.id)


def enable_operator(email: str, *, by: Operator | None = None) -> Operator:
    """Enable a disabled account (its old sessions stay ended: it signs in again)."""
    operator = get_operator(email)
    Operator.update(disabled=False, updated_at=utcnow()).where(Operator.id == operator.id).execute()
    _audit("operator_enabled", by, operator)
    return Operator.get_by_id(operator.id)


def change_role(email: str, role: str, *, by: Operator | None = None) -> Operator:
    """Give an account another role; it applies from its next request (read per request).

    ``by`` cannot demote themself: InvalidState.
    """
    _check_role(role)
    operator = get_operator(email)
    if role != ADMIN:
        _keep_an_admin(operator, by, "demote")
    Operator.update(role=role, updated_at=utcnow()).where(Operator.id == operator.id).execute()
    _audit("operator_role_changed", by, operator, role=role, was=operator.role)
    return Operator.get_by_id(operator.id)


def set_password(
    redis: Redis, email: str, password: str, *, by: Operator | None = None
) -> Operator:
    """Replace an account's password and end every session it has."""
    _check_password(password)
    operator = get_operator(email)
    _end_sessions(redis, operator, password_hash=_hasher.hash(password))
    _audit("operator_password_set", by, operator)
    return Operator.get_by_id(operator.id)


def _keep_an_admin(operator: Operator, by: Operator | None, what: str) -> None:
    """Refuse a console admin's change to their own account, and any that leaves no
    enabled admin (the console would have nobody left to manage it)."""
    if by is None:
        return  # the CLI: the way back in when every admin is locked out
    if operator.id == by.id:
        raise InvalidState(f"You cannot {what} your own account: ask another admin.")
    others = Operator.select().where(
        (Operator.role == ADMIN) & (Operator.disabled == False) & (Operator.id != operator.id)  # noqa: E712
    )
    if operator.role == ADMIN and not operator.disabled and not others.exists():
        raise InvalidState(f"You cannot {what} the last enabled admin.")


def _audit(event: str, by: Operator | None, operator: Operator, **details: object) -> None:
    """One structured log line per account change, naming who made it (no secrets)."""
    actor = f"operator:{by.email}" if by is not None else "cli"
    log.info(event, actor=actor, operator=operator.email, **details)


def reset_operator(redis: Redis, email: str, role: str, password: str) -> Operator:
    """Give an existing account this role and password, enabled; its sessions end."""
    _check_role(role)
    _check_password(password)
    operator = get_operator(email)
    _end_sessions(redis, operator, role=role, disabled=False, password_hash=_hasher.hash(password))
    return Operator.get_by_id(operator.id)


def _end_sessions(redis: Redis, operator: Operator, **changes: object) -> None:
    # The epoch first: a session Redis still holds (or one racing this) is refused by it.
    Operator.update(session_epoch=Operator.session_epoch + 1, updated_at=utcnow(), **changes).where(
        Operator.id == operator.id
    ).execute()
    operator_sessions.revoke_all(redis, operator.id)


def authenticate(redis: Redis, email: str, password: str, *, now: float) -> Operator:
    """The enabled account whose password this is.

    AccountLocked while the e-mail is locked (whatever the password); SignInRefused for a
    wrong e-mail or password, which also counts towards the lock.
    """
    address = email.strip().lower()
    tag = hashlib.sha256(address.encode("utf-8")).hexdigest()
    locked_until = redis.get(keys.console_locked(tag))
    if locked_until is not None and float(locked_until) > now:
        raise AccountLocked(_locked_message(float(locked_until)))
    operator = Operator.get_or_none(Operator.email == address)
    # Verified first, whoever asks: an unknown or disabled e-mail takes as long to refuse.
    valid = _verify(operator, password)
    if operator is None or operator.disabled or not valid:
        _count_failure(redis, tag, now)
    redis.delete(keys.console_failures(tag))
    Operator.update(last_login_at=utcnow()).where(Operator.id == operator.id).execute()
    return operator


def _verify(operator: Operator | None, password: str) -> bool:
    """Whether ``password`` is the account's; re-hashes it when the parameters changed."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        _hasher.verify(operator.password_hash if operator else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    if operator is None:
        return False
    if _hasher.check_needs_rehash(operator.password_hash):
        Operator.update(password_hash=_hasher.hash(password)).where(
            Operator.id == operator.id
        ).execute()
    return True


def _count_failure(redis: Redis, tag: str, now: float) -> NoReturn:
    """Record a wrong password; lock the e-mail at the fifth within the window. Raises."""
    failures = keys.console_failures(tag)
    pipe = redis.pipeline(transaction=True)
    pipe.zremrangebyscore(failures, "-inf", now - keys.CONSOLE_LOCKOUT_WINDOW_SECONDS)
    pipe.zadd(failures, {f"{now}:{secrets.token_hex(4)}": now})
    pipe.zcard(failures)
    pipe.expire(failures, keys.CONSOLE_LOCKOUT_WINDOW_SECONDS)
    count = pipe.execute()[2]
    if count >= keys.CONSOLE_LOCKOUT_FAILURES:
        until = now + keys.CONSOLE_LOCKOUT_SECONDS
        redis.set(keys.console_locked(tag), repr(until), ex=keys.CONSOLE_LOCKOUT_SECONDS)
        redis.delete(failures)
        raise AccountLocked(_locked_message(until))
    raise SignInRefused("Wrong e-mail or password.")


def _locked_message(until: float) -> str:
    at = datetime.fromtimestamp(until, UTC).strftime("%H:%M UTC")
    return (
        f"Too many wrong passwords: sign-in to this account is locked for 15 minutes (until {at})."
    )


def session_operator(operator_id: object, epoch: object) -> Operator | None:
    """The enabled account a session was opened for, unless its sessions were ended since
    (a password change or a disable bumped the epoch)."""
    if not isinstance(operator_id, int) or not isinstance(epoch, int):
        return None
    operator = Operator.get_or_none(Operator.id == operator_id)
    if operator is None or operator.disabled or operator.session_epoch != epoch:
        return None
    return operator
