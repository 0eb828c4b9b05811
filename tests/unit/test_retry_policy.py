"""Retry policies per job type (issue 14): webhooks on the Standard Webhooks schedule with
jitter, the rest on the queue-wide exponential policy, each configurable."""

from __future__ import annotations

import random

import pytest
from jobs_core import ConfigurationError, JobType, Settings
from jobs_core.backoff import STANDARD_WEBHOOKS_SCHEDULE_S, RetryPolicy

HOUR = 3600


def test_webhooks_retry_for_about_three_days_on_the_standard_webhooks_schedule() -> None:
    policy = Settings().retry_policy(JobType.WEBHOOK_ESCROW_STATUS_CHANGED)
    assert policy.max_attempts == 10
    assert STANDARD_WEBHOOKS_SCHEDULE_S == (5, 300, 1800, 2 * HOUR, 5 * HOUR, 10 * HOUR,
                                            14 * HOUR, 20 * HOUR, 24 * HOUR)  # fmt: skip
    total = sum(STANDARD_WEBHOOKS_SCHEDULE_S)
    assert 3 * 24 * HOUR <= total <= 3.2 * 24 * HOUR
    rand = random.Random(7)
    for attempt, base in enumerate(STANDARD_WEBHOOKS_SCHEDULE_S, 1):
        delays = {policy.delay(attempt, rand) for _ in range(50)}
        assert all(0.9 * base <= d <= 1.1 * base for d in delays)
        assert len(delays) > 1  # jittered: partners' retries do not arrive in lockstep


def test_email_stripe_and_audit_keep_the_short_queue_wide_policy() -> None:
    settings = Settings(max_attempts=3, backoff_base_s=2, backoff_cap_s=300)
    for job_type in (JobType.SEND_RELEASE_EMAIL, JobType.STRIPE_CAPTURE_PAYMENT,
                     JobType.AUDIT_LOG_CREATED):  # fmt: skip
        policy = settings.retry_policy(job_type)
        assert (policy.max_attempts, policy.base_s, policy.cap_s) == (3, 2, 300)
        assert all(0 <= policy.delay(a, random.Random(a)) <= min(300, 2 * 2 ** (a - 1))
                   for a in range(1, 12))  # fmt: skip


def test_policies_are_configurable_per_type_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "JOBS_RETRY_POLICIES": '{"stripe_capture_payment": {"max_attempts": 5, "base_s": 1,'
            ' "cap_s": 60}, "webhook_escrow_status_changed": {"max_attempts": 3,'
            ' "schedule_s": [1, 2], "jitter": 0}}'
        }
    )
    assert settings.retry_policy("stripe_capture_payment") == RetryPolicy(5, base_s=1, cap_s=60)
    webhook = settings.retry_policy("webhook_escrow_status_changed")
    assert [webhook.delay(a) for a in (1, 2, 3)] == [1, 2, 2]  # the last step repeats
    assert settings.retry_policy("send_release_email").max_attempts == 3


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        '{"no_such_type": {"max_attempts": 2}}',
        '{"send_release_email": {"base_s": 2}}',
        '{"send_release_email": {"max_attempts": 0}}',
        '{"send_release_email": {"max_attempts": 2, "jitter": 2}}',
        '{"send_release_email": {"max_attempts": 2, "surprise": 1}}',
    ],
)
def test_a_bad_policy_is_a_configuration_error(raw: str) -> None:
    with pytest.raises(ConfigurationError, match="JOBS_RETRY_POLICIES"):
        Settings.from_env({"JOBS_RETRY_POLICIES": raw})


def test_enqueue_gives_each_type_its_policys_attempts() -> None:
    from jobs_core import JobQueue, memory_backend

    queue = JobQueue(memory_backend(), Settings())
    webhook = queue.enqueue_job(
        "webhook_escrow_status_changed",
        {"transactionId": "esc-1", "webhookUrl": "https://partner.example/h",
         "webhookSecretRef": "p", "status": "funded"},
    )  # fmt: skip
    email = queue.enqueue_job(
        "send_release_email",
        {"transactionId": "esc-1", "recipientEmail": "a@example.com", "amount": 100},
    )
    status = queue.get_job_status
    assert (status(webhook).max_attempts, status(email).max_attempts) == (10, 3)  # type: ignore[union-attr]


def test_describe_lists_the_schedule() -> None:
    text = Settings().retry_policy("webhook_escrow_status_changed").describe()
    assert text.startswith("10 attempts: then 5 s, 5 min, 30 min, 2 h")
