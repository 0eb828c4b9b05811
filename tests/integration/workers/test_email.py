"""Emails through SES (moto), Resend (a local stand-in) and the local mailbox."""

from __future__ import annotations

import email
import logging
from collections.abc import Callable
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from jobs_core import Job, JobType, PermanentJobError, RetryableJobError
from jobs_core.workers import WorkerDeps, build_handlers
from jobs_core.workers.effects import MemoryEffectLedger

from tests.integration.workers.conftest import Aws, ResendServer
from tests.integration.workers.helpers import SENDER, payloads

ADDRESSES = ("seller@example.com", "buyer@example.com")


def _payload(job_type: JobType) -> dict[str, object]:
    return payloads("https://partner.example/hooks", "pi_1")[job_type]


def test_ses_message_has_subject_text_and_escaped_html(
    aws: Aws, aws_deps: WorkerDeps, new_job: Callable[..., Job]
) -> None:
    job = new_job(JobType.SEND_RELEASE_EMAIL, _payload(JobType.SEND_RELEASE_EMAIL))
    build_handlers(aws_deps)[JobType.SEND_RELEASE_EMAIL](job)

    [sent] = aws.sent_emails()
    assert sent.source == SENDER
    assert sent.destinations["ToAddresses"] == ["seller@example.com"]
    assert sent.subject == "Funds released for escrow esc-1"
    assert "$100.00" in sent.body
    assert "Sam &lt;Seller&gt;" in sent.body  # the recipient's name, escaped
    assert "<Seller>" not in sent.body


def test_dispute_email_goes_to_both_parties_each_with_its_own_ledger_entry(
    aws: Aws, aws_deps: WorkerDeps, new_job: Callable[..., Job]
) -> None:
    job = new_job(JobType.SEND_DISPUTE_EMAIL, _payload(JobType.SEND_DISPUTE_EMAIL))
    build_handlers(aws_deps)[JobType.SEND_DISPUTE_EMAIL](job)

    recipients = sorted(m.destinations["ToAddresses"][0] for m in aws.sent_emails())
    assert recipients == ["buyer@example.com", "seller@example.com"]
    assert all("¥500" in m.body for m in aws.sent_emails())
    for party in ("buyer", "seller"):
        entry = aws.ledger_entry(f"{job.id}/email/{party}")
        assert entry is not None
        assert entry["status"]["S"] == "done"
        assert int(entry["expires_at"]["N"]) > 0  # the TTL attribute


def test_a_failed_party_is_retried_alone(
    aws: Aws, aws_deps: WorkerDeps, new_job: Callable[..., Job]
) -> None:
    """The seller's address is refused once; the retry sends to the seller only."""
    payload = dict(_payload(JobType.SEND_DISPUTE_EMAIL))
    job = new_job(JobType.SEND_DISPUTE_EMAIL, payload)
    handlers = build_handlers(aws_deps)
    real = aws_deps.ses()

    class FlakySes:
        calls = 0

        def send_email(self, **request: object) -> object:
            to = request["Destination"]["ToAddresses"][0]  # type: ignore[index]
            if to == "seller@example.com" and FlakySes.calls == 0:
                FlakySes.calls += 1
                from botocore.exceptions import ClientError

                raise ClientError(
                    {"Error": {"Code": "TooManyRequestsException", "Message": f"slow down {to}"},
                     "ResponseMetadata": {"HTTPStatusCode": 429, "RequestId": "r-1"}},
                    "SendEmail",
                )  # fmt: skip
            return real.send_email(**request)

    aws_deps.ses_client = FlakySes()
    with pytest.raises(RetryableJobError) as caught:
        handlers[JobType.SEND_DISPUTE_EMAIL](job)
    assert "seller@example.com" not in str(caught.value)  # redacted in the stored error
    assert [m.destinations["ToAddresses"][0] for m in aws.sent_emails()] == ["buyer@example.com"]

    handlers[JobType.SEND_DISPUTE_EMAIL](job)
    assert sorted(m.destinations["ToAddresses"][0] for m in aws.sent_emails()) == [
        "buyer@example.com",
        "seller@example.com",
    ]


def test_unverified_sender_is_permanent_and_redacted(
    aws: Aws, aws_deps: WorkerDeps, new_job: Callable[..., Job]
) -> None:
    aws_deps.email_from = "someone@unverified.example"
    job = new_job(JobType.SEND_RELEASE_EMAIL, _payload(JobType.SEND_RELEASE_EMAIL))
    with pytest.raises(PermanentJobError, match="MessageRejected") as caught:
        build_handlers(aws_deps)[JobType.SEND_RELEASE_EMAIL](job)
    assert "someone@unverified.example" not in str(caught.value)
    assert "s***@unverified.example" in str(caught.value)
    assert aws.ledger_entry(f"{job.id}/email/recipient") is None  # released: a retry may send


def test_mailbox_writes_one_eml_per_message_once(
    tmp_path: Path, new_job: Callable[..., Job]
) -> None:
    deps = WorkerDeps.from_env({"LOCAL_STATE_DIR": str(tmp_path)})
    job = new_job(JobType.SEND_REFUND_EMAIL, _payload(JobType.SEND_REFUND_EMAIL))
    handler = build_handlers(deps)[JobType.SEND_REFUND_EMAIL]
    handler(job)
    handler(job)

    files = list((tmp_path / "mailbox").glob("*.eml"))
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "buyer@example.com"
    assert message["Subject"] == "Your payment for escrow esc-1 was refunded"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "Reason: item <not> received" in text.get_content()
    assert "item &lt;not&gt; received" in html.get_content()
    assert list((tmp_path / "effects").glob("*.json"))  # the file ledger survives restarts


def test_resend_sends_the_effect_id_as_idempotency_key(
    resend: ResendServer, tmp_path: Path, new_job: Callable[..., Job]
) -> None:
    deps = WorkerDeps.from_env(
        {
            "EMAIL_PROVIDER": "resend",
            "EMAIL_FROM": SENDER,
            "RESEND_API_URL": resend.url,
            "RESEND_API_KEY_REF": "resend-key",
            "RESEND_KEY": resend.api_key,
            "LOCAL_STATE_DIR": str(tmp_path),
        }
    )
    job = new_job(
        JobType.SEND_PAYMENT_CONFIRMED_EMAIL, _payload(JobType.SEND_PAYMENT_CONFIRMED_EMAIL)
    )
    handler = build_handlers(deps)[JobType.SEND_PAYMENT_CONFIRMED_EMAIL]

    resend.fail_next.append(
        (429, {"Retry-After": "3"}, {"name": "rate_limit_exceeded", "message": "slow"})
    )
    with pytest.raises(RetryableJobError) as caught:
        handler(job)
    assert caught.value.delay_s == 3
    handler(job)
    handler(job)  # redelivered: the ledger stops it before Resend

    assert len(resend.sent) == 1
    assert resend.sent[0]["to"] == ["buyer@example.com"]
    assert resend.sent[0]["subject"].startswith("Payment received: $100.00")
    assert {r["idempotency_key"] for r in resend.requests} == {f"{job.id}/email/recipient"}
    assert len(resend.requests) == 2


def test_resend_key_reused_when_the_ledger_lost_the_record(
    resend: ResendServer, new_job: Callable[..., Job]
) -> None:
    """The crash window (sent, not recorded) is closed by Resend's Idempotency-Key."""
    deps = WorkerDeps(
        email_provider="resend",
        email_from=SENDER,
        resend_api_url=resend.url,
        resend_api_key=resend.api_key,
    )
    job = new_job(JobType.SEND_RELEASE_EMAIL, _payload(JobType.SEND_RELEASE_EMAIL))
    handler = build_handlers(deps)

    deps.effect_ledger = MemoryEffectLedger()
    handler[JobType.SEND_RELEASE_EMAIL](job)
    deps.effect_ledger = MemoryEffectLedger()  # as if the record had never been written
    handler[JobType.SEND_RELEASE_EMAIL](job)

    assert len(resend.requests) == 2
    assert len(resend.sent) == 1


def test_resend_errors_are_classified(resend: ResendServer, new_job: Callable[..., Job]) -> None:
    deps = WorkerDeps(
        email_provider="resend", email_from=SENDER, resend_api_url=resend.url,
        resend_api_key="wrong", effect_ledger=MemoryEffectLedger(),
    )  # fmt: skip
    job = new_job(JobType.SEND_RELEASE_EMAIL, _payload(JobType.SEND_RELEASE_EMAIL))
    with pytest.raises(PermanentJobError, match="401"):
        build_handlers(deps)[JobType.SEND_RELEASE_EMAIL](job)
    deps.resend_api_key = resend.api_key
    resend.fail_next.append((503, {}, {"name": "internal_server_error", "message": "down"}))
    with pytest.raises(RetryableJobError, match="503"):
        build_handlers(deps)[JobType.SEND_RELEASE_EMAIL](job)


@pytest.mark.parametrize(
    "job_type",
    [
        JobType.SEND_RELEASE_EMAIL,
        JobType.SEND_REFUND_EMAIL,
        JobType.SEND_DISPUTE_EMAIL,
        JobType.SEND_PAYMENT_CONFIRMED_EMAIL,
    ],
    ids=str,
)
def test_addresses_never_appear_whole_in_logs(
    job_type: JobType,
    aws: Aws,
    aws_deps: WorkerDeps,
    new_job: Callable[..., Job],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="jobs_core")
    job = new_job(job_type, _payload(job_type))
    handler = build_handlers(aws_deps)[job_type]
    handler(job)
    handler(job)

    assert aws.sent_emails()
    logged = caplog.text
    assert "***@example.com" in logged  # the sends were logged, redacted
    for address in ADDRESSES:
        assert address not in logged
