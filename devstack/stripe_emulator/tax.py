"""Stripe Tax: calculations, transactions from them, and their reversals.

Taxes come from :data:`RATES`, a documented table (docs/stripe-emulator.md, "Stripe
Tax"): a destination's ``COUNTRY-STATE`` entry when listed, else its country's, else no
tax (``not_collecting``). Every line, and the shipping cost, is taxed exclusive at that
rate, rounded half-up to the minor unit per line, as Stripe rounds per line item.

A calculation lives :data:`CALCULATION_TTL` seconds (Stripe's 90 days); a transaction's
``reference`` is unique across transactions and reversals, as at Stripe.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from . import objects
from .errors import invalid_request, parameter_invalid, parameter_missing, resource_missing
from .forms import Params, get_dict, get_enum, get_int, get_str, reject_unknown
from .store import Store

Obj = dict[str, Any]

# Percent, as Stripe's ``percentage_decimal`` strings: "COUNTRY-STATE" first, then "COUNTRY".
RATES: dict[str, str] = {
    "US-CA": "7.25",
    "US-NY": "4.0",
    "US-TX": "6.25",
    "US-WA": "6.5",
    "CA": "5.0",
    "DE": "19.0",
    "FR": "20.0",
    "GB": "20.0",
    "IT": "22.0",
    "NL": "21.0",
    "JP": "10.0",
    "KR": "10.0",
}
# The kind of tax each country levies (Stripe's ``tax_type``); "vat" elsewhere.
TAX_TYPES = {"US": "sales_tax", "CA": "gst", "JP": "jct"}
CALCULATION_TTL = 90 * 86400
GOODS_TAX_CODE = "txcd_99999999"  # Stripe's "General - Tangible Goods"
SHIPPING_TAX_CODE = "txcd_92010001"  # Stripe's "Shipping"
LINE_PARAMS = {"amount", "reference", "tax_behavior", "tax_code", "quantity", "product"}
MAX_LINE_ITEMS = 100


def rate_for(country: str, state: str | None) -> tuple[Decimal, str | None]:
    """The percentage of a destination and the state it applies to (None: country-wide)."""
    country = country.upper()
    if state and f"{country}-{state.upper()}" in RATES:
        return Decimal(RATES[f"{country}-{state.upper()}"]), state.upper()
    return Decimal(RATES.get(country, "0")), None


def tax_on(amount: int, percent: Decimal) -> int:
    """Exclusive tax of ``amount`` minor units at ``percent``, rounded half-up."""
    sign = -1 if amount < 0 else 1
    return sign * int((abs(amount) * percent * 2 + 100) // 200)


class Tax:
    """The Stripe Tax objects of one emulated account."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- calculations -----------------------------------------------------------------

    def calculate(self, params: Params) -> Obj:
        """``POST /v1/tax/calculations``: tax every line and the shipping cost."""
        reject_unknown(
            params,
            {"currency", "line_items", "customer_details", "shipping_cost", "tax_date",
             "customer", "expand"},
        )  # fmt: skip
        currency = (get_str(params, "currency", required=True) or "").lower()
        details = self._customer_details(params)
        address = details["address"]
        percent, state = rate_for(address["country"], address.get("state"))
        jurisdiction = _jurisdiction(address["country"], state)
        calc_id = objects.new_id("taxcalc")
        lines = [
            self._calculation_line(raw, i, percent, jurisdiction)
            for i, raw in enumerate(_line_params(params))
        ]
        shipping = self._shipping(params, percent, jurisdiction)
        taxed = [*lines, *([shipping] if shipping else [])]
        tax = sum(item["amount_tax"] for item in taxed)
        taxable = sum(item["amount"] for item in taxed)
        created = objects.now()
        calculation = {
            "id": calc_id,
            "object": "tax.calculation",
            "amount_total": taxable + tax,
            "currency": currency,
            "customer": get_str(params, "customer"),
            "customer_details": details,
            "expires_at": created + CALCULATION_TTL,
            "line_items": _list(lines, f"/v1/tax/calculations/{calc_id}/line_items"),
            "livemode": False,
            "ship_from_details": None,
            "shipping_cost": shipping,
            "tax_amount_exclusive": tax,
            "tax_amount_inclusive": 0,
            "tax_breakdown": [_breakdown(tax, taxable, percent, address["country"], state)],
            "tax_date": get_int(params, "tax_date") or created,
        }
        return self.store.insert(calculation)

    def calculation(self, calc_id: str, param: str = "calculation") -> Obj:
        """A calculation, or Stripe's 404 (unknown) / 400 (expired)."""
        found = self.store.get("tax.calculation", calc_id, param=param, noun="tax.calculation")
        if found["expires_at"] is not None and found["expires_at"] <= objects.now():
            raise invalid_request(
                f"The Tax Calculation '{calc_id}' has expired and can no longer be used.",
                param=param,
                code="resource_missing",
                status=404,
            )
        return found

    def expire(self, calc_id: str) -> Obj:
        """Control endpoint: the calculation expires now, as 90 days passing would."""
        found = self.store.get("tax.calculation", calc_id, noun="tax.calculation")
        found["expires_at"] = objects.now() - 1
        return found

    def _customer_details(self, params: Params) -> Obj:
        raw = get_dict(params, "customer_details")
        if not raw:
            raise parameter_missing("customer_details")
        reject_unknown(
            raw, {"address", "address_source", "ip_address", "taxability_override", "tax_ids"},
            prefix="customer_details",
        )  # fmt: skip
        raw_address = get_dict(raw, "address")
        if not raw_address.get("country"):
            raise parameter_missing("customer_details[address][country]")
        reject_unknown(raw_address, objects.empty_address(), prefix="customer_details[address]")
        address = objects.empty_address() | {k: v or None for k, v in raw_address.items()}
        address["country"] = str(raw_address["country"]).upper()
        source = get_enum(
            raw, "address_source", ["billing", "shipping"], label="customer_details[address_source]"
        )
        return {
            "address": address,
            "address_source": source or "billing",
            "ip_address": None,
            "tax_ids": [],
            "taxability_override": "none",
        }

    def _calculation_line(
        self, raw: Params, index: int, percent: Decimal, jurisdiction: Obj
    ) -> Obj:
        label = f"line_items[{index}]"
        reject_unknown(raw, LINE_PARAMS, prefix=label)
        amount = get_int(raw, "amount", required=True, minimum=0, label=f"{label}[amount]") or 0
        behavior = get_enum(
            raw, "tax_behavior", ["exclusive", "inclusive"], label=f"{label}[tax_behavior]"
        )
        if behavior == "inclusive":
            raise parameter_invalid(
                f"{label}[tax_behavior]", "The emulator prices tax exclusive only."
            )
        quantity = get_int(raw, "quantity", minimum=1, label=f"{label}[quantity]") or 1
        amount_tax = tax_on(amount, percent)
        return {
            "id": objects.new_id("tax_li", 14),
            "object": "tax.calculation_line_item",
            "amount": amount,
            "amount_tax": amount_tax,
            "livemode": False,
            "metadata": None,
            "product": get_str(raw, "product"),
            "quantity": quantity,
            "reference": get_str(raw, "reference", label=f"{label}[reference]"),
            "tax_behavior": "exclusive",
            "tax_breakdown": [_line_breakdown(amount_tax, amount, percent, jurisdiction)],
            "tax_code": get_str(raw, "tax_code") or GOODS_TAX_CODE,
        }

    def _shipping(self, params: Params, percent: Decimal, jurisdiction: Obj) -> Obj | None:
        raw = get_dict(params, "shipping_cost")
        if not raw:
            return None
        reject_unknown(raw, {"amount", "tax_behavior", "tax_code"}, prefix="shipping_cost")
        amount = get_int(raw, "amount", required=True, minimum=0, label="shipping_cost[amount]")
        amount = amount or 0
        amount_tax = tax_on(amount, percent)
        return {
            "amount": amount,
            "amount_tax": amount_tax,
            "tax_behavior": "exclusive",
            "tax_breakdown": [_line_breakdown(amount_tax, amount, percent, jurisdiction)],
            "tax_code": get_str(raw, "tax_code") or SHIPPING_TAX_CODE,
        }

    # --- transactions -----------------------------------------------------------------

    def create_from_calculation(self, params: Params) -> Obj:
        """``POST /v1/tax/transactions/create_from_calculation``."""
        reject_unknown(params, {"calculation", "reference", "metadata", "posted_at", "expand"})
        calc_id = get_str(params, "calculation", required=True) or ""
        reference = self._new_reference(params)
        calculation = self.calculation(calc_id)
        txn_id = objects.new_id("tax")
        lines = [
            _transaction_line(line["amount"], line["amount_tax"], line, None)
            for line in calculation["line_items"]["data"]
        ]
        shipping = calculation["shipping_cost"]
        return self._insert(
            txn_id,
            params,
            reference,
            calculation,
            lines,
            None if shipping is None else _transaction_shipping(shipping, 1),
            reversal=None,
        )

    def create_reversal(self, params: Params) -> Obj:
        """``POST /v1/tax/transactions/create_reversal``: ``mode`` full or partial (per
        line, or a ``flat_amount`` spread over the lines and shipping pro rata)."""
        reject_unknown(
            params,
            {"mode", "original_transaction", "reference", "line_items", "flat_amount",
             "shipping_cost", "metadata", "expand"},
        )  # fmt: skip
        mode = get_enum(params, "mode", ["full", "partial"])
        if mode is None:
            raise parameter_missing("mode")
        original_id = get_str(params, "original_transaction", required=True) or ""
        reference = self._new_reference(params)
        original = self.store.get(
            "tax.transaction", original_id, param="original_transaction", noun="tax.transaction"
        )
        if original["type"] != "transaction":
            raise parameter_invalid("original_transaction", "A reversal cannot be reversed.")
        if mode == "full":
            lines, shipping = self._full(original)
        elif "flat_amount" in params:
            lines, shipping = self._flat(original, params)
        else:
            lines, shipping = self._partial(original, params)
        self._check_remaining(original, lines, shipping)
        return self._insert(
            objects.new_id("tax"),
            params,
            reference,
            original,
            lines,
            shipping,
            reversal={"original_transaction": original_id},
        )

    def transaction(self, txn_id: str) -> Obj:
        """A transaction (or reversal), or Stripe's 404."""
        return self.store.get(
            "tax.transaction", txn_id, param="transaction", noun="tax.transaction"
        )

    def _new_reference(self, params: Params) -> str:
        reference = get_str(params, "reference", required=True) or ""
        if any(t["reference"] == reference for t in self.store.tables["tax.transaction"].values()):
            raise invalid_request(
                f"A transaction with reference '{reference}' already exists.", param="reference"
            )
        return reference

    def _insert(
        self,
        txn_id: str,
        params: Params,
        reference: str,
        source: Obj,
        lines: list[Obj],
        shipping: Obj | None,
        *,
        reversal: Obj | None,
    ) -> Obj:
        created = objects.now()
        metadata = get_dict(params, "metadata")
        transaction = {
            "id": txn_id,
            "object": "tax.transaction",
            "created": created,
            "currency": source["currency"],
            "customer": source["customer"],
            "customer_details": source["customer_details"],
            "line_items": _list(lines, f"/v1/tax/transactions/{txn_id}/line_items"),
            "livemode": False,
            "metadata": {str(k): str(v) for k, v in metadata.items()},
            "posted_at": get_int(params, "posted_at") or created,
            "reference": reference,
            "reversal": reversal,
            "ship_from_details": None,
            "shipping_cost": shipping,
            "tax_date": source["tax_date"],
            "type": "transaction" if reversal is None else "reversal",
        }
        return self.store.insert(transaction)

    def _full(self, original: Obj) -> tuple[list[Obj], Obj | None]:
        reversed_amounts = self._reversed(original)
        lines = []
        for line in original["line_items"]["data"]:
            done_amount, done_tax = reversed_amounts.get(line["id"], (0, 0))
            lines.append(
                _transaction_line(
                    -(line["amount"] - done_amount), -(line["amount_tax"] - done_tax), line, line
                )
            )
        shipping = original["shipping_cost"]
        if shipping is None:
            return lines, None
        done_amount, done_tax = reversed_amounts.get("shipping", (0, 0))
        left = {"amount": shipping["amount"] - done_amount,
                "amount_tax": shipping["amount_tax"] - done_tax}  # fmt: skip
        return lines, _transaction_shipping(shipping | left, -1)

    def _partial(self, original: Obj, params: Params) -> tuple[list[Obj], Obj | None]:
        raw_lines = _line_params(params, required=False)
        by_id = {line["id"]: line for line in original["line_items"]["data"]}
        lines = []
        for i, raw in enumerate(raw_lines):
            label = f"line_items[{i}]"
            reject_unknown(
                raw, {"original_line_item", "reference", "amount", "amount_tax", "quantity",
                      "metadata"}, prefix=label,
            )  # fmt: skip
            line_id = get_str(raw, "original_line_item", required=True) or ""
            if line_id not in by_id:
                raise resource_missing("tax.transaction_line_item", line_id, label)
            amount = get_int(raw, "amount", required=True, maximum=0, label=f"{label}[amount]")
            tax = get_int(raw, "amount_tax", required=True, maximum=0, label=f"{label}[amount_tax]")
            lines.append(_transaction_line(amount or 0, tax or 0, by_id[line_id], by_id[line_id]))
        raw_shipping = get_dict(params, "shipping_cost")
        shipping = None
        if raw_shipping:
            if original["shipping_cost"] is None:
                raise parameter_invalid("shipping_cost", "The transaction has no shipping cost.")
            amount = get_int(raw_shipping, "amount", required=True, maximum=0,
                             label="shipping_cost[amount]") or 0  # fmt: skip
            tax = get_int(raw_shipping, "amount_tax", required=True, maximum=0,
                          label="shipping_cost[amount_tax]") or 0  # fmt: skip
            shipping = _transaction_shipping(
                original["shipping_cost"] | {"amount": amount, "amount_tax": tax}, 1
            )
        if not lines and shipping is None:
            raise parameter_missing("line_items")
        return lines, shipping

    def _flat(self, original: Obj, params: Params) -> tuple[list[Obj], Obj | None]:
        """``flat_amount`` (tax included) spread over what is left of each line and of the
        shipping, in proportion to it; each share split into amount and tax likewise."""
        flat = get_int(params, "flat_amount", required=True, maximum=-1) or 0
        if "line_items" in params or "shipping_cost" in params:
            raise parameter_invalid(
                "flat_amount", "flat_amount cannot be combined with line_items or shipping_cost."
            )
        taken = self._reversed(original)
        parts: list[tuple[str, Obj]] = [(x["id"], x) for x in original["line_items"]["data"]]
        if original["shipping_cost"] is not None:
            parts.append(("shipping", original["shipping_cost"]))
        left = []
        for key, part in parts:
            done_amount, done_tax = taken.get(key, (0, 0))
            left.append((part["amount"] - done_amount, part["amount_tax"] - done_tax))
        grosses = [amount + tax for amount, tax in left]
        if -flat > sum(grosses):
            raise parameter_invalid("flat_amount", "flat_amount exceeds what is left to reverse.")
        lines, shipping = [], None
        for (key, part), (_, tax_left), gross, share in zip(
            parts, left, grosses, _allocate(grosses, -flat), strict=True
        ):
            tax = _ratio(share, tax_left, gross)
            if key == "shipping":
                shipping = _transaction_shipping(
                    part | {"amount": -(share - tax), "amount_tax": -tax}, 1
                )
            else:
                lines.append(_transaction_line(-(share - tax), -tax, part, part))
        return lines, shipping

    def _reversed(self, original: Obj) -> dict[str, tuple[int, int]]:
        """What earlier reversals took back, per original line id (and ``shipping``), as
        positive (amount, tax) pairs."""
        taken: dict[str, tuple[int, int]] = {}
        for txn in self.store.tables["tax.transaction"].values():
            if (txn["reversal"] or {}).get("original_transaction") != original["id"]:
                continue
            for line in txn["line_items"]["data"]:
                key = line["reversal"]["original_line_item"]
                amount, tax = taken.get(key, (0, 0))
                taken[key] = (amount - line["amount"], tax - line["amount_tax"])
            if txn["shipping_cost"] is not None:
                amount, tax = taken.get("shipping", (0, 0))
                taken["shipping"] = (
                    amount - txn["shipping_cost"]["amount"],
                    tax - txn["shipping_cost"]["amount_tax"],
                )
        return taken

    def _check_remaining(self, original: Obj, lines: list[Obj], shipping: Obj | None) -> None:
        taken = self._reversed(original)
        limits = {
            line["id"]: (line["amount"], line["amount_tax"])
            for line in original["line_items"]["data"]
        }
        if original["shipping_cost"] is not None:
            cost = original["shipping_cost"]
            limits["shipping"] = (cost["amount"], cost["amount_tax"])
        asked = [(line["reversal"]["original_line_item"], line) for line in lines]
        if shipping is not None:
            asked.append(("shipping", shipping))
        for key, part in asked:
            done_amount, done_tax = taken.get(key, (0, 0))
            if (
                done_amount - part["amount"] > limits[key][0]
                or done_tax - part["amount_tax"] > limits[key][1]
            ):
                raise invalid_request(
                    "The reversal exceeds what remains of the original transaction.",
                    param="line_items",
                )


def _line_params(params: Params, *, required: bool = True) -> list[Params]:
    raw = params.get("line_items")
    if raw is None or raw == "":
        if required:
            raise parameter_missing("line_items")
        return []
    if not isinstance(raw, list) or not all(isinstance(r, dict) for r in raw):
        raise parameter_invalid("line_items", "Invalid array")
    if len(raw) > MAX_LINE_ITEMS:
        raise parameter_invalid("line_items", f"At most {MAX_LINE_ITEMS} line items.")
    return raw


def _jurisdiction(country: str, state: str | None) -> Obj:
    level = "state" if state else "country"
    return {
        "country": country,
        "display_name": f"{country}-{state}" if state else country,
        "level": level,
        "state": state,
    }


def _tax_type(country: str) -> str:
    return TAX_TYPES.get(country, "vat")


def _breakdown(tax: int, taxable: int, percent: Decimal, country: str, state: str | None) -> Obj:
    return {
        "amount": tax,
        "inclusive": False,
        "tax_rate_details": {
            "country": country,
            "flat_amount": None,
            "percentage_decimal": str(percent),
            "rate_type": None,
            "state": state,
            "tax_type": _tax_type(country),
        },
        "taxability_reason": "standard_rated" if percent else "not_collecting",
        "taxable_amount": taxable if percent else 0,
    }


def _line_breakdown(tax: int, taxable: int, percent: Decimal, jurisdiction: Obj) -> Obj:
    details = None
    if percent:
        tax_type = _tax_type(jurisdiction["country"])
        details = {
            "display_name": tax_type.replace("_", " ").title(),
            "percentage_decimal": str(percent),
            "tax_type": tax_type,
        }
    return {
        "amount": tax,
        "jurisdiction": jurisdiction,
        "sourcing": "destination",
        "tax_rate_details": details,
        "taxability_reason": "standard_rated" if percent else "not_collecting",
        "taxable_amount": taxable if percent else 0,
    }


def _transaction_line(amount: int, amount_tax: int, source: Obj, original: Obj | None) -> Obj:
    return {
        "id": objects.new_id("tax_li", 14),
        "object": "tax.transaction_line_item",
        "amount": amount,
        "amount_tax": amount_tax,
        "livemode": False,
        "metadata": None,
        "product": source["product"],
        "quantity": source["quantity"],
        "reference": source["reference"] or source["id"],
        "reversal": None if original is None else {"original_line_item": original["id"]},
        "tax_behavior": source["tax_behavior"],
        "tax_code": source["tax_code"],
        "type": "transaction" if original is None else "reversal",
    }


def _transaction_shipping(shipping: Obj, sign: int) -> Obj:
    return {
        "amount": sign * shipping["amount"],
        "amount_tax": sign * shipping["amount_tax"],
        "tax_behavior": shipping["tax_behavior"],
        "tax_code": shipping["tax_code"],
    }


def _list(items: list[Obj], url: str) -> Obj:
    return {"object": "list", "data": items, "has_more": False, "url": url}


def _allocate(weights: Sequence[int], total: int) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainder, nothing lost)."""
    whole = sum(weights)
    if whole <= 0:
        return [0 for _ in weights]
    floors = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: -((total * weights[i]) % whole))
    for i in order[: total - sum(floors)]:
        floors[i] += 1
    return floors


def _ratio(value: int, part: int, whole: int) -> int:
    """``value * part / whole`` rounded half-up (0 when ``whole`` is 0)."""
    if whole <= 0:
        return 0
    return (2 * value * part + whole) // (2 * whole)
