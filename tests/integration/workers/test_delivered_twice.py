"""Every job type, delivered twice (its processor died after the effect, before the ack),
performs its effect once: one SES message per recipient, one Stripe capture or refund,
one accepted webhook, one audit row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from jobs_core import Job, JobType
from jobs_core.workers import WorkerDeps, build_handlers, stripe_idempotency_key
from jobs_core.workers.effects import FileEffectLedger
from local_stack.stripe_server import StripeServer

from tests.integration.workers.conftest import Aws
from tests.integration.workers.helpers import payloads
from tests.support.webhook_receiver import WebhookReceiver


def _effects(
    job_type: JobType, aws: Aws, stripe: StripeServer, receiver: WebhookReceiver
) -> dict[str, int]:
    """What the outside world saw, counted per kind of effect."""
    return {
        "emails": len(aws.sent_emails()),
        "captures": sum(1 for r in stripe.requests_to("/capture") if not r.replayed),
        "refunds": len(stripe.refunds),
        "webhooks_accepted": len(receiver.accepted),
        "webhook_posts": len(receiver.deliveries),
        "audit_rows": len(aws.audit_rows("esc-1")),
    }


EXPECTED: dict[JobType, dict[str, int]] = {
    JobType.SEND_RELEASE_EMAIL: {"emails": 1},
    JobType.SEND_REFUND_EMAIL: {"emails": 1},
    JobType.SEND_DISPUTE_EMAIL: {"emails": 2},  # one per party
    JobType.SEND_PAYMENT_CONFIRMED_EMAIL: {"emails": 1},
    JobType.STRIPE_CAPTURE_PAYMENT: {"captures": 1},
    JobType.STRIPE_REFUND_PAYMENT: {"refunds": 1},
    JobType.WEBHOOK_ESCROW_STATUS_CHANGED: {"webhooks_accepted": 1, "webhook_posts": 1},
    JobType.NOTIFY_DISPUTE_RESOLVED: {"emails": 2, "webhooks_accepted": 1, "webhook_posts": 1},
    JobType.AUDIT_LOG_CREATED: {"audit_rows": 1},
    JobType.SEND_PAYMENT_NOTICE_EMAIL: {"emails": 2},  # the buyer and the admin
}


def test_every_job_type_is_covered() -> None:
    assert set(EXPECTED) == set(JobType)


@pytest.mark.parametrize("job_type", list(JobType), ids=str)
def test_a_job_delivered_twice_has_its_effect_once(
    job_type: JobType,
    aws: Aws,
    aws_deps: WorkerDeps,
    stripe_server: StripeServer,
    receiver: WebhookReceiver,
    new_job: Callable[..., Job],
) -> None:
    intent = stripe_server.create_payment_intent(
        10000,
        "usd",
        status="succeeded" if job_type is JobType.STRIPE_REFUND_PAYMENT else "requires_capture",
    )
    job = new_job(job_type, payloads(receiver.url, intent["id"])[job_type])
    handlers = build_handlers(aws_deps)

    handlers[job_type](job)
    after_first = _effects(job_type, aws, stripe_server, receiver)
    handlers[job_type](job)  # the redelivery
    after_second = _effects(job_type, aws, stripe_server, receiver)

    expected = {kind: EXPECTED[job_type].get(kind, 0) for kind in after_first}
    assert after_first == expected
    assert after_second == expected
    if job_type is JobType.STRIPE_CAPTURE_PAYMENT:
        keys = {r.idempotency_key for r in stripe_server.requests_to("/capture")}
        assert keys == {stripe_idempotency_key("esc-1", "capture")}
        assert stripe_server.payment_intent(intent["id"])["status"] == "succeeded"
    if job_type is JobType.STRIPE_REFUND_PAYMENT:
        keys = {r.idempotency_key for r in stripe_server.requests_to("/v1/refunds")}
        assert keys == {stripe_idempotency_key("esc-1", f"refund-{job.id}")}


def test_two_deliveries_at_once_send_one_email(
    aws: Aws, aws_deps: WorkerDeps, new_job: Callable[..., Job], tmp_path: Path
) -> None:
    """A lease that ran out mid-send: several processors hold the same job at the same time.

    DynamoDB's conditional put is atomic in the service, but moto's is not under threads,
    so this race runs against the file ledger (flock); test_ledger checks that the DynamoDB
    ledger makes the same decisions one call at a time.
    """
    import threading

    aws_deps.effect_ledger = FileEffectLedger(tmp_path / "effects")
    job = new_job(
        JobType.SEND_RELEASE_EMAIL,
        payloads("https://x.example", "pi_1")[JobType.SEND_RELEASE_EMAIL],
    )
    handler = build_handlers(aws_deps)[JobType.SEND_RELEASE_EMAIL]
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def deliver() -> None:
        barrier.wait()
        try:
            handler(job)
            outcomes.append("ok")
        except Exception as exc:  # the loser is told to retry later
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(aws.sent_emails()) == 1
    assert set(outcomes) <= {"ok", "RetryableJobError"}
    handler(job)  # a later redelivery: recorded as done, nothing sent
    assert len(aws.sent_emails()) == 1


def test_a_capture_deadline_reminder_is_not_sent_once_the_payment_was_captured(
    aws: Aws,
    aws_deps: WorkerDeps,
    stripe_server: StripeServer,
    receiver: WebhookReceiver,
    new_job: Callable[..., Job],
) -> None:
    intent = stripe_server.create_payment_intent(10000, "usd", status="succeeded")
    job_type = JobType.SEND_PAYMENT_NOTICE_EMAIL
    build_handlers(aws_deps)[job_type](
        new_job(job_type, payloads(receiver.url, intent["id"])[job_type])
    )
    assert aws.sent_emails() == []
    [read] = stripe_server.requests_to(f"/v1/payment_intents/{intent['id']}", method="GET")
    assert read.status == 200
