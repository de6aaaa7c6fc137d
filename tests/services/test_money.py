"""Decimal twins: exact strings from integer minor units, per currency exponent."""

from __future__ import annotations

from app.services.money import decimal_lines, decimal_totals


class TestDecimalTotals:
    def test_two_three_and_zero_decimal_currencies(self) -> None:
        totals = {"subtotal": 1405, "discount": 5, "shipping": 0, "tax": 7, "total": 1407}
        assert decimal_totals({**totals, "currency": "usd"}) == {
            "subtotal": "14.05", "discount": "0.05", "shipping": "0.00", "tax": "0.07",
            "total": "14.07",
        }  # fmt: skip
        assert decimal_totals({**totals, "currency": "jpy"})["total"] == "1407"
        assert decimal_totals({**totals, "currency": "kwd"})["subtotal"] == "1.405"

    def test_an_order_from_before_discounts_reads_zero(self) -> None:
        totals = {"subtotal": 100, "shipping": 0, "tax": 0, "total": 100, "currency": "eur"}
        assert decimal_totals(totals)["discount"] == "0.00"


class TestDecimalLines:
    def test_each_line_gets_its_twins(self) -> None:
        line = {"sku": "A", "name": "A", "quantity": 3, "unitAmount": 333, "amount": 999}
        assert decimal_lines([line], "usd") == [
            {**line, "unitAmountDecimal": "3.33", "amountDecimal": "9.99"}
        ]
