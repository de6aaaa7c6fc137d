"""The parameters each endpoint accepts; anything else is ``parameter_unknown``, as at
Stripe. The lists follow Stripe's API reference for the calls the emulator implements."""

from __future__ import annotations

# Parameters Stripe.js adds to the calls it makes with a publishable key.
STRIPE_JS_PARAMS = {"key", "_stripe_version", "_stripe_account", "client_context", "use_stripe_sdk"}

PAYMENT_INTENT_CREATE = {
    "amount",
    "currency",
    "automatic_payment_methods",
    "capture_method",
    "confirm",
    "confirmation_method",
    "confirmation_token",
    "customer",
    "description",
    "error_on_requires_action",
    "expand",
    "metadata",
    "off_session",
    "payment_method",
    "payment_method_data",
    "payment_method_options",
    "payment_method_types",
    "receipt_email",
    "return_url",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
    "use_stripe_sdk",
    "mandate_data",
    "radar_options",
}

PAYMENT_INTENT_UPDATE = {
    "amount",
    "currency",
    "capture_method",
    "customer",
    "description",
    "expand",
    "metadata",
    "payment_method",
    "payment_method_data",
    "payment_method_options",
    "payment_method_types",
    "receipt_email",
    "setup_future_usage",
    "shipping",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
}

PAYMENT_INTENT_CONFIRM = {
    "capture_method",
    "confirmation_token",
    "client_secret",
    "error_on_requires_action",
    "expand",
    "mandate_data",
    "off_session",
    "payment_method",
    "payment_method_data",
    "payment_method_options",
    "payment_method_types",
    "radar_options",
    "receipt_email",
    "return_url",
    "setup_future_usage",
    "shipping",
    "expected_payment_method_type",
} | STRIPE_JS_PARAMS

PAYMENT_METHOD_CREATE = {
    "type",
    "card",
    "billing_details",
    "metadata",
    "expand",
    "payment_method",
    "customer",
    "allow_redisplay",
    "payment_user_agent",
    "time_on_page",
    "guid",
    "muid",
    "sid",
    "us_bank_account",
    # Stand-in only: the Express Checkout test wallet that tokenised the card.
    "wallet",
} | STRIPE_JS_PARAMS

# POST /v1/test_helpers/confirmation_tokens (secret key) and /v1/confirmation_tokens
# (publishable key, as Stripe.js's createConfirmationToken calls it).
CONFIRMATION_TOKEN_CREATE = {
    "expand",
    "payment_method",
    "payment_method_data",
    "payment_method_options",
    "return_url",
    "setup_future_usage",
    "shipping",
    "mandate_data",
    "payment_user_agent",
    "time_on_page",
    "guid",
    "muid",
    "sid",
} | STRIPE_JS_PARAMS

REFUND_CREATE = {
    "amount",
    "charge",
    "payment_intent",
    "reason",
    "metadata",
    "expand",
    "currency",
    "customer",
    "instructions_email",
    "origin",
    "refund_application_fee",
    "reverse_transfer",
}
