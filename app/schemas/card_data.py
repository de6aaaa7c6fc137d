"""Card-data detection (I6, SAQ-A): the server must never accept a card number.

Runs on the raw parsed JSON before any schema, at any depth. Nothing found here is
ever echoed or logged: callers only learn *that* card data was present.
"""

from __future__ import annotations

import re
from typing import Any

CARD_FIELD_NAMES = frozenset(
    name.lower()
    for name in (
        "card", "cardNumber", "card_number", "cvc", "cvv", "expiry",
        "expMonth", "exp_month", "expYear", "exp_year", "pan",
    )
)  # fmt: skip

# A run of digits where single spaces or dashes may separate them (e.g. "4242 4242 ...").
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9])+(?![0-9])")


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only 0-9) passes the Luhn checksum."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def looks_like_pan(text: str) -> bool:
    """True when ``text`` contains 13-19 digits (spaces/dashes allowed) passing Luhn."""
    for match in _DIGIT_RUN.finditer(text):
        digits = match.group().replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def contains_card_data(value: Any) -> bool:
    """True when a card-named field or a card-number-like value occurs at any depth."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if str(key).lower() in CARD_FIELD_NAMES or looks_like_pan(str(key)):
                    return True
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if looks_like_pan(item):
                return True
        elif isinstance(item, int) and not isinstance(item, bool) and looks_like_pan(str(item)):
            # A card number sent as a JSON number is still a card number.
            return True
    return False
