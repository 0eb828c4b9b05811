"""Stripe SDK exceptions map to retryable or permanent handler errors."""

from __future__ import annotations

import stripe
from jobs_core import PermanentJobError, RetryableJobError
from jobs_core.workers.stripe_effects import idempotency_key, stripe_error

HEADERS = {"request-id": "req_123"}


def _body(type_: str, code: str | None = None, message: str = "msg") -> dict[str, object]:
    return {"error": {"type": type_, "code": code, "message": message}}


def test_idempotency_keys_are_per_escrow_and_operation() -> None:
    assert idempotency_key("esc-1", "capture") == "escrow-esc-1-capture"
    assert idempotency_key("esc-1", "refund") == "escrow-esc-1-refund"


def test_retryable() -> None:
    cases: list[stripe.StripeError] = [
        stripe.RateLimitError(
            "slow down", http_status=429, json_body=_body("rate_limit"), headers=HEADERS
        ),
        stripe.APIConnectionError("network", should_retry=True),
        stripe.APIError("boom", http_status=500, json_body=_body("api_error"), headers=HEADERS),
        stripe.APIError("conflict", http_status=409, json_body=_body("api_error"), headers=HEADERS),
    ]
    for exc in cases:
        assert isinstance(stripe_error("capture", exc), RetryableJobError), exc


def test_permanent_with_message_and_request_id() -> None:
    cases: list[stripe.StripeError] = [
        stripe.CardError("Your card was declined.", None, "card_declined", http_status=402,
                         json_body=_body("card_error", "card_declined"), headers=HEADERS),
        stripe.InvalidRequestError("No such payment_intent", "intent", "resource_missing",
                                   http_status=404, json_body=_body("invalid_request_error"),
                                   headers=HEADERS),
        stripe.AuthenticationError("Invalid API Key", http_status=401, headers=HEADERS),
        stripe.IdempotencyError("Keys reused", http_status=400, headers=HEADERS),
    ]  # fmt: skip
    for exc in cases:
        mapped = stripe_error("refund", exc)
        assert isinstance(mapped, PermanentJobError), exc
        assert "req_123" in str(mapped)
        assert exc.user_message is not None and exc.user_message in str(mapped)


def test_unknown_exceptions_are_retryable() -> None:
    assert isinstance(stripe_error("capture", TimeoutError()), RetryableJobError)
