"""Pricing: integer minor units, half-up per-line tax, shipping thresholds, currencies."""

from __future__ import annotations

import pytest

from app.errors import InvalidRequest
from app.services.money import format_amount, minor_unit_exponent, round_half_up
from app.services.pricing import (
    Pricer,
    ProductPrice,
    TableTax,
    price_cart,
)
from app.services.pricing.shipping import ShippingOption, TableShipping

USD = {
    "A": ProductPrice("A", "Alpha", 1999, "usd"),
    "B": ProductPrice("B", "Beta", 250, "usd"),
    "C": ProductPrice("C", "Gamma", 7, "usd"),
}
US_CA = {"country": "US", "state": "CA"}


class TestRoundHalfUp:
    @pytest.mark.parametrize(
        ("numerator", "denominator", "expected"),
        [(5, 10, 1), (4, 10, 0), (15, 10, 2), (25, 10, 3), (-5, 10, -1), (0, 7, 0), (14, 7, 2)],
    )
    def test_rounds_halves_away_from_zero(
        self, numerator: int, denominator: int, expected: int
    ) -> None:
        assert round_half_up(numerator, denominator) == expected

    def test_refuses_a_zero_denominator(self) -> None:
        with pytest.raises(ValueError):
            round_half_up(1, 0)


class TestPriceCart:
    def test_lines_and_totals_are_integers_from_catalog_prices(self) -> None:
        quote = price_cart([("A", 2), ("B", 1)], {"country": "US", "state": "OR"}, "usd", USD)
        assert [(line.sku, line.amount) for line in quote.line_items] == [("A", 3998), ("B", 250)]
        assert quote.subtotal == 4248
        assert quote.tax == 0  # Oregon: no sales tax in the table
        assert quote.shipping == 500
        assert quote.total == 4748
        assert all(isinstance(v, int) for v in quote.totals().values() if v != "usd")

    def test_tax_is_rounded_half_up_per_line(self) -> None:
        # 7 cents x 1 at 7.25 % = 0.5075 → 1 cent; two such lines round separately.
        products = {**USD, "D": ProductPrice("D", "Delta", 7, "usd")}
        quote = price_cart([("C", 1), ("D", 1)], US_CA, "usd", products)
        assert [line.tax for line in quote.line_items] == [1, 1]
        assert quote.tax == 2  # per order it would be round(1.015) = 1: per-line is the policy

    def test_exact_half_cent_rounds_up(self) -> None:
        tax = TableTax({"XX": 500})  # 5 %: 10 cents → 0.5 cent → 1
        quote = Pricer(tax=tax).price(
            [("C", 1)], {"country": "XX"}, "usd", {**USD, "C": ProductPrice("C", "G", 10, "usd")}
        )
        assert quote.tax == 1

    def test_regional_rate_wins_over_country_rate(self) -> None:
        tax = TableTax({"US": 100, "US-CA": 725})
        assert tax.rate_for("us", "ca") == 725
        assert tax.rate_for("US", "OR") == 100
        assert tax.rate_for("FR", None) == 0

    def test_per_country_tax(self) -> None:
        de = price_cart([("A", 1)], {"country": "DE"}, "usd", USD)
        assert de.tax == round_half_up(1999 * 1900, 10_000) == 380
        us = price_cart([("A", 1)], {"country": "US", "state": "NY"}, "usd", USD)
        assert us.tax == 80  # 4 % of 19.99 = 0.7996

    def test_free_shipping_at_the_threshold_not_below(self) -> None:
        below = price_cart([("B", 19)], {"country": "US"}, "usd", USD)  # 4750
        at = price_cart([("B", 20)], {"country": "US"}, "usd", USD)  # 5000
        assert below.shipping == 500
        assert at.shipping == 0

    def test_shipping_per_country_with_fallback(self) -> None:
        assert price_cart([("B", 1)], {"country": "CA"}, "usd", USD).shipping == 1500
        assert price_cart([("B", 1)], {"country": "BR"}, "usd", USD).shipping == 2500

    def test_without_an_address_estimates_for_the_home_country(self) -> None:
        quote = price_cart([("B", 1)], None, "usd", USD)
        assert quote.shipping == 500

    def test_unknown_sku_is_a_field_error_on_its_line(self) -> None:
        with pytest.raises(InvalidRequest) as caught:
            price_cart([("A", 1), ("NOPE", 1)], None, "usd", USD)
        assert caught.value.fields == {"items.1.sku": ["Unknown SKU."]}

    def test_a_product_in_another_currency_is_refused(self) -> None:
        with pytest.raises(InvalidRequest) as caught:
            price_cart([("A", 1)], None, "eur", USD)
        assert "items.0.sku" in caught.value.fields

    def test_to_dict_is_the_contract_body(self) -> None:
        body = price_cart([("A", 1)], US_CA, "usd", USD).to_dict()
        assert body == {
            "lineItems": [
                {"sku": "A", "name": "Alpha", "quantity": 1, "unitAmount": 1999, "amount": 1999,
                 "unitAmountDecimal": "19.99", "amountDecimal": "19.99"}
            ],
            "subtotal": 1999,
            "discount": 0,
            "shipping": 500,
            "tax": 145,
            "total": 2644,
            "currency": "usd",
            "totalsDecimal": {"subtotal": "19.99", "discount": "0.00", "shipping": "5.00",
                              "tax": "1.45", "total": "26.44"},
            "shippingOptions": [
                {"id": "standard", "label": "Standard", "amount": 500, "amountDecimal": "5.00",
                 "deliveryEstimate": {"minDays": 3, "maxDays": 5}},
                {"id": "express", "label": "Express", "amount": 1500, "amountDecimal": "15.00",
                 "deliveryEstimate": {"minDays": 1, "maxDays": 2}},
            ],
            "shippingOptionId": "standard",
            "promotion": None,
        }  # fmt: skip


class TestCurrencies:
    def test_zero_decimal_currency_prices_in_whole_units(self) -> None:
        products = {"T": ProductPrice("T", "Tea", 1200, "jpy")}
        quote = price_cart([("T", 3)], {"country": "JP"}, "JPY", products)
        assert quote.currency == "jpy"
        assert quote.subtotal == 3600
        assert quote.tax == 360  # 10 % of ¥3,600, no fractional yen
        assert quote.shipping == 800
        assert quote.total == 4760

    def test_zero_decimal_free_shipping_threshold(self) -> None:
        products = {"T": ProductPrice("T", "Tea", 5000, "jpy")}
        assert price_cart([("T", 2)], {"country": "JP"}, "jpy", products).shipping == 0

    def test_currency_without_a_shipping_table_ships_free(self) -> None:
        products = {"T": ProductPrice("T", "Tee", 100, "chf")}
        assert price_cart([("T", 1)], {"country": "CH"}, "chf", products).shipping == 0

    @pytest.mark.parametrize(
        ("currency", "exponent"), [("usd", 2), ("JPY", 0), ("krw", 0), ("kwd", 3), ("eur", 2)]
    )
    def test_minor_unit_exponent(self, currency: str, exponent: int) -> None:
        assert minor_unit_exponent(currency) == exponent

    def test_format_amount(self) -> None:
        assert format_amount(1250, "usd") == "12.50 USD"
        assert format_amount(1200, "jpy") == "1200 JPY"
        assert format_amount(-5, "usd") == "-0.05 USD"
        assert format_amount(1234, "kwd") == "1.234 KWD"


class TestStrategies:
    def test_shipping_strategy_is_swappable(self) -> None:
        class Flat:
            def options(
                self, *, subtotal: int, country: str, currency: str
            ) -> tuple[ShippingOption, ...]:
                return (ShippingOption("flat", "Flat", 123, 2, 3),)

        quote = Pricer(shipping=Flat()).price([("A", 1)], None, "usd", USD)
        assert quote.shipping == 123

    def test_table_shipping_with_custom_rates(self) -> None:
        option = ShippingOption("standard", "Standard", 300, 3, 5, free_over=1000)
        shipping = TableShipping({"usd": {"*": (option,)}})
        assert shipping.options(subtotal=999, country="FR", currency="usd")[0].amount == 300
        assert shipping.options(subtotal=1000, country="FR", currency="usd")[0].amount == 0


class TestShippingOptions:
    def test_the_destinations_options_priced_for_the_cart(self) -> None:
        quote = price_cart([("B", 1)], US_CA, "usd", USD)
        assert [(o.id, o.amount, o.min_days, o.max_days) for o in quote.shipping_options] == [
            ("standard", 500, 3, 5),
            ("express", 1500, 1, 2),
        ]
        assert (quote.shipping_option_id, quote.shipping) == ("standard", 500)

    def test_standard_is_free_from_the_threshold_express_never(self) -> None:
        quote = price_cart([("A", 3)], US_CA, "usd", USD)  # 59.97 ≥ 50.00
        assert {o.id: o.amount for o in quote.shipping_options} == {"standard": 0, "express": 1500}
        assert quote.shipping == 0

    def test_a_chosen_option_prices_the_shipping(self) -> None:
        quote = price_cart([("B", 1)], US_CA, "usd", USD, shipping_option_id="express")
        assert (quote.shipping_option_id, quote.shipping) == ("express", 1500)
        assert quote.total == quote.subtotal + 1500 + quote.tax

    def test_an_option_not_offered_is_refused_on_its_field(self) -> None:
        with pytest.raises(InvalidRequest) as refused:
            price_cart([("B", 1)], US_CA, "usd", USD, shipping_option_id="pigeon")
        assert list(refused.value.fields) == ["shippingOptionId"]

    def test_the_default_is_the_cheapest(self) -> None:
        shipping = TableShipping(
            {"usd": {"*": (ShippingOption("slow", "Slow", 900, 5, 9),
                           ShippingOption("cheap", "Cheap", 300, 7, 14))}}
        )  # fmt: skip
        quote = Pricer(shipping=shipping).price([("B", 1)], None, "usd", USD)
        assert (quote.shipping_option_id, quote.shipping) == ("cheap", 300)

    def test_a_currency_without_a_table_ships_free_without_options(self) -> None:
        products = {"T": ProductPrice("T", "Tea", 100, "chf")}
        quote = price_cart([("T", 1)], {"country": "CH"}, "chf", products)
        assert (quote.shipping_options, quote.shipping_option_id, quote.shipping) == ((), None, 0)

    def test_the_quote_body_lists_them_with_twins(self) -> None:
        body = price_cart([("B", 1)], US_CA, "usd", USD).to_dict()
        assert body["shippingOptionId"] == "standard"
        assert body["shippingOptions"][1] == {
            "id": "express", "label": "Express", "amount": 1500, "amountDecimal": "15.00",
            "deliveryEstimate": {"minDays": 1, "maxDays": 2},
        }  # fmt: skip
