"""Disputes after they open: evidence staged or submitted, closed by the merchant or the bank.

``POST /v1/disputes/<id>`` stages evidence (``submit=false``) or submits it (the default,
as at Stripe: the dispute goes ``under_review``), ``POST /v1/disputes/<id>/close``
accepts the loss, and the control endpoint ``/_emulator/disputes/<id>/close`` stands in
for the card network's decision (``won`` or ``lost``). Each change emits
``charge.dispute.updated`` or ``charge.dispute.closed`` with ``previous_attributes``.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid_request, parameter_invalid
from .forms import get_bool, get_dict, merge_metadata, reject_unknown
from .objects import EVIDENCE_FIELDS
from .store import Store, snapshot

Obj = dict[str, Any]

OPEN_STATUSES = ("warning_needs_response", "needs_response", "warning_under_review", "under_review")
CLOSED_STATUSES = ("won", "lost", "warning_closed")
# Stripe's limit on the evidence's text, all fields together.
EVIDENCE_TEXT_LIMIT = 150_000


class Disputes:
    """Dispute updates on the shared store (callers hold ``store.lock``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def update(self, dispute: Obj, params: dict[str, Any]) -> Obj:
        """``POST /v1/disputes/<id>``: ``evidence[...]``, ``metadata``, ``submit``."""
        reject_unknown(params, ("evidence", "metadata", "submit", "expand"))
        evidence = get_dict(params, "evidence")
        reject_unknown(evidence, EVIDENCE_FIELDS, prefix="evidence")
        for name, value in evidence.items():
            if not isinstance(value, str):
                raise parameter_invalid(f"evidence[{name}]", f"Invalid string: {value!r:.40}")
        submit = get_bool(params, "submit")
        if dispute["status"] not in OPEN_STATUSES:
            raise invalid_request(
                f"This dispute is already closed ({dispute['status']}): it cannot be updated."
            )
        merged = {**dispute["evidence"], **{k: (v or None) for k, v in evidence.items()}}
        text = sum(len(v) for v in merged.values() if isinstance(v, str))
        if text > EVIDENCE_TEXT_LIMIT:
            raise parameter_invalid(
                "evidence", f"The evidence text is longer than {EVIDENCE_TEXT_LIMIT} characters."
            )
        previous: Obj = {}
        if merged != dispute["evidence"]:
            previous["evidence"] = snapshot(dispute["evidence"])
            dispute["evidence"] = merged
            details = dispute["evidence_details"]
            details["has_evidence"] = any(v for v in merged.values())
        metadata = merge_metadata(dispute["metadata"], params)
        if metadata != dispute["metadata"]:
            previous["metadata"] = dict(dispute["metadata"])
            dispute["metadata"] = metadata
        if submit is None or submit:  # Stripe submits unless told not to
            previous.setdefault("evidence_details", snapshot(dispute["evidence_details"]))
            previous["status"] = dispute["status"]
            dispute["evidence_details"]["submission_count"] += 1
            dispute["status"] = (
                "warning_under_review"
                if dispute["status"].startswith("warning")
                else "under_review"
            )
        if previous:
            self.store.emit("charge.dispute.updated", dispute, previous)
        return dispute

    def close(self, dispute: Obj, outcome: str = "lost") -> Obj:
        """The merchant accepts (``lost``), or the network decides (``won``/``lost``)."""
        if dispute["status"] in CLOSED_STATUSES:
            if dispute["status"] == outcome or outcome == "lost":
                return dispute  # closing a closed dispute changes nothing
            raise invalid_request(f"This dispute is already closed ({dispute['status']}).")
        previous = {"status": dispute["status"]}
        dispute["status"] = outcome
        dispute["is_charge_refundable"] = False
        self.store.emit("charge.dispute.closed", dispute, previous)
        return dispute
