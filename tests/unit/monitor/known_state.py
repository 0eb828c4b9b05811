"""A queue in a known state, and the exact metrics the monitor must publish for it.

``seed`` drives a real ``JobQueue`` (whatever its backend) through enqueue, claim and
fail with a ``ManualClock``, so the expected numbers are exact, the age included:

    t+0    enqueue 1 send_release_email                       (the oldest ready job)
    t+10   enqueue 2 send_release_email, 2 webhooks, 1 capture delayed 600 s,
           1 audit row (max 1 attempt), 1 refund email
           claim the audit job and fail it permanently       -> dead letter
    t+90   claim the refund email (lease 60 s)               -> running
    t+100  expected: ready 3 + 2, scheduled 1, running 1, dead 1, oldest ready 100 s
"""

from __future__ import annotations

from dataclasses import dataclass

from jobs_core import JobQueue, JobType, ManualClock

RELEASE = {"transactionId": "esc-1", "recipientEmail": "seller@example.com", "amount": 10_000}
WEBHOOK = {
    "transactionId": "esc-1",
    "webhookUrl": "https://partner.example.com/hooks/escrow",
    "webhookSecretRef": "partner/acme",
    "status": "released",
}
CAPTURE = {"transactionId": "esc-1", "paymentIntentId": "pi_123", "amount": 10_000}
AUDIT = {"transactionId": "esc-1", "action": "release", "actor": "buyer-1"}
REFUND = {"transactionId": "esc-2", "recipientEmail": "buyer@example.com", "amount": 500}

AGE_S = 100.0


@dataclass(frozen=True)
class KnownState:
    ready_by_type: dict[JobType, int]
    scheduled: int
    running: int
    dead: int
    oldest_ready_age_s: float

    @property
    def ready(self) -> int:
        return sum(self.ready_by_type.values())


def seed(queue: JobQueue, clock: ManualClock) -> KnownState:
    """Put the queue (empty, on ``clock``) in the state above; the clock ends at t+100."""
    queue.enqueue_job(JobType.SEND_RELEASE_EMAIL, RELEASE)
    clock.advance(10)
    queue.enqueue_jobs(
        [
            (JobType.SEND_RELEASE_EMAIL, RELEASE),
            (JobType.SEND_RELEASE_EMAIL, RELEASE),
            (JobType.WEBHOOK_ESCROW_STATUS_CHANGED, WEBHOOK),
            (JobType.WEBHOOK_ESCROW_STATUS_CHANGED, WEBHOOK),
            (JobType.STRIPE_CAPTURE_PAYMENT, CAPTURE, {"delay_s": 600}),
            (JobType.AUDIT_LOG_CREATED, AUDIT, {"max_attempts": 1}),
            (JobType.SEND_REFUND_EMAIL, REFUND),
        ]
    )
    [audit] = queue.claim(1, types=[JobType.AUDIT_LOG_CREATED])
    queue.fail(audit, "ValueError: bad row", permanent=True)
    clock.advance(80)
    [_refund] = queue.claim(1, types=[JobType.SEND_REFUND_EMAIL], lease_s=60)
    clock.advance(10)
    ready = {t: 0 for t in JobType}
    ready[JobType.SEND_RELEASE_EMAIL] = 3
    ready[JobType.WEBHOOK_ESCROW_STATUS_CHANGED] = 2
    return KnownState(ready, scheduled=1, running=1, dead=1, oldest_ready_age_s=AGE_S)


Expected = tuple[str, str, tuple[tuple[str, str], ...], float]  # name, unit, dims, value


def expected_metrics(
    state: KnownState, *, queue: str, service: str = "queue-monitor"
) -> set[Expected]:
    """Every metric (name, unit, sorted dimensions, value) the monitor must publish."""
    totals = (("queue", queue), ("service", service))
    out: set[Expected] = {
        ("QueueDepth", "Count", totals, float(state.ready)),
        ("ScheduledJobs", "Count", totals, float(state.scheduled)),
        ("RunningJobs", "Count", totals, float(state.running)),
        ("DeadLetterJobs", "Count", totals, float(state.dead)),
        ("OldestReadyJobAge", "Seconds", totals, state.oldest_ready_age_s),
        ("MonitorRedisErrors", "Count", totals, 0.0),
        ("DisabledEndpoints", "Count", totals, 0.0),
    }
    for job_type, count in state.ready_by_type.items():
        dims = (("job_type", job_type.value), ("queue", queue), ("service", service))
        out.add(("QueueDepth", "Count", dims, float(count)))
    return out
