"""Stripe capture and refund through the real SDK against the local Stripe server."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from jobs_core import Job, JobType, PermanentJobError, RetryableJobError
from jobs_core.workers import WorkerDeps, build_handlers, stripe_idempotency_key
from jobs_core.workers.handlers import Handler
from jobs_core.workers.stripe_effects import build_stripe_client
from local_stack.stripe_server import StripeServer

CAPTURE_KEY = stripe_idempotency_key("esc-7", "capture")


def refund_key(job: Job) -> str:
    return stripe_idempotency_key("esc-7", f"refund-{job.id}")


def _deps(server: StripeServer, *, sdk_retries: int = 0) -> WorkerDeps:
    return WorkerDeps(
        stripe_api_key=server.api_key,
        stripe_api_base=server.url,
        stripe_max_network_retries=sdk_retries,
    )


def _capture_job(new_job: Callable[..., Job], intent_id: str, amount: int = 10000) -> Job:
    return new_job(
        JobType.STRIPE_CAPTURE_PAYMENT,
        {
            "transactionId": "esc-7",
            "amount": amount,
            "currency": "USD",
            "paymentIntentId": intent_id,
        },
    )


def _refund_job(new_job: Callable[..., Job], intent_id: str, **extra: object) -> Job:
    return new_job(
        JobType.STRIPE_REFUND_PAYMENT,
        {"transactionId": "esc-7", "paymentIntentId": intent_id, **extra},
    )


def _handler(deps: WorkerDeps, job_type: JobType) -> Handler:
    return build_handlers(deps)[job_type]


def test_capture_sends_the_escrow_key_and_captures(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd")
    job = _capture_job(new_job, intent["id"])
    _handler(_deps(stripe_server), JobType.STRIPE_CAPTURE_PAYMENT)(job)

    state = stripe_server.payment_intent(intent["id"])
    assert state["status"] == "succeeded"
    assert state["amount_received"] == 10000
    assert state["metadata"] == {"escrow_id": "esc-7", "job_id": job.id}
    [request] = stripe_server.requests_to("/capture")
    assert request.idempotency_key == CAPTURE_KEY == "escrow-esc-7-capture"
    assert request.params["amount_to_capture"] == "10000"


def test_job_retries_after_a_500_reuse_the_key(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd")
    job = _capture_job(new_job, intent["id"])
    handler = _handler(_deps(stripe_server), JobType.STRIPE_CAPTURE_PAYMENT)

    stripe_server.fail_next(2, "server_error")
    for _ in range(2):
        with pytest.raises(RetryableJobError, match="HTTP 500"):
            handler(job)
    handler(job)

    requests = stripe_server.requests_to("/capture")
    assert [r.status for r in requests] == [500, 500, 200]
    assert {r.idempotency_key for r in requests} == {CAPTURE_KEY}
    assert stripe_server.payment_intent(intent["id"])["status"] == "succeeded"


def test_sdk_retries_reuse_the_key_too(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd")
    stripe_server.fail_next(1, "server_error")
    _handler(_deps(stripe_server, sdk_retries=1), JobType.STRIPE_CAPTURE_PAYMENT)(
        _capture_job(new_job, intent["id"])
    )
    requests = stripe_server.requests_to("/capture")
    assert [r.status for r in requests] == [500, 200]
    assert {r.idempotency_key for r in requests} == {CAPTURE_KEY}


def test_redelivery_after_the_effect_gets_stripes_replay(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd")
    job = _capture_job(new_job, intent["id"])
    handler = _handler(_deps(stripe_server), JobType.STRIPE_CAPTURE_PAYMENT)
    handler(job)
    handler(job)
    first, second = stripe_server.requests_to("/capture")
    assert (first.replayed, second.replayed) == (False, True)
    assert first.idempotency_key == second.idempotency_key == CAPTURE_KEY


def test_capture_redelivered_after_stripe_forgot_the_key_is_success(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    """After 24 h Stripe answers 'already captured'; the job succeeds, nothing is captured twice."""
    intent = stripe_server.create_payment_intent(10000, "usd")
    job = _capture_job(new_job, intent["id"])
    handler = _handler(_deps(stripe_server), JobType.STRIPE_CAPTURE_PAYMENT)
    handler(job)
    stripe_server.forget_idempotency_keys()
    handler(job)
    assert [r.status for r in stripe_server.requests_to("/capture")] == [200, 400]
    assert stripe_server.payment_intent(intent["id"])["amount_received"] == 10000


def test_rate_limit_is_retryable(stripe_server: StripeServer, new_job: Callable[..., Job]) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd")
    stripe_server.fail_next(1, "rate_limit")
    with pytest.raises(RetryableJobError, match="rate_limit") as caught:
        _handler(_deps(stripe_server), JobType.STRIPE_CAPTURE_PAYMENT)(
            _capture_job(new_job, intent["id"])
        )
    assert caught.value.delay_s == 1  # the server's Retry-After


def test_card_error_is_permanent_with_message_and_request_id(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd")
    stripe_server.fail_next(1, "card_error")
    with pytest.raises(PermanentJobError) as caught:
        _handler(_deps(stripe_server), JobType.STRIPE_CAPTURE_PAYMENT)(
            _capture_job(new_job, intent["id"])
        )
    [request] = stripe_server.requests_to("/capture")
    text = str(caught.value)
    assert "Your card was declined." in text
    assert "card_declined" in text
    assert request.request_id in text


def test_invalid_request_is_permanent(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd")
    with pytest.raises(PermanentJobError, match="amount_too_large") as caught:
        _handler(_deps(stripe_server), JobType.STRIPE_CAPTURE_PAYMENT)(
            _capture_job(new_job, intent["id"], amount=20000)
        )
    [request] = stripe_server.requests_to("/capture")
    assert request.request_id in str(caught.value)
    assert stripe_server.payment_intent(intent["id"])["status"] == "requires_capture"


def test_capturing_a_cancelled_intent_is_permanent(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd", status="canceled")
    with pytest.raises(PermanentJobError, match="payment_intent_unexpected_state"):
        _handler(_deps(stripe_server), JobType.STRIPE_CAPTURE_PAYMENT)(
            _capture_job(new_job, intent["id"])
        )


def test_wrong_api_key_is_permanent(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd")
    deps = WorkerDeps(stripe_api_key="sk_test_wrong", stripe_api_base=stripe_server.url)
    with pytest.raises(PermanentJobError, match="HTTP 401"):
        _handler(deps, JobType.STRIPE_CAPTURE_PAYMENT)(_capture_job(new_job, intent["id"]))


def test_unreachable_stripe_is_retryable(new_job: Callable[..., Job]) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    deps = WorkerDeps(
        stripe_api_key="sk_test_x",
        stripe_api_base=f"http://127.0.0.1:{port}",
        stripe_max_network_retries=0,
    )
    with pytest.raises(RetryableJobError, match="APIConnectionError"):
        _handler(deps, JobType.STRIPE_CAPTURE_PAYMENT)(_capture_job(new_job, "pi_unreachable"))


def test_refund_full_and_redelivered(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd", status="succeeded")
    job = _refund_job(new_job, intent["id"], reason="buyer changed their mind")
    handler = _handler(_deps(stripe_server), JobType.STRIPE_REFUND_PAYMENT)
    handler(job)
    handler(job)

    [refund] = stripe_server.refunds
    assert refund["amount"] == 10000
    assert refund["metadata"] == {
        "escrow_id": "esc-7",
        "job_id": job.id,
        "operation_id": job.id,
        "reason": "buyer changed their mind",
    }
    # The second delivery read the intent's refunds and found its own: nothing was sent.
    [request] = stripe_server.requests_to("/v1/refunds")
    assert request.idempotency_key == refund_key(job) == f"escrow-esc-7-refund-{job.id}"
    assert len(stripe_server.requests_to("/v1/refunds", method="GET")) == 2


def test_partial_refund_retried_after_429_refunds_once(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd", status="succeeded")
    job = _refund_job(new_job, intent["id"], amount=2500)
    handler = _handler(_deps(stripe_server), JobType.STRIPE_REFUND_PAYMENT)
    stripe_server.fail_next(1, "rate_limit")
    with pytest.raises(RetryableJobError):
        handler(job)
    handler(job)
    handler(job)
    assert [r["amount"] for r in stripe_server.refunds] == [2500]
    assert {r.idempotency_key for r in stripe_server.requests_to("/v1/refunds")} == {
        refund_key(job)
    }


def test_full_refund_redelivered_after_key_expiry_is_success(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd", status="succeeded")
    job = _refund_job(new_job, intent["id"])
    handler = _handler(_deps(stripe_server), JobType.STRIPE_REFUND_PAYMENT)
    handler(job)
    stripe_server.forget_idempotency_keys()
    handler(job)
    assert len(stripe_server.refunds) == 1


def test_refund_of_an_uncaptured_intent_is_permanent(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd")
    with pytest.raises(PermanentJobError, match="charge_not_refundable"):
        _handler(_deps(stripe_server), JobType.STRIPE_REFUND_PAYMENT)(
            _refund_job(new_job, intent["id"])
        )


def test_stripe_key_from_a_secret_reference(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    deps = WorkerDeps.from_env(
        {
            "STRIPE_API_KEY_REF": "escrow/stripe-key",
            "ESCROW_STRIPE_KEY": stripe_server.api_key,  # the env resolver's name for the ref
            "STRIPE_API_BASE": stripe_server.url,
            "STRIPE_MAX_NETWORK_RETRIES": "0",
        }
    )
    intent = stripe_server.create_payment_intent(10000, "usd")
    _handler(deps, JobType.STRIPE_CAPTURE_PAYMENT)(_capture_job(new_job, intent["id"]))
    assert stripe_server.payment_intent(intent["id"])["status"] == "succeeded"


def test_missing_stripe_key_is_a_permanent_configuration_error(
    new_job: Callable[..., Job],
) -> None:
    with pytest.raises(PermanentJobError, match="configuration"):
        _handler(WorkerDeps(), JobType.STRIPE_CAPTURE_PAYMENT)(_capture_job(new_job, "pi_1"))


def test_sdk_client_talks_to_the_local_server(stripe_server: StripeServer) -> None:
    """Our httpx-based SDK transport: create, retrieve, cancel round-trip."""
    client = build_stripe_client(stripe_server.api_key, api_base=stripe_server.url)
    intent = client.v1.payment_intents.create(
        {"amount": 500, "currency": "jpy", "capture_method": "manual", "confirm": True,
         "payment_method": "pm_card_visa"},
        {"idempotency_key": "escrow-esc-9-create"},
    )  # fmt: skip
    assert intent.status == "requires_capture"
    assert client.v1.payment_intents.retrieve(intent.id).amount == 500
    assert client.v1.payment_intents.cancel(intent.id).status == "canceled"


def test_refund_of_a_charged_back_payment_is_permanent_and_moves_nothing(
    stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd", status="succeeded")
    stripe_server.open_dispute(intent["id"])
    with pytest.raises(PermanentJobError, match="frozen by a chargeback"):
        _handler(_deps(stripe_server), JobType.STRIPE_REFUND_PAYMENT)(
            _refund_job(new_job, intent["id"], amount=1000)
        )
    assert stripe_server.refunds == []
