"""Draining: the budget, releasing unstarted jobs, idle polling, the marker, the backlog."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from jobs_core import BackendError, ConfigurationError, Job, JobQueue, JobState
from jobs_core.processor import Processor, ProcessorConfig
from jobs_core.processor.report import DrainReport, JobOutcome, StopReason, fanout_count
from jobs_core.queue.keys import ACTIVE_MEMBER

from .support import AUDIT, FakeContext, enqueue


class FakeTime:
    """A monotonic clock that only ``sleep`` moves; records the pauses."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep: Any = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 3))
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


class FailingBackend:
    """Fails every script call after the first ``ok`` ones."""

    def __init__(self, inner: Any, ok: int) -> None:
        self.inner, self.ok = inner, ok

    def evalsha(self, *args: Any) -> Any:
        if self.ok <= 0:
            raise BackendError("redis", "unreachable: connection refused", transient=False)
        self.ok -= 1
        return self.inner.evalsha(*args)

    def eval(self, *args: Any) -> Any:
        return self.inner.eval(*args)

    evalsha_ro, eval_ro = evalsha, eval


def marker_ttl_ms(queue: JobQueue) -> int:
    """What is left of the processor-active marker (ms), or -2 when none is live, as PTTL
    says of a key: the marker is a timeline member scored by minus its expiry."""
    client = queue.backend.client  # type: ignore[attr-defined]
    score = client.zscore(queue.keys.timeline, ACTIVE_MEMBER)
    left = -2 if score is None else int(-score) - queue.now_ms()
    return left if left > 0 else -2


def test_small_budget_stops_in_time_and_leaves_unstarted_jobs_queued_without_an_attempt(
    queue: JobQueue,
) -> None:
    ids = enqueue(queue, 30)

    def slow(job: Job) -> None:
        time.sleep(0.2)

    config = ProcessorConfig(
        concurrency=1, batch_size=6, job_timeout_s=0.5, safety_margin_s=0.2, idle_exit_s=0
    )
    processor = Processor(queue, {AUDIT: slow}, config=config)
    context = FakeContext(budget_s=1.5)

    report = processor.drain(context.get_remaining_time_in_millis() / 1000)

    assert context.get_remaining_time_in_millis() > 0  # returned before Lambda's deadline
    assert report.stop_reason is StopReason.BUDGET
    # A job starts only while its whole timeout fits: the sixth of the batch could not.
    assert report.total.released >= 1
    assert report.total.succeeded >= 1
    states = {i: queue.get_job_status(i) for i in ids}
    succeeded = [j for j in states.values() if j and j.state is JobState.SUCCEEDED]
    queued = [j for j in states.values() if j and j.state is JobState.QUEUED]
    assert len(succeeded) == report.total.succeeded
    assert len(succeeded) + len(queued) == 30  # nothing running, nothing lost
    assert all(j.attempts == 0 for j in queued)  # released jobs spent no attempt
    assert queue.get_queue_stats().running == 0


def test_an_idle_drain_costs_one_claim_and_leaves_the_marker_alone(queue: JobQueue) -> None:
    calls = []
    real_claim = queue.claim_batch

    def counting_claim(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_claim(*args, **kwargs)

    queue.claim_batch = counting_claim  # type: ignore[method-assign]
    report = Processor(queue, {AUDIT: lambda job: None}).drain(60)

    assert report.stop_reason is StopReason.IDLE and report.polls == 1
    assert [c["hold_marker_s"] for c in calls] == [0.0]
    assert marker_ttl_ms(queue) == -2  # no marker


def test_marker_is_held_while_draining_and_let_go_at_the_idle_exit(queue: JobQueue) -> None:
    enqueue(queue, 4)
    seen: list[int] = []

    def handler(job: Job) -> None:
        seen.append(marker_ttl_ms(queue))

    config = ProcessorConfig(
        concurrency=1, batch_size=2, idle_poll_min_s=0.02, idle_poll_max_s=0.05, idle_exit_s=0.2
    )
    report = Processor(queue, {AUDIT: handler}, config=config).drain(30)

    assert report.total.succeeded == 4 and report.stop_reason is StopReason.IDLE
    assert seen[:2] == [-2, -2]  # the first claim does not set it
    assert all(ttl > 5_000 for ttl in seen[2:])  # the second one did, for ~10 s
    time.sleep(0.01)
    assert marker_ttl_ms(queue) == -2  # the last poll shortened it to 1 ms


def test_idle_polling_backs_off_and_resets_when_work_arrives(queue: JobQueue) -> None:
    enqueue(queue, 1)
    fake = FakeTime()
    ran: list[str] = []

    def arrive(sleeps: int) -> None:
        if sleeps == 3:
            enqueue(queue, 1)  # work arrives during the third pause

    fake.on_sleep = arrive
    config = ProcessorConfig(idle_poll_min_s=0.1, idle_poll_max_s=1.0, idle_exit_s=3.0)
    processor = Processor(
        queue, {AUDIT: lambda job: ran.append(job.id)}, config=config,
        clock=fake.clock, sleep=fake.sleep,
    )  # fmt: skip

    report = processor.drain(600)

    assert len(ran) == 2 and report.stop_reason is StopReason.IDLE
    assert fake.sleeps == [0.1, 0.2, 0.4, 0.1, 0.2, 0.4, 0.8, 1.0]
    # batch, 3 pauses each ending in a poll (the third finds the job), then 5 pauses: a
    # partial batch says nothing else is due, so no poll follows it at once.
    assert report.polls == 1 + 3 + 5


def test_budget_exhausted_after_full_batches_measures_the_backlog(queue: JobQueue) -> None:
    enqueue(queue, 200)

    def slow(job: Job) -> None:
        time.sleep(0.02)

    config = ProcessorConfig(concurrency=2, batch_size=4, job_timeout_s=0.2, safety_margin_s=0.1)
    report = Processor(queue, {AUDIT: slow}, config=config).drain(0.6)

    assert report.stop_reason is StopReason.BUDGET
    assert report.backlog == queue.get_queue_stats().ready
    assert report.backlog is not None and report.backlog > 0
    assert fanout_count(report, 4) >= 1


def test_fanout_count() -> None:
    def report(stop: StopReason, backlog: int | None, processed: int) -> DrainReport:
        r = DrainReport(stop_reason=stop, backlog=backlog)
        r.total.processed = processed
        return r

    assert fanout_count(report(StopReason.IDLE, None, 50), 4) == 0
    assert fanout_count(report(StopReason.BUDGET, 0, 50), 4) == 0
    assert fanout_count(report(StopReason.BUDGET, 40, 50), 4) == 1
    assert fanout_count(report(StopReason.BUDGET, 120, 50), 4) == 3
    assert fanout_count(report(StopReason.BUDGET, 10_000, 50), 4) == 4
    assert fanout_count(report(StopReason.BUDGET, 10_000, 50), 0) == 0
    assert fanout_count(report(StopReason.BUDGET, 5, 0), 4) == 4  # got nothing done: max


def test_a_backend_failure_ends_the_drain_with_the_error_kept(queue: JobQueue) -> None:
    enqueue(queue, 5)
    failing = JobQueue(FailingBackend(queue.backend, ok=1), queue.settings)  # type: ignore[arg-type]
    ran: list[str] = []

    report = Processor(failing, {AUDIT: lambda job: ran.append(job.id)}, batch_size=5).drain(30)

    assert report.stop_reason is StopReason.BACKEND_ERROR
    assert isinstance(report.error, BackendError)
    assert len(ran) == 5  # they ran; their settle failed, so their leases will expire


def test_drain_skips_claiming_when_the_budget_cannot_fit_one_job(queue: JobQueue) -> None:
    enqueue(queue, 3)
    report = Processor(queue, {AUDIT: lambda job: None}, job_timeout_s=5).drain(4)
    assert report.polls == 0 and report.stop_reason is StopReason.BUDGET
    assert queue.get_queue_stats().ready == 3


def test_released_outcome_is_reported_per_job(queue: JobQueue) -> None:
    enqueue(queue, 3)

    def slow(job: Job) -> None:
        time.sleep(0.3)

    processor = Processor(
        queue, {AUDIT: slow}, concurrency=1, job_timeout_s=0.35, safety_margin_s=0.0
    )
    result = processor.process_batch(limit=3, remaining_s=0.8)

    outcomes = [r.outcome for r in result.results]
    assert outcomes.count(JobOutcome.SUCCEEDED) >= 1
    assert JobOutcome.RELEASED in outcomes
    released = [r for r in result.results if r.outcome is JobOutcome.RELEASED]
    assert all(r.duration_ms is None and r.error is None for r in released)


def test_config_from_environ() -> None:
    config = ProcessorConfig.from_environ(
        {"JOB_PROCESSOR_CONCURRENCY": "3", "JOB_PROCESSOR_JOB_TIMEOUT_S": "2.5", "OTHER": "x"}
    )
    assert (config.concurrency, config.job_timeout_s, config.batch_size) == (3, 2.5, 16)
    assert ProcessorConfig.from_environ({}) == ProcessorConfig()


@pytest.mark.parametrize(
    "environ",
    [
        {"JOB_PROCESSOR_CONCURRENCY": "eight"},
        {"JOB_PROCESSOR_CONCURRENCY": "0"},
        {"JOB_PROCESSOR_BATCH_SIZE": "2.5"},
        {"JOB_PROCESSOR_IDLE_POLL_MIN_S": "2", "JOB_PROCESSOR_IDLE_POLL_MAX_S": "1"},
        {"JOB_PROCESSOR_MAX_FANOUT": "-1"},
    ],
)
def test_config_refuses_nonsense(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        ProcessorConfig.from_environ(environ)


class _Budget:
    """The injectable monotonic clock; each job's handler moves it one second on."""

    def __init__(self) -> None:
        self.now = 500.0
        self.started: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        with self._lock:
            return self.now

    def one_second_job(self, job: Job) -> None:
        with self._lock:
            self.started.append(self.now)
            self.now += 1.0


@pytest.mark.parametrize("entry", ["process_batch", "drain"])
def test_the_safety_margin_is_left_of_the_budget(queue: JobQueue, entry: str) -> None:
    """Budget 10 s, margin 3 s, job timeout 1 s, every job takes 1 s (clock time): jobs
    start at 0..6 s only (the 7th ends at 7 s = 10 - 3), so 3 s of the budget are left."""
    budget = _Budget()
    config = ProcessorConfig(
        concurrency=1, batch_size=12, job_timeout_s=1.0, safety_margin_s=3.0, idle_exit_s=0
    )
    processor = Processor(
        queue, {AUDIT: budget.one_second_job}, config=config, clock=budget.clock,
        sleep=lambda s: None,
    )  # fmt: skip
    ids = enqueue(queue, 12)
    start = budget.now

    if entry == "drain":
        tally = processor.drain(10.0).total
    else:
        tally = processor.process_batch(limit=12, remaining_s=10.0).tally
    processor.close()

    assert [t - start for t in budget.started] == [0, 1, 2, 3, 4, 5, 6]
    left = 10.0 - (budget.now - start)
    assert left == config.safety_margin_s
    assert (tally.succeeded, tally.released) == (7, 5)
    queued = [j for i in ids if (j := queue.get_job_status(i)) and j.state is JobState.QUEUED]
    assert len(queued) == 5 and all(j.attempts == 0 for j in queued)
