"""Stripe's test cards and test PaymentMethods, and what each does when charged.

Numbers and ``pm_card_*`` ids follow docs.stripe.com/testing. Any other valid (Luhn)
number behaves like a plain successful card of its brand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decline:
    """How a charge attempt fails: Stripe's error code, decline code, message, param."""

    code: str
    decline_code: str
    message: str
    param: str | None = None


DECLINES: dict[str, Decline] = {
    "generic_decline": Decline("card_declined", "generic_decline", "Your card was declined."),
    "insufficient_funds": Decline(
        "card_declined", "insufficient_funds", "Your card has insufficient funds."
    ),
    "lost_card": Decline("card_declined", "lost_card", "Your card was declined."),
    "stolen_card": Decline("card_declined", "stolen_card", "Your card was declined."),
    "fraudulent": Decline("card_declined", "fraudulent", "Your card was declined."),
    "expired_card": Decline("expired_card", "expired_card", "Your card has expired.", "exp_month"),
    "incorrect_cvc": Decline(
        "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.", "cvc"
    ),
    "processing_error": Decline(
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
}


@dataclass(frozen=True)
class Card:
    """A test card: its public details and the behaviour it triggers."""

    number: str
    brand: str = "visa"
    funding: str = "credit"
    country: str = "US"
    three_d_secure: bool = False  # confirm stops in requires_action
    decline: str | None = None  # key of DECLINES, applied when the charge is attempted
    dispute: bool = False  # a dispute opens shortly after the charge succeeds
    refund_fails: bool = False  # refunds succeed, then fail asynchronously
    delayed: bool = False  # emulator-only: the payment waits in processing until settled
    # A bank debit (us_bank_account): always waits in processing; settles with this failure
    # code (None: succeeds) when the auto-settle delay runs out.
    bank: bool = False
    bank_failure: str | None = None
    wallet: str | None = None  # apple_pay, google_pay or link (Express Checkout test wallets)

    @property
    def last4(self) -> str:
        """The last four digits, as Stripe shows them."""
        return self.number[-4:]


_CARDS = [
    Card("4242424242424242"),
    Card("4000056655665556", funding="debit"),
    Card("5555555555554444", brand="mastercard"),
    Card("2223003122003222", brand="mastercard"),
    Card("378282246310005", brand="amex"),
    Card("6011111111111117", brand="discover"),
    Card("4000002500003155", three_d_secure=True),
    Card("4000002760003184", three_d_secure=True),
    Card("4000000000003220", three_d_secure=True),
    Card("4000000000003063", three_d_secure=True),
    Card("4000008400001629", three_d_secure=True, decline="insufficient_funds"),
    Card("4000000000000002", decline="generic_decline"),
    Card("4000000000009995", decline="insufficient_funds"),
    Card("4000000000009987", decline="lost_card"),
    Card("4000000000009979", decline="stolen_card"),
    Card("4100000000000019", decline="fraudulent"),
    Card("4000000000000069", decline="expired_card"),
    Card("4000000000000127", decline="incorrect_cvc"),
    Card("4000000000000119", decline="processing_error"),
    Card("4000000000000259", dispute=True),
    Card("4000000000005126", refund_fails=True),
]

CARDS_BY_NUMBER: dict[str, Card] = {c.number: c for c in _CARDS}

# The test PaymentMethod ids Stripe accepts anywhere a PaymentMethod id is expected.
TEST_PAYMENT_METHODS: dict[str, Card] = {
    "pm_card_visa": CARDS_BY_NUMBER["4242424242424242"],
    "pm_card_visa_debit": CARDS_BY_NUMBER["4000056655665556"],
    "pm_card_mastercard": CARDS_BY_NUMBER["5555555555554444"],
    "pm_card_amex": CARDS_BY_NUMBER["378282246310005"],
    "pm_card_discover": CARDS_BY_NUMBER["6011111111111117"],
    "pm_card_chargeDeclined": CARDS_BY_NUMBER["4000000000000002"],
    "pm_card_chargeDeclinedInsufficientFunds": CARDS_BY_NUMBER["4000000000009995"],
    "pm_card_chargeDeclinedLostCard": CARDS_BY_NUMBER["4000000000009987"],
    "pm_card_chargeDeclinedStolenCard": CARDS_BY_NUMBER["4000000000009979"],
    "pm_card_chargeDeclinedFraudulent": CARDS_BY_NUMBER["4100000000000019"],
    "pm_card_chargeDeclinedExpiredCard": CARDS_BY_NUMBER["4000000000000069"],
    "pm_card_chargeDeclinedIncorrectCvc": CARDS_BY_NUMBER["4000000000000127"],
    "pm_card_chargeDeclinedProcessingError": CARDS_BY_NUMBER["4000000000000119"],
    "pm_card_authenticationRequiredOnSetup": CARDS_BY_NUMBER["4000002500003155"],
    "pm_card_authenticationRequired": CARDS_BY_NUMBER["4000002760003184"],
    "pm_card_threeDSecure2Required": CARDS_BY_NUMBER["4000000000003220"],
    "pm_card_threeDSecureRequired": CARDS_BY_NUMBER["4000000000003063"],
    "pm_card_authenticationRequiredChargeDeclinedInsufficientFunds": CARDS_BY_NUMBER[
        "4000008400001629"
    ],
    "pm_card_createDispute": CARDS_BY_NUMBER["4000000000000259"],
    "pm_card_refundFail": CARDS_BY_NUMBER["4000000000005126"],
    # Emulator-only: stays in processing until POST /_emulator/payment_intents/<id>/settle.
    "pm_emulator_delayed": Card("4000000000000077", delayed=True),
}


@dataclass(frozen=True)
class BankFailure:
    """How a bank debit fails when it settles: Stripe's failure code and message (ACH)."""

    code: str
    message: str


BANK_FAILURES: dict[str, BankFailure] = {
    "insufficient_funds": BankFailure(
        "insufficient_funds",
        "The customer's account has insufficient funds to cover this payment.",
    ),
    "account_closed": BankFailure("account_closed", "The customer's bank account has been closed."),
    "no_account": BankFailure("no_account", "The customer's bank account could not be located."),
    "debit_not_authorized": BankFailure(
        "debit_not_authorized",
        "The customer has notified their bank that this payment was unauthorized.",
    ),
}

TEST_ROUTING_NUMBER = "110000000"

# Stripe's ACH test account numbers (routing number 110000000) and how each settles.
BANK_ACCOUNTS: dict[str, Card] = {
    "000123456789": Card("000123456789", bank=True),
    "000222222227": Card("000222222227", bank=True, bank_failure="insufficient_funds"),
    "000111111113": Card("000111111113", bank=True, bank_failure="account_closed"),
    "000111111116": Card("000111111116", bank=True, bank_failure="no_account"),
    "000333333335": Card("000333333335", bank=True, bank_failure="debit_not_authorized"),
}

# Emulator-only bank-debit PaymentMethods (us_bank_account): processing until settled.
TEST_BANK_METHODS: dict[str, Card] = {
    "pm_emulator_bank_debit": BANK_ACCOUNTS["000123456789"],
    "pm_emulator_bank_debit_insufficient_funds": BANK_ACCOUNTS["000222222227"],
    "pm_emulator_bank_debit_account_closed": BANK_ACCOUNTS["000111111113"],
}

WALLETS = ("apple_pay", "google_pay", "link")


def bank_account_for(number: str) -> Card:
    """The behaviour of a test account number: listed ones as documented, else success."""
    return BANK_ACCOUNTS.get(number) or Card(number, bank=True)


def card_for_token(token: str) -> Card | None:
    """A ``tok_visa`` / ``tok_chargeDeclined`` style test token's card (``pm_card_*`` twin)."""
    if not token.startswith("tok_"):
        return None
    return TEST_PAYMENT_METHODS.get("pm_card_" + token[4:])


def luhn_valid(number: str) -> bool:
    """Whether a digit string passes the Luhn checksum."""
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def brand_of(number: str) -> str:
    """The card brand Stripe reports for a number's prefix."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    if number.startswith(("6011", "65", "644", "645", "646", "647", "648", "649")):
        return "discover"
    if number.startswith(("35",)):
        return "jcb"
    if number.startswith(("36", "300", "301", "302", "303", "304", "305", "38")):
        return "diners"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


def card_for_number(number: str) -> Card:
    """The behaviour of a card number: a listed test card, else a plain success."""
    known = CARDS_BY_NUMBER.get(number)
    if known:
        return known
    return Card(number, brand=brand_of(number))
