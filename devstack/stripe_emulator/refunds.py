"""Refunds: full and partial, over-refund refusal, and the asynchronous failure of
refunds on the ``refundFail`` test card."""

from __future__ import annotations

from typing import Any

from . import allowed, objects
from .errors import invalid_request, parameter_invalid
from .forms import Params, get_enum, get_int, get_str, merge_metadata, reject_unknown
from .payments import Timing, format_amount
from .scheduler import Scheduler
from .store import Store, snapshot

Obj = dict[str, Any]

REASONS = ["duplicate", "fraudulent", "requested_by_customer"]


class Refunds:
    """``POST /v1/refunds`` and what follows it."""

    def __init__(self, store: Store, scheduler: Scheduler, timing: Timing) -> None:
        self.store = store
        self.scheduler = scheduler
        self.timing = timing

    def create(self, params: Params) -> Obj:
        """Refund all or part of a charge, named by ``charge`` or ``payment_intent``."""
        reject_unknown(params, allowed.REFUND_CREATE)
        charge_id = get_str(params, "charge")
        intent_id = get_str(params, "payment_intent")
        amount = get_int(params, "amount", minimum=1)
        reason = get_enum(params, "reason", REASONS)
        if not charge_id and not intent_id:
            raise invalid_request(
                "One of the following params should be provided for this request: "
                "payment_intent or charge.",
                stored=False,
            )
        if charge_id and intent_id:
            raise invalid_request(
                "You cannot specify both payment_intent and charge.",
                param="payment_intent",
                stored=False,
            )
        charge = self._charge(charge_id, intent_id)
        # After a partial capture the released remainder already counts in amount_refunded,
        # so what is left to refund is amount - amount_refunded: never more than captured.
        if charge["refunded"] or charge["amount_refunded"] >= charge["amount"]:
            raise invalid_request(
                f"Charge {charge['id']} has already been refunded.",
                param="charge" if charge_id else "payment_intent",
                code="charge_already_refunded",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        amount = remaining if amount is None else amount
        if amount > remaining:
            currency = charge["currency"]
            raise parameter_invalid(
                "amount",
                f"Refund amount ({format_amount(amount, currency)}) is greater than unrefunded "
                f"amount on charge ({format_amount(remaining, currency)})",
            )
        refund = self.store.insert(
            objects.refund(charge, amount, reason, merge_metadata({}, params))
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self.store.emit("charge.refunded", charge)
        self.store.emit("refund.created", refund)
        card = self.store.cards.get(str(charge["payment_method"]))
        if card is not None and card.refund_fails:
            refund_id = refund["id"]
            self.scheduler.call_later(self.timing.async_delay, lambda: self._fail(refund_id))
        return refund

    def _charge(self, charge_id: str | None, intent_id: str | None) -> Obj:
        if charge_id:
            charge = self.store.get("charge", charge_id, param="charge")
        else:
            assert intent_id is not None
            intent = self.store.get("payment_intent", intent_id, param="payment_intent")
            if intent["status"] != "succeeded" or not intent["latest_charge"]:
                raise invalid_request(
                    f"This PaymentIntent ({intent_id}) does not have a successful charge to "
                    "refund.",
                    param="payment_intent",
                )
            charge = self.store.get("charge", intent["latest_charge"], param="payment_intent")
        if charge["status"] != "succeeded":
            raise invalid_request(
                f"Charge {charge['id']} has not succeeded, so it cannot be refunded.",
                param="charge",
            )
        if not charge["captured"]:
            raise invalid_request(
                f"Charge {charge['id']} has not been captured. Cancel its PaymentIntent to "
                "release the authorization instead.",
                param="charge",
            )
        return charge

    def update(self, refund: Obj, params: Params) -> Obj:
        """``POST /v1/refunds/<id>``: only metadata changes."""
        reject_unknown(params, ("metadata", "expand"))
        previous = {"metadata": dict(refund["metadata"])}
        refund["metadata"] = merge_metadata(refund["metadata"], params)
        if refund["metadata"] != previous["metadata"]:
            self.store.emit("refund.updated", refund, previous)
        return refund

    def _fail(self, refund_id: str) -> None:
        """The card network gave the money back: the refund fails after all."""
        with self.store.lock:
            refund = self.store.tables["refund"].get(refund_id)
            if refund is None or refund["status"] == "failed":
                return
            previous = {"status": refund["status"], "failure_reason": None}
            refund.update(
                status="failed",
                failure_reason="expired_or_canceled_card",
                failure_balance_transaction=objects.new_id("txn"),
            )
            charge = self.store.tables["charge"].get(str(refund["charge"]))
            if charge is not None:
                charge["amount_refunded"] = max(0, charge["amount_refunded"] - refund["amount"])
                charge["refunded"] = False
            self.store.emit("refund.updated", refund, snapshot(previous))
            self.store.emit("refund.failed", refund)
            self.store.emit("charge.refund.updated", refund, snapshot(previous))
