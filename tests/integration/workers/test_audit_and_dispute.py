"""The audit row (DynamoDB via moto, and local files) and the dispute resolution's three effects."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jobs_core import Job, JobType, ManualClock, PermanentJobError, RetryableJobError
from jobs_core.workers import WorkerDeps, build_handlers

from tests.integration.workers.conftest import Aws
from tests.integration.workers.helpers import PARTNER_SECRET_REF, payloads
from tests.support.webhook_receiver import WebhookReceiver

AUDIT = {
    "transactionId": "esc-5",
    "action": "release",
    "actor": "user:42",
    "stateBefore": "funded",
    "stateAfter": "released",
    "amount": 10000,
    "currency": "EUR",
    "occurredAt": "2026-03-01T10:00:00Z",
    "requestId": "req-abc",
}


def test_audit_row_is_written_once_with_every_field(
    aws: Aws, aws_deps: WorkerDeps, new_job: Callable[..., Job]
) -> None:
    aws_deps.clock = ManualClock(1_767_225_600_000)
    job = new_job(JobType.AUDIT_LOG_CREATED, AUDIT, correlation_id="corr-9")
    handler = build_handlers(aws_deps)[JobType.AUDIT_LOG_CREATED]
    handler(job)
    aws_deps.clock = ManualClock(1_767_225_999_000)  # a redelivery, later: the row is not rewritten
    handler(job)

    [row] = aws.audit_rows("esc-5")
    assert {k: next(iter(v.values())) for k, v in row.items()} == {
        "escrow_id": "esc-5",
        "event_id": job.id,
        "action": "release",
        "actor": "user:42",
        "state_before": "funded",
        "state_after": "released",
        "amount": "10000",
        "currency": "EUR",
        "occurred_at": "2026-03-01T10:00:00Z",
        "recorded_at": "2026-01-01T00:00:00Z",
        "request_id": "req-abc",
        "correlation_id": "corr-9",
        "job_type": "audit_log_created",
    }


def test_two_audit_jobs_make_two_rows(
    aws: Aws, aws_deps: WorkerDeps, new_job: Callable[..., Job]
) -> None:
    handler = build_handlers(aws_deps)[JobType.AUDIT_LOG_CREATED]
    handler(new_job(JobType.AUDIT_LOG_CREATED, AUDIT))
    handler(new_job(JobType.AUDIT_LOG_CREATED, {**AUDIT, "action": "refund"}))
    assert sorted(r["action"]["S"] for r in aws.audit_rows("esc-5")) == ["refund", "release"]


def test_missing_audit_table_is_permanent(
    aws: Aws, aws_deps: WorkerDeps, new_job: Callable[..., Job]
) -> None:
    aws_deps.audit_table_name = "no-such-table"
    with pytest.raises(PermanentJobError, match="ResourceNotFoundException"):
        build_handlers(aws_deps)[JobType.AUDIT_LOG_CREATED](
            new_job(JobType.AUDIT_LOG_CREATED, AUDIT)
        )


def test_local_audit_rows_are_files_written_once(
    tmp_path: Path, new_job: Callable[..., Job]
) -> None:
    deps = WorkerDeps.from_env({"LOCAL_STATE_DIR": str(tmp_path)})
    job = new_job(JobType.AUDIT_LOG_CREATED, {k: v for k, v in AUDIT.items() if k != "occurredAt"})
    handler = build_handlers(deps)[JobType.AUDIT_LOG_CREATED]
    handler(job)
    handler(job)
    [path] = (tmp_path / "audit" / "esc-5").glob("*.json")
    row = json.loads(path.read_text())
    assert row["event_id"] == job.id
    assert datetime.fromisoformat(row["occurred_at"]) == job.created_at.astimezone(UTC)


def test_audit_in_lambda_without_a_table_is_a_configuration_error(
    new_job: Callable[..., Job],
) -> None:
    deps = WorkerDeps.from_env({"AWS_LAMBDA_FUNCTION_NAME": "job-processor"})
    with pytest.raises(PermanentJobError, match="AUDIT_TABLE_NAME"):
        build_handlers(deps)[JobType.AUDIT_LOG_CREATED](new_job(JobType.AUDIT_LOG_CREATED, AUDIT))


# --- notify_dispute_resolved ------------------------------------------------------------


def _resolved(receiver: WebhookReceiver, **extra: object) -> dict[str, object]:
    return {**payloads(receiver.url, "pi_1")[JobType.NOTIFY_DISPUTE_RESOLVED], **extra}


def test_dispute_resolved_emails_both_parties_and_notifies_the_partner(
    aws: Aws, aws_deps: WorkerDeps, receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    job = new_job(JobType.NOTIFY_DISPUTE_RESOLVED, _resolved(receiver, note="Seller <agreed>"))
    build_handlers(aws_deps)[JobType.NOTIFY_DISPUTE_RESOLVED](job)

    sent = {m.destinations["ToAddresses"][0]: m for m in aws.sent_emails()}
    assert set(sent) == {"buyer@example.com", "seller@example.com"}
    for message in sent.values():
        assert message.subject == "The dispute on escrow esc-1 is resolved"
        assert "$100.00 is refunded to the buyer" in message.body
        assert "Seller &lt;agreed&gt;" in message.body
    [delivery] = receiver.accepted
    assert delivery.payload["type"] == "escrow.dispute_resolved"
    assert delivery.payload["data"] == {
        "escrow_id": "esc-1",
        "outcome": "refunded",
        "amount": 10000,
        "currency": "USD",
    }


def test_dispute_resolved_retry_performs_only_what_failed(
    aws: Aws, aws_deps: WorkerDeps, receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    job = new_job(JobType.NOTIFY_DISPUTE_RESOLVED, _resolved(receiver))
    handler = build_handlers(aws_deps)[JobType.NOTIFY_DISPUTE_RESOLVED]
    receiver.respond_next(1, 503, {"Retry-After": "30"})
    with pytest.raises(RetryableJobError, match=r"webhook: .*HTTP 503") as caught:
        handler(job)
    assert caught.value.delay_s == 30
    assert len(aws.sent_emails()) == 2  # the emails went out despite the partner's outage

    handler(job)
    handler(job)
    assert len(aws.sent_emails()) == 2
    assert [d.status for d in receiver.deliveries] == [503, 200]
    assert len(receiver.accepted) == 1


def test_dispute_resolved_without_webhook_sends_only_the_emails(
    aws: Aws, aws_deps: WorkerDeps, receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    payload = _resolved(receiver)
    del payload["webhookUrl"], payload["webhookSecretRef"]
    build_handlers(aws_deps)[JobType.NOTIFY_DISPUTE_RESOLVED](
        new_job(JobType.NOTIFY_DISPUTE_RESOLVED, payload)
    )
    assert len(aws.sent_emails()) == 2
    assert receiver.deliveries == []


def test_dispute_resolved_refused_webhook_is_permanent_but_emails_are_sent(
    aws: Aws, aws_deps: WorkerDeps, receiver: WebhookReceiver, new_job: Callable[..., Job]
) -> None:
    aws_deps.webhook_allow_local = False
    job = new_job(
        JobType.NOTIFY_DISPUTE_RESOLVED,
        _resolved(
            receiver, webhookUrl="https://10.0.0.1/hooks", webhookSecretRef=PARTNER_SECRET_REF
        ),
    )
    with pytest.raises(PermanentJobError, match="private address"):
        build_handlers(aws_deps)[JobType.NOTIFY_DISPUTE_RESOLVED](job)
    assert len(aws.sent_emails()) == 2
