"""On the real Redis: the Lambda's budget end to end, and a lease lost mid-batch."""

from __future__ import annotations

import time

import redis
from jobs_core import Job, JobQueue, JobState
from jobs_core.processor import Processor
from jobs_core.processor.report import JobOutcome
from operator_api import events, wiring

from tests.unit.processor.support import AUDIT, FakeContext, RecordingLambda, enqueue, load_event

from .conftest import redis_queue


def test_scheduled_invocation_with_a_small_budget_returns_in_time_and_spends_no_attempt_on_unstarted_jobs(  # noqa: E501
    queue: JobQueue,
) -> None:
    ids = enqueue(queue, 40)

    def slow(job: Job) -> None:
        time.sleep(0.2)

    env = {
        "JOB_PROCESSOR_CONCURRENCY": "2",
        "JOB_PROCESSOR_BATCH_SIZE": "8",
        "JOB_PROCESSOR_JOB_TIMEOUT_S": "0.5",
        "JOB_PROCESSOR_SAFETY_MARGIN_S": "0.3",
        "JOB_PROCESSOR_MAX_FANOUT": "0",
    }
    svc = wiring.build_services(
        env, handlers={AUDIT: slow}, queue=queue, lambda_client=RecordingLambda()
    )
    context = FakeContext(budget_s=2.0)

    answer = events.handle(load_event("scheduled"), context, svc)  # type: ignore[arg-type]

    assert context.get_remaining_time_in_millis() > 0
    assert answer["stopReason"] == "budget"
    assert answer["released"] >= 1
    jobs = [queue.get_job_status(i) for i in ids]
    done = [j for j in jobs if j and j.state is JobState.SUCCEEDED]
    waiting = [j for j in jobs if j and j.state is JobState.QUEUED]
    assert len(done) == answer["succeeded"] and len(done) + len(waiting) == 40
    assert all(j.attempts == 0 for j in waiting)
    assert queue.get_queue_stats().running == 0


def test_a_lease_taken_over_mid_batch_is_logged_not_raised_and_the_rest_settle(
    redis_url: str, namespace: str, queue: JobQueue
) -> None:
    """While the first job runs, its lease (only its) is made to look expired, as after a
    long stall, and another processor reaps and re-claims it; our batch settle then finds
    that one lease lost and settles the others."""
    victim, *others = enqueue(queue, 4)
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    thief = redis_queue(redis_url, namespace)
    stolen = []

    def handler(job: Job) -> None:
        if job.id == victim:
            [lease] = [m for m in raw.zrange(queue.keys.timeline, 0, -1) if f"|{victim}|" in m]
            raw.zadd(queue.keys.timeline, {lease: 0})  # its deadline is long past
            stolen.extend(thief.claim(limit=1, lease_s=600))

    result = Processor(queue, {AUDIT: handler}, concurrency=1).process_batch(limit=4)

    outcomes = {r.job_id: r.outcome for r in result.results}
    assert [c.id for c in stolen] == [victim]
    assert outcomes[victim] is JobOutcome.LEASE_LOST
    assert all(outcomes[i] is JobOutcome.SUCCEEDED for i in others)
    assert result.tally.lease_lost == 1
    status = queue.get_job_status(victim)
    assert status is not None and status.state is JobState.RUNNING  # the thief holds it
    assert status.attempts == 1  # the reap counted the stalled attempt
