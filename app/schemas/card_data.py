"""Card-data detection (I6, SAQ-A): the server must never accept a card number.

Runs on the raw parsed JSON before any schema, at any depth. Nothing found here is
ever echoed or logged: callers only learn *that* card data was present.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from typing import Any

CARD_FIELD_NAMES = frozenset(
    name.lower()
    for name in (
        "card", "cardNumber", "card_number", "cvc", "cvv", "expiry",
        "expMonth", "exp_month", "expYear", "exp_year", "pan",
    )
)  # fmt: skip

# Keys on admin routes whose values are known not to be card data (a carrier's tracking
# number or a postal code may pass Luhn); the key names themselves are still checked.
ADMIN_NOT_CARD_DATA = frozenset({"trackingNumber", "postalCode"})

# A run of digit groups, where any run of characters that are neither letters nor digits
# separates two groups: spaces, line breaks, dashes of every kind, dots, commas, colons,
# plus signs, soft hyphens, zero-width spaces. Text is NFKC-normalised and every Unicode
# decimal digit read as its ASCII value first, so full-width or other scripts' digits are
# caught too.
_DIGIT_RUN = re.compile(r"[0-9]+(?:[\W_]+[0-9]+)*")
_GROUP = re.compile(r"[0-9]+")
_SEPARATORS = re.compile(r"[^0-9]")
# A card as printed inside a longer run ("4242 4242 4242 4242, 12/27"): a first group of
# 4, then up to four groups of 3-6 digits (4-4-4-4, 4-6-5, 4-4-4-4-3).
_FIRST_GROUP = 4
_NEXT_GROUP = range(3, 7)
_MAX_NEXT_GROUPS = 4
# Printed layouts are looked for among a run's first and last eight groups (a card with
# an expiry, a CVC or a label number beside it): a run of thousands of groups costs no
# more than a short one, while a long group of 13-19 digits counts anywhere.
_EDGE_GROUPS = 8
_LONG_GROUP = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")
# Luhn doubles every second digit from the right, less 9 above 9: one digit again.
_DOUBLED = str.maketrans("0123456789", "0246813579")
# An id with a lowercase prefix, ours (``rf_…``, ``cap_…``: 24 hex digits) or Stripe's
# (``pi_…``, ``ch_…``, ``pi_…_secret_…``): about one in 600 of ours holds a Luhn-valid
# run of 13+ digits between its letters, which is the id's, not a card number. Only a
# whole token counts (nothing alphanumeric or ``_`` on either side), and only when a
# letter follows the prefix: ``pan_4111111111111111`` is a card number with a label.
_PREFIXED_ID = re.compile(r"(?<![0-9A-Za-z_])[a-z]+(?:_[0-9A-Za-z]+)+(?![0-9A-Za-z_])")
_LETTER = re.compile(r"[A-Za-z]")


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` (only 0-9) passes the Luhn checksum."""
    # The digits' characters summed as bytes: no Python-level loop per digit.
    checked = (digits[-1::-2] + digits[-2::-2].translate(_DOUBLED)).encode("ascii")
    return (sum(checked) - 48 * len(checked)) % 10 == 0


def ascii_digits(text: str) -> str:
    """``text`` NFKC-normalised, every Unicode decimal digit replaced by its ASCII digit."""
    normal = unicodedata.normalize("NFKC", text)
    if normal.isascii():
        return normal
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in normal)


# Fewer ASCII characters than the shortest card number has digits: no card number.
# (Only for ASCII: NFKC may expand one character into several digits, "⒓" into "12.")
_SHORTEST_PAN = 13


def without_ids(text: str) -> str:
    """``text`` with every prefixed id (:data:`_PREFIXED_ID`) replaced by a letter, which
    ends a digit run as the id's own letters did."""
    if "_" not in text:
        return text
    return _PREFIXED_ID.sub(_mask_id, text)


def _mask_id(match: re.Match[str]) -> str:
    id_ = match.group()
    return "x" if _LETTER.search(id_, id_.index("_")) else id_


def looks_like_pan(text: str) -> bool:
    """True when ``text`` contains 13-19 digits (any separators) passing Luhn; prefixed
    ids (``rf_…``, ``pi_…``) are not read as card numbers."""
    if len(text) < _SHORTEST_PAN and text.isascii():
        return False  # most of a body's values: names, codes, quantities
    for match in _DIGIT_RUN.finditer(without_ids(ascii_digits(text))):
        run = match.group()
        if len(run) >= 13 and _groups_hold_pan(_GROUP.findall(run)):  # 13 digits at least
            return True
    return False


def _is_pan(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _groups_hold_pan(groups: list[str]) -> bool:
    """Whether a run's digit groups are a card number, or hold one laid out as printed.

    The whole run counts (any grouping, "4 2 4 2 …" included); within a longer run only
    a group of 13-19 digits or a printed layout near either end does, so a list of sizes
    or dates whose digits happen to add up to a Luhn-valid number is not taken for a card.
    """
    if _is_pan("".join(groups)):
        return True
    if len(groups) == 1:
        return False
    if any(luhn_valid(group) for group in _LONG_GROUP.findall(" ".join(groups))):
        return True
    if len(groups) > 2 * _EDGE_GROUPS:
        # "" between the two ends: no layout spans the cut.
        groups = [*groups[:_EDGE_GROUPS], "", *groups[-_EDGE_GROUPS:]]
    for start, group in enumerate(groups):
        if len(group) != _FIRST_GROUP:
            continue
        number = group
        for following in groups[start + 1 : start + 1 + _MAX_NEXT_GROUPS]:
            if len(following) not in _NEXT_GROUP:
                break
            number += following
            if _is_pan(number):
                return True
    return False


# In a header token (Idempotency-Key, X-Request-Id) a card number is a plain run of
# 13-19 digits (_LONG_GROUP), or groups laid out as cards are printed (a first group of
# 4, then 3-6 digit groups: 4-4-4-4, 4-6-5, 4-4-4-4-3) standing alone between
# non-alphanumerics, with one to three of any other characters between the groups
# ("4242:4242:4242:4242:abc").
# The free separators of body text would flag about one UUID key in a thousand; a
# UUID (8-4-4-4-12 hex) can match neither of these.
_GROUPED_RUN = re.compile(
    r"(?<![0-9A-Za-z])[0-9]{4}(?:[^0-9A-Za-z]{1,3}[0-9]{3,6}){2,4}(?![0-9A-Za-z])"
)
# A plain run inside a hex token of 32+ characters (``uuid4().hex``, a SHA digest) is the
# token's, not a card number: about one uuid4().hex in 500 holds a Luhn-valid run of 13+
# digits. A run glued to other letters (``ref4111111111111111``) still counts.
_HEX_TOKEN = re.compile(r"[0-9A-Fa-f]{32,}")
_WORD = re.compile(r"[0-9A-Za-z]+")


def header_looks_like_pan(text: str) -> bool:
    """True when a header token carries a card number (see _LONG_GROUP, _GROUPED_RUN);
    prefixed ids (``rf_…``, ``pi_…``) are not read as card numbers."""
    normal = without_ids(ascii_digits(text))
    for word in _WORD.finditer(normal):
        if _HEX_TOKEN.fullmatch(word.group()):
            continue
        for match in _LONG_GROUP.finditer(word.group()):
            if luhn_valid(match.group()):
                return True
    for match in _GROUPED_RUN.finditer(normal):
        digits = _SEPARATORS.sub("", match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            return True
    return False


def contains_card_data(value: Any, *, not_card_data: Collection[str] = ()) -> bool:
    """True when a card-named field or a card-number-like value occurs at any depth.

    The values of keys in ``not_card_data`` are not scanned (admin routes only: see
    ADMIN_NOT_CARD_DATA); a card-named key is refused wherever it is.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if str(key).lower() in CARD_FIELD_NAMES or looks_like_pan(str(key)):
                    return True
                if key not in not_card_data:
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
