"""One batch: every outcome a handler can cause, settled in one call, the batch always goes on."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from jobs_core import (
    Job,
    JobQueue,
    JobState,
    JobType,
    PayloadValidationError,
    PermanentJobError,
    RetryableJobError,
    defaults,
)
from jobs_core.processor import Processor
from jobs_core.processor.report import JobOutcome

from .support import AUDIT, RELEASE_EMAIL, enqueue


class CountingBackend:
    """Wraps a backend and counts round trips per script."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls = 0

    def evalsha(self, *args: Any) -> Any:
        self.calls += 1
        return self.inner.evalsha(*args)

    def eval(self, *args: Any) -> Any:
        return self.inner.eval(*args)

    evalsha_ro, eval_ro = evalsha, eval


def by_id(results: list[Any]) -> dict[str, Any]:
    return {r.job_id: r for r in results}


def test_mixed_batch_each_job_gets_its_own_outcome(queue: JobQueue) -> None:
    ids = enqueue(queue, 6)
    behaviour = dict(zip(ids, ["ok", "retry", "permanent", "boom", "garbage", "ok"], strict=True))

    def handler(job: Job) -> object:
        what = behaviour[job.id]
        if what == "retry":
            raise RetryableJobError("provider busy", delay_s=120)
        if what == "permanent":
            raise PermanentJobError("card declined")
        if what == "boom":
            raise ValueError("unexpected")
        if what == "garbage":
            return {"status": "sent"}
        return None

    processor = Processor(queue, {AUDIT: handler}, concurrency=4)
    results = by_id(processor.process_batch(limit=10).results)

    assert {i: results[i].outcome for i in ids} == {
        ids[0]: JobOutcome.SUCCEEDED,
        ids[1]: JobOutcome.RETRIED,
        ids[2]: JobOutcome.DEAD_LETTERED,
        ids[3]: JobOutcome.RETRIED,
        ids[4]: JobOutcome.DEAD_LETTERED,
        ids[5]: JobOutcome.SUCCEEDED,
    }
    retried = queue.get_job_status(ids[1])
    assert retried is not None and retried.state is JobState.SCHEDULED
    assert retried.attempts == 1 and retried.last_error == "RetryableJobError: provider busy"
    delay = (retried.next_run_at - retried.started_at).total_seconds()  # type: ignore[operator]
    assert delay >= 119  # the handler's delay_s, not the backoff (base 2 s)
    dead = queue.get_job_status(ids[2])
    assert dead is not None and dead.state is JobState.DEAD
    assert dead.last_error == "PermanentJobError: card declined"
    boom = queue.get_job_status(ids[3])
    assert boom is not None and boom.state is JobState.SCHEDULED
    assert boom.last_error == "ValueError: unexpected"
    garbage = queue.get_job_status(ids[4])
    assert garbage is not None and garbage.state is JobState.DEAD
    assert "HandlerContractError" in (garbage.last_error or "")
    assert "dict" in (garbage.last_error or "")
    assert queue.get_queue_stats().dead_letter == 2


def test_an_async_handler_is_a_contract_error_not_a_success(queue: JobQueue) -> None:
    enqueue(queue, 1)
    ran = []

    async def handler(job: Job) -> None:  # never awaited by a sync processor
        ran.append(job.id)

    result = Processor(queue, {AUDIT: handler}).process_next_job()

    assert result is not None and result.outcome is JobOutcome.DEAD_LETTERED
    assert "coroutine" in (result.error or "")
    assert ran == []  # the effect never ran, and nobody pretends it did


def test_invalid_payload_error_from_a_handler_is_permanent(queue: JobQueue) -> None:
    enqueue(queue, 1)

    def handler(job: Job) -> None:
        raise PayloadValidationError("payload.amount: too large", field="payload.amount")

    result = Processor(queue, {AUDIT: handler}).process_next_job()
    assert result is not None and result.outcome is JobOutcome.DEAD_LETTERED


def test_unknown_type_goes_to_the_dead_letter_queue_and_the_batch_goes_on(
    queue: JobQueue,
) -> None:
    [orphan] = enqueue(queue, 1, RELEASE_EMAIL)
    audits = enqueue(queue, 3, AUDIT)
    ran: list[str] = []

    results = by_id(
        Processor(queue, {AUDIT: lambda job: ran.append(job.id)}).process_batch().results
    )

    assert results[orphan].outcome is JobOutcome.DEAD_LETTERED
    assert results[orphan].error == (
        "UnknownJobType: no handler for job type 'send_release_email' in this deploy"
    )
    dead = queue.get_job_status(orphan)
    assert dead is not None and dead.state is JobState.DEAD
    assert dead.last_error == results[orphan].error
    assert sorted(ran) == sorted(audits)
    assert all(results[i].outcome is JobOutcome.SUCCEEDED for i in audits)


def test_last_attempt_failure_is_dead_lettered(queue: JobQueue) -> None:
    [job_id] = enqueue(queue, 1, max_attempts=1)

    def handler(job: Job) -> None:
        raise RetryableJobError("still down")

    result = Processor(queue, {AUDIT: handler}).process_next_job()
    assert result is not None and result.outcome is JobOutcome.DEAD_LETTERED
    status = queue.get_job_status(job_id)
    assert status is not None and status.state is JobState.DEAD


def test_hanging_handler_times_out_as_retryable_and_the_batch_moves_on(
    queue: JobQueue, release: list[object]
) -> None:
    hung, *others = enqueue(queue, 5)
    gate = threading.Event()
    release.append(gate)
    entered = threading.Event()

    def handler(job: Job) -> None:
        if job.id == hung:
            entered.set()
            gate.wait(30)  # hangs until the test ends

    processor = Processor(queue, {AUDIT: handler}, concurrency=2, job_timeout_s=0.3)
    results = by_id(processor.process_batch(limit=10).results)

    assert entered.is_set()
    assert results[hung].outcome is JobOutcome.RETRIED and results[hung].timed_out
    assert "JobTimeout" in (results[hung].error or "")
    assert all(results[i].outcome is JobOutcome.SUCCEEDED for i in others)
    status = queue.get_job_status(hung)
    assert status is not None and status.state is JobState.SCHEDULED and status.attempts == 1
    # The stuck worker was abandoned and replaced: the pool still has two live workers.
    assert processor._pool.live == 2 and processor._pool.abandoned == 1
    enqueue(queue, 4)
    assert processor.process_batch(limit=10).tally.succeeded == 4


def test_process_next_job_filters_by_type_and_returns_none_when_idle(queue: JobQueue) -> None:
    enqueue(queue, 1, AUDIT)
    [email] = enqueue(queue, 1, RELEASE_EMAIL)
    processor = Processor(queue, {AUDIT: lambda job: None, RELEASE_EMAIL: lambda job: None})

    result = processor.process_next_job("send_release_email")

    assert result is not None and result.job_id == email and result.attempt == 1
    assert processor.process_next_job(JobType.SEND_RELEASE_EMAIL) is None
    assert processor.process_next_job() is not None  # the audit job
    assert processor.process_next_job() is None


def test_process_batch_costs_two_round_trips_whatever_its_size(queue: JobQueue) -> None:
    counting = CountingBackend(queue.backend)
    counted = JobQueue(counting, queue.settings)  # type: ignore[arg-type]
    enqueue(queue, 25)
    processor = Processor(counted, {AUDIT: lambda job: None}, concurrency=8)

    result = processor.process_batch(limit=25)

    assert result.tally.succeeded == 25
    assert counting.calls == 2  # one claim, one settle


def test_module_level_api_uses_the_default_processor(queue: JobQueue) -> None:
    ids = enqueue(queue, 3)
    seen: list[str] = []
    defaults.set_default_processor(Processor(queue, {AUDIT: lambda j: seen.append(j.id)}))
    try:
        first = defaults.process_next_job("audit_log_created")
        rest = defaults.process_batch(["audit_log_created"], limit=10)
    finally:
        defaults.set_default_processor(None)
    assert first is not None
    assert rest.tally.succeeded == 2
    assert sorted(seen) == sorted(ids)


def test_batch_result_shape_for_the_endpoint(queue: JobQueue) -> None:
    enqueue(queue, 2)
    body = Processor(queue, {AUDIT: lambda job: None}).process_batch().to_dict()
    assert body["processed"] == 2 and body["succeeded"] == 2
    assert set(body) >= {"processed", "succeeded", "retried", "deadLettered", "released", "jobs"}
    assert set(body["jobs"][0]) == {
        "id", "type", "attempt", "outcome", "durationMs", "error", "timedOut",
    }  # fmt: skip


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_below_one_claims_nothing(queue: JobQueue, limit: int) -> None:
    enqueue(queue, 1)
    assert Processor(queue, {AUDIT: lambda job: None}).process_batch(limit=limit).results == []
    assert queue.get_queue_stats().ready == 1


def test_with_a_pool_of_one_a_hung_job_does_not_block_the_jobs_behind_it(
    queue: JobQueue, release: list[object]
) -> None:
    [hung] = enqueue(queue, 1)
    time.sleep(0.005)  # due a few ms earlier: claimed, and so started, first
    others = enqueue(queue, 3)
    gate = threading.Event()
    release.append(gate)
    ran: list[str] = []

    def handler(job: Job) -> None:
        if job.id == hung:
            gate.wait(30)
        else:
            ran.append(job.id)

    processor = Processor(queue, {AUDIT: handler}, concurrency=1, job_timeout_s=0.3)
    results = by_id(processor.process_batch(limit=4).results)

    assert results[hung].outcome is JobOutcome.RETRIED and results[hung].timed_out
    assert sorted(ran) == sorted(others)  # run by the replacement worker after the timeout
    assert processor._pool.abandoned == 1
    assert all(results[i].outcome is JobOutcome.SUCCEEDED for i in others)
