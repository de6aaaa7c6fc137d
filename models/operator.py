"""The operator's console accounts: people who sign in at ``/admin`` (not JWT callers)."""

from __future__ import annotations

import peewee

from models.db import BaseModel, utcnow

# The roles, weakest first: each one may do everything the ones before it may.
OPERATOR_ROLES = ("viewer", "operator", "admin")


class Operator(BaseModel):
    """One console account; ``password_hash`` is argon2id, ``session_epoch`` ends sessions.

    A password change or a disable bumps ``session_epoch``: every session opened under
    the old epoch is refused from then on, whatever Redis still holds.
    """

    id = peewee.AutoField()
    email = peewee.CharField(max_length=254, unique=True)  # stored lower-case
    role = peewee.CharField(
        max_length=16, constraints=[peewee.Check("role IN ('viewer', 'operator', 'admin')")]
    )
    password_hash = peewee.CharField(max_length=255)
    disabled = peewee.BooleanField(default=False)
    session_epoch = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    last_login_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "operators"
