"""The one role table of the console: what each permission needs.

``viewer`` reads everything; ``operator`` also acts on orders and webhooks (refund,
capture, void/cancel, fulfil, replay, resend); ``admin`` also manages the catalog and the
operators. Every view names its permission (``auth.requires``), the server refuses
anything above the caller's role (403), and templates ask :func:`allows` before offering
a button.
"""

from __future__ import annotations

from models.operator import OPERATOR_ROLES

READ = "read"
ACT = "act"
MANAGE = "manage"

# permission -> the weakest role that has it
PERMISSIONS: dict[str, str] = {READ: "viewer", ACT: "operator", MANAGE: "admin"}
_RANK = {role: rank for rank, role in enumerate(OPERATOR_ROLES)}


def allows(role: str, permission: str) -> bool:
    """Whether ``role`` has ``permission`` (unknown roles and permissions have nothing)."""
    needed = PERMISSIONS.get(permission)
    if needed is None or role not in _RANK:
        return False
    return _RANK[role] >= _RANK[needed]
