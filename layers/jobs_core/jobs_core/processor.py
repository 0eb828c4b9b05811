"""The processor: claim a batch → run it on a bounded pool → settle it, within a deadline.

A batch costs two round trips whatever its size: one ``claim`` and one ``settle`` (the
engine's batch settle, fenced per job), so a steady drain spends 2/batch round trips
per job. ``drain`` repeats batches until the queue stays idle or the time left is too
short to start another job; an idle poll is one round trip. While draining, a batch's
settle runs on a settler thread as the next batch is claimed and run (at most one settle
in flight; its result is collected before the next is sent, and before ``drain``
returns): Redis works on one call while Python works on the other.

Time and leases
    ``hard_stop`` = now + remaining budget - ``safety_margin_s``. A job starts only while
    its whole ``job_timeout_s`` still fits before ``hard_stop``, so no job is ever cut off
    by the invocation's end; a claimed job that cannot start in time is *released* (back
    in the queue at once, no attempt counted). Every job therefore ends (finishes, or
    times out) by ``min(hard_stop, claim + rounds * job_timeout_s)`` with
    ``rounds = ceil(batch / concurrency)``, and the claim leases for exactly that plus
    ``lease_margin_s`` (which covers the settle call and its resends). A lease cannot
    expire while the invocation still works on the job, so no lease extension is needed.

Hung handlers
    A handler still running at its timeout is failed as retryable and its worker thread
    is *abandoned*: the pool starts a replacement at once and the batch moves on. Python
    cannot kill a thread, so the hung call keeps running in the sandbox (in Lambda it is
    frozen with the sandbox between invocations and may resume in a later one). Its job
    is retried meanwhile, which is safe because every effect is idempotent (the workers
    use idempotency keys and conditional writes); the abandoned call's late result is
    ignored. The pool bound counts live workers: abandoned calls run on top of it.

Errors
    ``RetryableJobError`` → retry (its ``delay_s`` overrides the backoff);
    ``PermanentJobError`` or ``InvalidJobError`` → dead-letter; any other exception →
    retry (its type and message are stored); a job whose type has no handler in this
    deploy → dead-letter; a handler that returns anything but ``None`` (an ``async def``
    handler's coroutine, say) broke its contract → dead-letter. The engine dead-letters a
    retry that has no attempts left. One job's failure never touches the others.

The processor-active marker
    Enqueuers read it to decide whether to kick a processor (see ``kick``). A drain sets
    it (``claim(hold_marker_s=...)``) on a claim whenever it would otherwise lapse before
    the next claim, and on a claim that may be its last (the idle exit) it shortens it
    to 1 ms, so a finished processor does not keep enqueuers from kicking a new one. The
    first poll of a drain leaves the marker alone: an idle minute costs one round trip.
    A drain that stops for lack of budget leaves its marker to lapse (``marker_ttl_s``);
    an enqueue in that window is not kicked and waits for the fan-out or the schedule.
    Shortening the marker also clobbers another live processor's marker: harmless, the
    next enqueue merely kicks one processor more.

    processor = Processor(queue, {JobType.AUDIT_LOG_CREATED: write_audit_row})
    report = processor.drain(remaining_s=context.get_remaining_time_in_millis() / 1000)
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import inspect
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from enum import Enum
from functools import partial
from typing import Any

from .errors import (
    BackendError,
    ConfigurationError,
    InvalidJobError,
    PermanentJobError,
    RetryableJobError,
)
from .logging import logger
from .models import ClaimedJob, Job, JobState, JobType
from .processor_pool import WorkerPool
from .processor_report import (
    BatchResult,
    DrainReport,
    JobOutcome,
    JobResult,
    StopReason,
)
from .queue import JobQueue, Outcome, error_text
from .scripts import SettleCode

Handler = Callable[[Job], object]  # must return None; raise to fail
HandlerRegistry = Mapping[JobType, Handler]

MARKER_RELEASE_S = 0.001  # a marker TTL of 1 ms: how a drain lets go of the marker

# Environment variable names (parsed from a mapping the caller passes; see ProcessorConfig).
ENV_CONCURRENCY = "JOB_PROCESSOR_CONCURRENCY"
ENV_BATCH_SIZE = "JOB_PROCESSOR_BATCH_SIZE"
ENV_JOB_TIMEOUT = "JOB_PROCESSOR_JOB_TIMEOUT_S"
ENV_SAFETY_MARGIN = "JOB_PROCESSOR_SAFETY_MARGIN_S"
ENV_LEASE_MARGIN = "JOB_PROCESSOR_LEASE_MARGIN_S"
ENV_IDLE_POLL_MIN = "JOB_PROCESSOR_IDLE_POLL_MIN_S"
ENV_IDLE_POLL_MAX = "JOB_PROCESSOR_IDLE_POLL_MAX_S"
ENV_IDLE_EXIT = "JOB_PROCESSOR_IDLE_EXIT_S"
ENV_MARKER_TTL = "JOB_PROCESSOR_MARKER_TTL_S"
ENV_MAX_FANOUT = "JOB_PROCESSOR_MAX_FANOUT"


_ENV_OF_FIELD = {
    "concurrency": ENV_CONCURRENCY,
    "batch_size": ENV_BATCH_SIZE,
    "job_timeout_s": ENV_JOB_TIMEOUT,
    "safety_margin_s": ENV_SAFETY_MARGIN,
    "lease_margin_s": ENV_LEASE_MARGIN,
    "idle_poll_min_s": ENV_IDLE_POLL_MIN,
    "idle_poll_max_s": ENV_IDLE_POLL_MAX,
    "idle_exit_s": ENV_IDLE_EXIT,
    "marker_ttl_s": ENV_MARKER_TTL,
    "max_fanout": ENV_MAX_FANOUT,
}


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    """The processor's knobs; ``from_environ`` reads them from a mapping such as os.environ.

    ==================================  ========  ==========================================
    variable                            default   meaning
    ==================================  ========  ==========================================
    ``JOB_PROCESSOR_CONCURRENCY``       8         handlers running at once per invocation
    ``JOB_PROCESSOR_BATCH_SIZE``        16        jobs per claim
    ``JOB_PROCESSOR_JOB_TIMEOUT_S``     15        a handler running longer is failed as
                                                  retryable (its thread abandoned)
    ``JOB_PROCESSOR_SAFETY_MARGIN_S``   3         budget kept back from the Lambda timeout
    ``JOB_PROCESSOR_LEASE_MARGIN_S``    15        lease beyond a batch's worst case
    ``JOB_PROCESSOR_IDLE_POLL_MIN_S``   0.1       first pause after an empty poll
    ``JOB_PROCESSOR_IDLE_POLL_MAX_S``   1.0       longest pause (the pause doubles)
    ``JOB_PROCESSOR_IDLE_EXIT_S``       5         a drain that did work exits after this
                                                  long idle (one that did none: at once)
    ``JOB_PROCESSOR_MARKER_TTL_S``      10        life of the processor-active marker
    ``JOB_PROCESSOR_MAX_FANOUT``        4         processors a drain may start (0: off);
                                                  match the reserved concurrency - 1
    ==================================  ========  ==========================================

    Sizing: with the Lambda timeout ``T``, jobs start until ``T - safety - job_timeout``;
    a timeout of at least schedule period + job timeout + margin (e.g. 90 s for a
    one-minute schedule) keeps a processor running at every moment of a busy period.
    """

    concurrency: int = 8  # handlers running at once in one invocation
    batch_size: int = 16  # jobs per claim (two rounds of the default pool)
    job_timeout_s: float = 15.0  # a handler running longer is failed as retryable
    safety_margin_s: float = 3.0  # budget kept back for the final settle and the metrics
    lease_margin_s: float = 15.0  # lease beyond the batch's worst case (settle + resends)
    idle_poll_min_s: float = 0.1  # first pause after an empty poll (doubles up to the max)
    idle_poll_max_s: float = 1.0
    idle_exit_s: float = 5.0  # a drain that did work exits after this long without any
    marker_ttl_s: float = 10.0  # life of the processor-active marker when set
    max_fanout: int = 4  # processors one drain may start when it leaves a backlog

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.batch_size < 1:
            raise ConfigurationError("processor concurrency and batch size must be at least 1")
        if self.job_timeout_s <= 0 or self.safety_margin_s < 0 or self.lease_margin_s < 0:
            raise ConfigurationError("processor timeouts and margins must be positive")
        if not 0 < self.idle_poll_min_s <= self.idle_poll_max_s:
            raise ConfigurationError("idle poll intervals must satisfy 0 < min <= max")
        if self.idle_exit_s < 0 or self.marker_ttl_s <= 0 or self.max_fanout < 0:
            raise ConfigurationError("idle exit, marker TTL and fan-out must not be negative")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProcessorConfig:
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = _ENV_OF_FIELD.get(f.name)
            raw = environ.get(name, "").strip() if name else ""
            if not raw:
                continue
            try:
                values[f.name] = int(raw) if f.type in ("int", int) else float(raw)
            except ValueError:
                raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
        return cls(**values)


class _State(Enum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"  # could not start before the deadline: released
    NO_HANDLER = "no_handler"


class _Task:
    """One claimed job's run; fields change only under its batch's condition lock."""

    __slots__ = ("claimed", "ended", "error", "handler", "returned", "started", "started_ms",
                 "state", "thread")  # fmt: skip

    def __init__(self, claimed: ClaimedJob, handler: Handler | None) -> None:
        self.claimed = claimed
        self.handler = handler
        self.state = _State.PENDING if handler is not None else _State.NO_HANDLER
        self.started = 0.0
        self.started_ms: int | None = None
        self.ended = 0.0
        self.error: BaseException | None = None
        self.returned: object = None
        self.thread: threading.Thread | None = None


@dataclass(slots=True)
class _Batch:
    cond: threading.Condition
    latest_start: float  # a job may start until then (its whole timeout fits)
    hard_stop: float
    context: contextvars.Context  # the caller's logging context, copied into each job
    todo: collections.deque[_Task]  # not yet taken by a runner
    runners: int = 0  # runners started for this batch (a replaced stuck one still counts)


class Processor:
    """Runs claimed jobs on a bounded thread pool within a time budget.

    >>> processor = Processor(queue, {JobType.AUDIT_LOG_CREATED: write_audit_row})  # doctest: +SKIP
    >>> processor.process_batch(limit=10).tally.succeeded                           # doctest: +SKIP
    10
    """

    def __init__(
        self,
        queue: JobQueue,
        handlers: HandlerRegistry,
        *,
        concurrency: int = 8,
        job_timeout_s: float = 15.0,
        safety_margin_s: float = 3.0,
        batch_size: int = 16,
        config: ProcessorConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or ProcessorConfig(
            concurrency=concurrency,
            job_timeout_s=job_timeout_s,
            safety_margin_s=safety_margin_s,
            batch_size=batch_size,
        )
        self.queue = queue
        self.handlers = dict(handlers)
        self._clock = clock
        self._sleep = sleep
        self._pool = WorkerPool(self.config.concurrency)
        self._settle_executor: ThreadPoolExecutor | None = None

    def close(self) -> None:
        """Let the worker threads exit (abandoned ones exit when their call returns)."""
        self._pool.shutdown()
        if self._settle_executor is not None:
            self._settle_executor.shutdown(wait=True)

    def _settler(self) -> ThreadPoolExecutor:
        if self._settle_executor is None:
            self._settle_executor = ThreadPoolExecutor(1, thread_name_prefix="jobs-settle")
        return self._settle_executor

    # -- the original API --------------------------------------------------------------

    def process_next_job(
        self, job_type: JobType | str | None = None, *, remaining_s: float | None = None
    ) -> JobResult | None:
        """Claim and run one due job (of ``job_type``, or of any type); None if none is due."""
        types = None if job_type is None else [job_type]
        results = self.process_batch(types, limit=1, remaining_s=remaining_s).results
        return results[0] if results else None

    def process_batch(
        self,
        job_types: Iterable[JobType | str] | None = None,
        limit: int = 10,
        *,
        remaining_s: float | None = None,
    ) -> BatchResult:
        """Claim up to ``limit`` due jobs (of ``job_types``, or all), run them, settle them.

        ``remaining_s`` bounds the whole call (minus the safety margin); None = no bound
        beyond the job timeouts.
        """
        now = self._clock()
        hard_stop = self._hard_stop(now, remaining_s)
        types = None if job_types is None else [JobType(t) for t in job_types]
        if limit < 1 or hard_stop - now < self.config.job_timeout_s:
            return BatchResult()
        claimed = self.queue.claim(limit, types=types, lease_s=self._lease_s(now, hard_stop, limit))
        return self._run_batch(claimed, hard_stop)

    # -- draining ----------------------------------------------------------------------

    def drain(
        self,
        remaining_s: float,
        *,
        types: Iterable[JobType | str] | None = None,
        measure_backlog: bool = True,
    ) -> DrainReport:
        """Run batches until the queue stays idle or the budget runs out; never past
        ``remaining_s - safety_margin_s``. A backend error ends the drain and is kept
        in ``report.error``. When the budget ran out right after a full batch, one
        stats call measures the backlog (``report.backlog``) for the fan-out decision.
        """
        cfg = self.config
        start = self._clock()
        hard_stop = self._hard_stop(start, remaining_s)
        wanted = None if types is None else [JobType(t) for t in types]
        report = DrainReport()
        marker_until = -math.inf  # when the marker we last set expires (our clock)
        worked = False
        idle_since: float | None = None
        interval = cfg.idle_poll_min_s
        last_full = False
        last_batch_s = 0.0  # how long the previous batch ran: the next may run as long
        # A batch's settle runs on the settler thread while the next batch is claimed
        # and run: one settle in flight at most, its result collected before the next.
        settling: Future[BatchResult] | None = None
        try:
            while True:
                now = self._clock()
                if hard_stop - now < cfg.job_timeout_s:
                    report.stop_reason = StopReason.BUDGET
                    break
                if not worked:
                    last_chance = True  # nothing done yet: an empty first poll ends the drain
                else:
                    idle_for = 0.0 if idle_since is None else now - idle_since
                    last_chance = (
                        idle_for + interval > cfg.idle_exit_s
                        or hard_stop - now - interval < cfg.job_timeout_s
                    )
                hold = self._marker_hold(now, marker_until, last_chance, last_batch_s)
                claimed = self.queue.claim(
                    cfg.batch_size,
                    types=wanted,
                    lease_s=self._lease_s(now, hard_stop, cfg.batch_size),
                    hold_marker_s=hold,
                )
                report.polls += 1
                if hold == MARKER_RELEASE_S:
                    marker_until = -math.inf
                elif hold > 0:
                    marker_until = now + hold
                last_full = len(claimed) >= cfg.batch_size
                if claimed:
                    worked, idle_since, interval = True, None, cfg.idle_poll_min_s
                    tasks = self._execute(claimed, hard_stop)
                    last_batch_s = self._clock() - now
                    if settling is not None:
                        report.add(settling.result())
                    settling = self._settler().submit(self._settle, tasks)
                    continue
                if settling is not None:
                    report.add(settling.result())
                    settling = None
                if last_chance:
                    report.stop_reason = StopReason.IDLE
                    break
                if idle_since is None:
                    idle_since = now
                self._sleep(max(0.0, min(interval, hard_stop - cfg.job_timeout_s - now)))
                interval = min(interval * 2, cfg.idle_poll_max_s)
            if settling is not None:
                report.add(settling.result())
                settling = None
            if report.stop_reason is StopReason.BUDGET and last_full and measure_backlog:
                report.backlog = self._backlog(wanted)
        except BackendError as exc:
            if settling is not None:  # let the batch in flight finish and count it
                with contextlib.suppress(BackendError):
                    report.add(settling.result())
            logger.exception("drain stopped: the queue backend failed")
            report.stop_reason = StopReason.BACKEND_ERROR
            report.error = exc
        report.elapsed_s = self._clock() - start
        return report

    def _backlog(self, wanted: list[JobType] | None) -> int | None:
        """Ready jobs (of the drained types), or None if the stats call failed: the drain's
        work is done and settled, so a failure here only skips the fan-out."""
        try:
            stats = self.queue.get_queue_stats()
        except BackendError:
            logger.warning("could not measure the backlog; no fan-out", exc_info=True)
            return None
        return sum(s.ready for t, s in stats.by_type.items() if wanted is None or t in wanted)

    def _hard_stop(self, now: float, remaining_s: float | None) -> float:
        if remaining_s is None:
            return math.inf
        return now + remaining_s - self.config.safety_margin_s

    def _lease_s(self, now: float, hard_stop: float, batch: int) -> float:
        rounds = math.ceil(batch / self.config.concurrency)
        work = min(rounds * self.config.job_timeout_s, max(0.0, hard_stop - now))
        return work + self.config.lease_margin_s

    def _marker_hold(
        self, now: float, marker_until: float, last_chance: bool, last_batch_s: float
    ) -> float:
        """The ``hold_marker_s`` for the next claim: 0 leaves the marker as it is."""
        cfg = self.config
        if last_chance:
            return MARKER_RELEASE_S if marker_until > now else 0.0
        # Keep the marker alive past the next claim: one batch (as long as the last one)
        # or one idle pause away, plus a second of slack.
        refresh_before = max(last_batch_s, cfg.idle_poll_max_s) + 1.0
        if marker_until - now < refresh_before:
            return max(cfg.marker_ttl_s, 2 * refresh_before)
        return 0.0

    # -- one batch ---------------------------------------------------------------------

    def _run_batch(self, claimed: Sequence[ClaimedJob], hard_stop: float) -> BatchResult:
        return self._settle(self._execute(claimed, hard_stop))

    def _execute(self, claimed: Sequence[ClaimedJob], hard_stop: float) -> list[_Task]:
        """Run a claimed batch on the pool; every task ends finished, timed out or skipped."""
        tasks = [_Task(c, self.handlers.get(c.job.type)) for c in claimed]
        batch = _Batch(
            cond=threading.Condition(),
            latest_start=hard_stop - self.config.job_timeout_s,
            hard_stop=hard_stop,
            context=contextvars.copy_context(),
            todo=collections.deque(t for t in tasks if t.state is _State.PENDING),
        )
        # Runners take tasks until none is left. One starts; each runner that takes a task
        # while more wait starts another, up to the pool size: slow (I/O) handlers fan out
        # to the whole pool within microseconds, while fast ones are done by a few runners
        # (each hand-off wakes a thread, which costs more than a no-op job).
        if batch.todo:
            batch.runners = 1
            self._pool.submit(partial(self._runner, batch))
        self._wait(tasks, batch)
        return tasks

    def _settle(self, tasks: list[_Task]) -> BatchResult:
        """Record a run batch's outcomes in one call; log one line per job."""
        if not tasks:
            return BatchResult()
        outcomes = [self._outcome(task) for task in tasks]
        settled = self.queue.settle(outcomes)
        results = [
            self._result(task, outcome, state, code)
            for task, outcome, (state, code) in zip(tasks, outcomes, settled, strict=True)
        ]
        for result in results:
            _log_result(result)
        return BatchResult(results)

    def _runner(self, batch: _Batch) -> None:
        """Runs on a pool thread: take the batch's tasks one by one until none is left.
        A runner whose task timed out stops (its thread is abandoned; ``_wait`` starts
        another runner on the replacement thread)."""
        while True:
            try:
                task = batch.todo.popleft()
            except IndexError:
                return
            if batch.todo:
                self._add_runner(batch)
            self._work(task, batch)
            if task.state is _State.TIMED_OUT:
                return

    def _add_runner(self, batch: _Batch) -> None:
        with batch.cond:
            if batch.runners >= self.config.concurrency:
                return
            batch.runners += 1
        self._pool.submit(partial(self._runner, batch))

    def _work(self, task: _Task, batch: _Batch) -> None:
        """Runs on a pool thread."""
        with batch.cond:
            if task.state is not _State.PENDING:
                return  # skipped by the batch already
            now = self._clock()
            if now > batch.latest_start:
                task.state = _State.SKIPPED
                batch.cond.notify_all()
                return
            task.state, task.started = _State.RUNNING, now
            task.thread = threading.current_thread()
            batch.cond.notify_all()
        task.started_ms = self.queue.now_ms()
        returned: object = None
        error: BaseException | None = None
        try:
            returned = batch.context.copy().run(self._call, task)
        except BaseException as exc:  # a handler's failure is data, whatever it is
            error = exc
        with batch.cond:
            if task.state is _State.RUNNING:
                task.state, task.ended = _State.FINISHED, self._clock()
                task.error, task.returned = error, returned
            elif inspect.iscoroutine(returned):
                returned.close()
            batch.cond.notify_all()

    @staticmethod
    def _call(task: _Task) -> object:
        job = task.claimed.job
        logger.thread_safe_append_keys(**_job_keys(task.claimed))
        assert task.handler is not None
        return task.handler(job)

    def _wait(self, tasks: list[_Task], batch: _Batch) -> None:
        """Block until every task has finished, timed out or been skipped."""
        timeout = self.config.job_timeout_s
        with batch.cond:
            while True:
                now = self._clock()
                wake = math.inf
                open_tasks = False
                for task in tasks:
                    if task.state is _State.RUNNING:
                        if now >= task.started + timeout or now >= batch.hard_stop:
                            task.state, task.ended = _State.TIMED_OUT, now
                            if task.thread is not None:
                                self._pool.abandon(task.thread)
                            if batch.todo:  # the stuck runner stops: replace it
                                self._pool.submit(partial(self._runner, batch))
                        else:
                            open_tasks = True
                            wake = min(wake, task.started + timeout)
                    elif task.state is _State.PENDING:
                        if now > batch.latest_start:
                            task.state = _State.SKIPPED
                        else:
                            open_tasks = True
                            wake = min(wake, batch.latest_start)
                if not open_tasks:
                    return
                wait = min(wake, batch.hard_stop) - now
                batch.cond.wait(timeout=max(wait, 0.0) + 0.001 if wait < math.inf else None)

    def _outcome(self, task: _Task) -> Outcome:
        claimed, state = task.claimed, task.state
        if state is _State.SKIPPED:
            return Outcome(claimed, "release")
        if state is _State.NO_HANDLER:
            return Outcome(
                claimed,
                "dead",
                error=f"UnknownJobType: no handler for job type {claimed.job.type.value!r} "
                "in this deploy",
            )
        started = task.started_ms
        if state is _State.TIMED_OUT:
            text = (
                f"JobTimeout: the handler ran past its {self.config.job_timeout_s:g} s "
                "timeout; its thread was abandoned"
            )
            return Outcome(claimed, "retry", error=text, started_ms=started)
        error = task.error
        if error is None and task.returned is not None:
            returned = task.returned
            if inspect.iscoroutine(returned):
                returned.close()
            text = (
                f"HandlerContractError: the handler returned a {type(returned).__name__} "
                "instead of None (an async handler?); the effect may not have run"
            )
            return Outcome(claimed, "dead", error=text, started_ms=started)
        if error is None:
            return Outcome(claimed, "done", started_ms=started)
        if isinstance(error, RetryableJobError):
            return Outcome(
                claimed, "retry", error=error_text(error), delay_s=error.delay_s, started_ms=started
            )
        if isinstance(error, PermanentJobError | InvalidJobError):
            return Outcome(claimed, "dead", error=error_text(error), started_ms=started)
        return Outcome(claimed, "retry", error=error_text(error), started_ms=started)

    @staticmethod
    def _result(task: _Task, settled: Outcome, state: JobState, code: int) -> JobResult:
        claimed = task.claimed
        if code == SettleCode.LEASE_LOST:
            outcome = JobOutcome.LEASE_LOST
        else:
            outcome = _OUTCOME_OF_STATE[state]
        duration = None
        if task.state in (_State.FINISHED, _State.TIMED_OUT):
            duration = (task.ended - task.started) * 1000
        elif task.state is _State.NO_HANDLER:
            duration = 0.0
        return JobResult(
            job_id=claimed.id,
            job_type=claimed.job.type,
            attempt=claimed.attempt,
            outcome=outcome,
            duration_ms=duration,
            error=settled.error,
            timed_out=task.state is _State.TIMED_OUT,
            correlation_id=claimed.job.correlation_id,
        )


_OUTCOME_OF_STATE = {
    JobState.SUCCEEDED: JobOutcome.SUCCEEDED,
    JobState.SCHEDULED: JobOutcome.RETRIED,
    JobState.DEAD: JobOutcome.DEAD_LETTERED,
    JobState.QUEUED: JobOutcome.RELEASED,
}


def _job_keys(claimed: ClaimedJob) -> dict[str, Any]:
    job = claimed.job
    return {
        "job_id": job.id,
        "job_type": job.type.value,
        "attempt": claimed.attempt,
        "correlation_id": job.correlation_id,
    }


def _log_result(result: JobResult) -> None:
    """One line per job, carrying its id, type, attempt and correlation id."""
    outcome = result.outcome
    if outcome is JobOutcome.DEAD_LETTERED:
        log, level = logger.error, logging.ERROR
    elif outcome in (JobOutcome.RETRIED, JobOutcome.LEASE_LOST):
        log, level = logger.warning, logging.WARNING
    else:
        log, level = logger.info, logging.INFO
    if level < logger.log_level:
        return  # skip building the line (a no-op drain runs thousands of jobs a second)
    message = f"job {outcome.value}"
    if outcome is JobOutcome.LEASE_LOST:
        message = "job lease lost: another processor holds it now; its result was not recorded"
    log(
        message,
        extra={
            "job_id": result.job_id,
            "job_type": result.job_type.value,
            "attempt": result.attempt,
            "correlation_id": result.correlation_id,
            "outcome": outcome.value,
            "duration_ms": None if result.duration_ms is None else round(result.duration_ms, 1),
            "error": result.error,
        },
    )


# -- the original module-level API over a default processor ------------------------------

_default_lock = threading.Lock()
_default: Processor | None = None


def default_handlers(environ: Mapping[str, str] | None = None) -> HandlerRegistry:
    """This deploy's registry: ``jobs_core.workers.build_handlers`` with its dependencies
    read from ``environ`` (the process environment when None). Imported here, on first
    use: the processor itself never depends on the workers."""
    from .workers import build_handlers, deps_from_environ

    return build_handlers(deps_from_environ(environ))


def set_default_processor(processor: Processor | None) -> None:
    """Install the processor the module-level functions use (None: build it on next use)."""
    global _default
    with _default_lock:
        _default = processor


def default_processor() -> Processor:
    """The module-level processor: the queue from ``Settings.from_env()`` and the workers'
    registry, built on first use."""
    global _default
    with _default_lock:
        if _default is None:
            from .config import Settings

            _default = Processor(JobQueue.from_settings(Settings.from_env()), default_handlers())
        return _default


def process_next_job(job_type: JobType | str | None = None) -> JobResult | None:
    """Run one due job of ``job_type`` (or of any type); None when none is due.

    >>> process_next_job("send_release_email")  # doctest: +SKIP
    JobResult(job_id='01J...', job_type=<JobType.SEND_RELEASE_EMAIL: ...>, outcome=...)
    """
    return default_processor().process_next_job(job_type)


def process_batch(job_types: Iterable[JobType | str] | None = None, limit: int = 10) -> BatchResult:
    """Run up to ``limit`` due jobs of ``job_types`` (or of every type) concurrently.

    >>> process_batch(["audit_log_created"], limit=10).tally.succeeded  # doctest: +SKIP
    10
    """
    return default_processor().process_batch(job_types, limit)
