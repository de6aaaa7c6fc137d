"""Webhook signature verification: the rules of Stripe's scheme, including rotation."""

from __future__ import annotations

import json
import time

import pytest

from app.errors import MalformedJSON, SignatureInvalid
from app.gateways.signatures import compute_signature, sign_payload, verify_signature

SECRET = "whsec_current"
OLD = "whsec_previous"
BODY = json.dumps({"id": "evt_1", "type": "payment_intent.succeeded"}).encode()


class TestVerifySignature:
    def test_valid_signature_returns_the_event(self) -> None:
        event = verify_signature(BODY, sign_payload(BODY, SECRET), [SECRET])
        assert event["id"] == "evt_1"

    def test_wrong_secret_is_refused(self) -> None:
        with pytest.raises(SignatureInvalid):
            verify_signature(BODY, sign_payload(BODY, "whsec_other"), [SECRET])

    def test_missing_header_is_refused(self) -> None:
        with pytest.raises(SignatureInvalid):
            verify_signature(BODY, "", [SECRET])
        with pytest.raises(SignatureInvalid):
            verify_signature(BODY, None, [SECRET])

    def test_header_without_v1_is_refused(self) -> None:
        with pytest.raises(SignatureInvalid):
            verify_signature(BODY, f"t={int(time.time())},v0=abc", [SECRET])

    def test_stale_timestamp_is_refused(self) -> None:
        old = int(time.time()) - 301
        with pytest.raises(SignatureInvalid):
            verify_signature(BODY, sign_payload(BODY, SECRET, old), [SECRET], tolerance=300)

    def test_timestamp_inside_tolerance_is_accepted(self) -> None:
        recent = int(time.time()) - 200
        assert verify_signature(BODY, sign_payload(BODY, SECRET, recent), [SECRET])["id"]

    def test_future_timestamp_beyond_tolerance_is_refused(self) -> None:
        future = int(time.time()) + 3600
        with pytest.raises(SignatureInvalid):
            verify_signature(BODY, sign_payload(BODY, SECRET, future), [SECRET])

    def test_tampered_body_is_refused(self) -> None:
        header = sign_payload(BODY, SECRET)
        with pytest.raises(SignatureInvalid):
            verify_signature(BODY.replace(b"evt_1", b"evt_2"), header, [SECRET])

    def test_tampered_timestamp_is_refused(self) -> None:
        ts = int(time.time())
        header = f"t={ts - 1},v1={compute_signature(BODY, SECRET, ts)}"
        with pytest.raises(SignatureInvalid):
            verify_signature(BODY, header, [SECRET])

    def test_any_of_several_v1_values_may_match(self) -> None:
        ts = int(time.time())
        header = f"t={ts},v1={'0' * 64},v1={compute_signature(BODY, SECRET, ts)}"
        assert verify_signature(BODY, header, [SECRET])["id"] == "evt_1"

    def test_rotation_accepts_old_and_new_secret(self) -> None:
        secrets = [SECRET, OLD]
        assert verify_signature(BODY, sign_payload(BODY, OLD), secrets)["id"] == "evt_1"
        assert verify_signature(BODY, sign_payload(BODY, SECRET), secrets)["id"] == "evt_1"

    def test_signed_but_not_json_is_malformed(self) -> None:
        body = b"not json {"
        with pytest.raises(MalformedJSON):
            verify_signature(body, sign_payload(body, SECRET), [SECRET])

    def test_signed_json_that_is_not_an_object_is_malformed(self) -> None:
        body = b"[1, 2]"
        with pytest.raises(MalformedJSON):
            verify_signature(body, sign_payload(body, SECRET), [SECRET])

    def test_malformed_is_checked_only_after_the_signature(self) -> None:
        with pytest.raises(SignatureInvalid):
            verify_signature(b"not json", sign_payload(b"other", SECRET), [SECRET])
