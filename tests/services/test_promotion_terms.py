"""Promotion terms: discounts, allocation across lines (no cent lost), refusal reasons."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.services.pricing import Pricer, ProductPrice, price_cart
from app.services.pricing.promotions import PromotionTerms, allocate

USD = {
    "A": ProductPrice("A", "Alpha", 1999, "usd"),
    "B": ProductPrice("B", "Beta", 250, "usd"),
    "C": ProductPrice("C", "Gamma", 7, "usd"),
}
US_CA = {"country": "US", "state": "CA"}
TEN = PromotionTerms("TEN", "usd", percent_off=10)


class TestAllocate:
    @given(
        st.lists(st.integers(min_value=0, max_value=10**8), min_size=1, max_size=100),
        st.integers(min_value=0, max_value=10**9),
    )
    def test_no_cent_lost_and_no_line_below_zero(self, amounts: list[int], discount: int) -> None:
        shares = allocate(amounts, discount)
        assert sum(shares) == min(discount, sum(amounts))
        assert all(0 <= share <= amount for share, amount in zip(shares, amounts, strict=True))

    @given(st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=20))
    def test_shares_are_proportional_within_a_unit(self, amounts: list[int]) -> None:
        discount = sum(amounts) // 3
        for share, amount in zip(allocate(amounts, discount), amounts, strict=True):
            assert abs(share * sum(amounts) - amount * discount) < sum(amounts)

    def test_the_remainder_goes_to_the_largest_remainders(self) -> None:
        assert allocate([100, 100, 100], 100) == [34, 33, 33]


class TestDiscountedPricing:
    def test_percent_off_discounts_the_goods_and_the_tax(self) -> None:
        plain = price_cart([("A", 1), ("B", 2)], US_CA, "usd", USD)
        quote = price_cart([("A", 1), ("B", 2)], US_CA, "usd", USD, promotion=TEN)
        assert quote.subtotal == plain.subtotal == 2499
        assert quote.discount == 250  # 10 % of 24.99, half up
        # Tax on the discounted lines: 1999 - 200 = 1799 → 130.4; 500 - 50 = 450 → 32.6
        assert quote.tax == 130 + 33
        assert quote.total == 2499 - 250 + quote.shipping + quote.tax
        assert quote.promotion == TEN

    @given(
        st.lists(
            st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(min_value=1, max_value=100)),
            min_size=1,
            max_size=3,
            unique_by=lambda line: line[0],
        ),
        st.integers(min_value=1, max_value=10**6),
    )
    def test_amount_off_totals_add_up(self, lines: list[tuple[str, int]], off: int) -> None:
        terms = PromotionTerms("OFF", "usd", amount_off=off)
        quote = Pricer().price(lines, US_CA, "usd", USD, promotion=terms)
        assert quote.discount == min(off, quote.subtotal)
        assert quote.total == quote.subtotal - quote.discount + quote.shipping + quote.tax
        assert quote.total >= 0

    def test_the_threshold_for_free_shipping_is_on_the_goods_before_the_discount(self) -> None:
        quote = price_cart([("A", 3)], US_CA, "usd", USD, promotion=TEN)  # 59.97 - 6.00
        assert quote.shipping == 0


class TestRefusal:
    NOW = 1_800_000_000

    @pytest.mark.parametrize(
        ("terms", "subtotal", "reason"),
        [
            (PromotionTerms("X", "usd", percent_off=5, active=False), 100, "not active"),
            (PromotionTerms("X", "usd", percent_off=5, starts_at=NOW + 1), 100, "not valid yet"),
            (PromotionTerms("X", "usd", percent_off=5, ends_at=NOW), 100, "expired"),
            (PromotionTerms("X", "usd", percent_off=5, min_subtotal=101), 100, "at least 1.01"),
        ],
    )
    def test_each_reason(self, terms: PromotionTerms, subtotal: int, reason: str) -> None:
        assert reason in (terms.refusal(self.NOW, subtotal) or "")

    def test_within_its_terms_it_applies(self) -> None:
        terms = PromotionTerms(
            "X", "usd", amount_off=100, min_subtotal=100, starts_at=self.NOW, ends_at=self.NOW + 1
        )
        assert terms.refusal(self.NOW, 100) is None

    def test_terms_travel_as_json(self) -> None:
        assert PromotionTerms.from_json(TEN.to_json()) == TEN
        assert TEN.summary() == {"code": "TEN", "description": "10% off"}
