"""Stripe webhook verification through the SDK: signed, unsigned, stale, wrong secret."""

from __future__ import annotations

import json
import time

import pytest
import stripe
from escrow.stripe_gateway import StripeGateway, WebhookSignatureError

SECRET = "whsec_test_secret"
PAYLOAD = json.dumps(
    {
        "id": "evt_1",
        "object": "event",
        "type": "payment_intent.amount_capturable_updated",
        "data": {
            "object": {"id": "pi_1", "object": "payment_intent", "metadata": {"escrow_id": "e"}}
        },
    }
).encode()


def sign(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    ts = int(time.time()) if at is None else at
    mac = stripe.WebhookSignature._compute_signature(f"{ts}.{payload.decode()}", secret)
    return f"t={ts},v1={mac}"


def gateway() -> StripeGateway:
    def no_key() -> str:
        raise AssertionError("verifying a webhook needs no API key")

    return StripeGateway(no_key, lambda: SECRET)


def test_a_signed_event_is_parsed() -> None:
    event = gateway().construct_event(PAYLOAD, sign(PAYLOAD))
    assert (event.id, event.type) == ("evt_1", "payment_intent.amount_capturable_updated")
    assert event.object["metadata"] == {"escrow_id": "e"}


HEADERS = {
    "missing": lambda: None,
    "empty": lambda: "",
    "garbage": lambda: "t=1,v1=00",
    "other_secret": lambda: sign(PAYLOAD, "whsec_other"),
    "stale": lambda: sign(PAYLOAD, at=int(time.time()) - 3600),  # replayed an hour later
}


@pytest.mark.parametrize("case", list(HEADERS))
def test_unsigned_wrongly_signed_or_stale_events_are_refused(case: str) -> None:
    with pytest.raises(WebhookSignatureError):
        gateway().construct_event(PAYLOAD, HEADERS[case]())


def test_a_tampered_payload_is_refused() -> None:
    header = sign(PAYLOAD)
    with pytest.raises(WebhookSignatureError):
        gateway().construct_event(PAYLOAD.replace(b"pi_1", b"pi_2"), header)


def test_signed_garbage_is_refused() -> None:
    with pytest.raises(WebhookSignatureError):
        gateway().construct_event(b"not json", sign(b"not json"))
