"""The card-data guard and ids: a prefixed id (ours, ``rf_``/``cap_`` + 24 hex digits, or
Stripe's) is never a card number, while a real card number in text still is."""

from __future__ import annotations

import random

from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.schemas.card_data import header_looks_like_pan, looks_like_pan, luhn_valid

prefixes = st.from_regex(r"[a-z]{1,8}", fullmatch=True)
hex24 = st.binary(min_size=12, max_size=12).map(bytes.hex)
base62 = st.from_regex(r"[0-9A-Za-z]{8,30}", fullmatch=True).filter(
    lambda s: any(c.isalpha() for c in s)
)
ids = st.builds(lambda p, body: f"{p}_{body}", prefixes, st.one_of(hex24, base62))


def with_check_digit(body: str) -> str:
    """``body`` and the digit that makes it pass Luhn."""
    return next(body + d for d in "0123456789" if luhn_valid(body + d))


pans = st.builds(
    with_check_digit,
    st.from_regex(r"[3-6][0-9]{11,17}", fullmatch=True),
)
words = st.lists(st.sampled_from(["refund", "order", "for", "card", "ok", "—", ":"]), max_size=3)


@settings(deadline=None)  # a loaded box is slow, not wrong
@given(ids)
@example("rf_2b3c4111111111111111ab")  # a Luhn-valid run of 16 digits inside
@example("cap_d3a8517245669373245dfe")  # one the guard refused before (13 digits)
@example("pi_3Nk8aBC_secret_4111111111111111a")
def test_a_prefixed_id_is_not_a_card_number(id_: str) -> None:
    assert not looks_like_pan(id_)
    assert not looks_like_pan(f"/api/admin/refunds/{id_}")
    assert not header_looks_like_pan(id_)


def test_our_refund_and_capture_ids_never_trip_the_guard() -> None:
    """Before: about one in 600 (a hex run of 13+ digits passing Luhn); 6 of these."""
    rng = random.Random(12)
    made = [f"{p}_{rng.getrandbits(96):024x}" for p in ("rf", "cap") for _ in range(2_000)]
    assert [i for i in made if looks_like_pan(i) or header_looks_like_pan(i)] == []


@settings(deadline=None)  # a loaded box is slow, not wrong
@given(pans, ids, words, st.sampled_from([" ", "\n", ", ", " - "]))
def test_a_card_number_beside_an_id_is_still_caught(
    pan: str, id_: str, around: list[str], sep: str
) -> None:
    assert looks_like_pan(sep.join([*around, id_, pan, *around]))
    assert looks_like_pan(sep.join([*around, pan, id_, *around]))


@settings(deadline=None)  # a loaded box is slow, not wrong
@given(
    st.builds(with_check_digit, st.from_regex(r"4[0-9]{14}", fullmatch=True)),
    st.builds(lambda id_: f"{id_}z", ids),
)
def test_a_printed_card_number_after_an_id_is_still_caught(pan: str, id_: str) -> None:
    printed = " ".join(pan[i : i + 4] for i in range(0, 16, 4))
    assert looks_like_pan(f"refund {id_} for {printed}")


@settings(deadline=None)  # a loaded box is slow, not wrong
@given(st.from_regex(r"[a-z]{1,8}", fullmatch=True), pans)
def test_a_label_with_only_digits_after_it_is_a_card_number(label: str, pan: str) -> None:
    # "pan_4111111111111111" is not an id: nothing but the card number follows the prefix.
    assert looks_like_pan(f"{label}_{pan}")
    assert header_looks_like_pan(f"{label}_{pan}")
