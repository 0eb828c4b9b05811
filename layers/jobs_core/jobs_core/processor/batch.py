"""Running one claimed batch: runners on the pool, job timeouts, outcomes, one settle.

``BatchRunner.execute`` runs the claimed jobs (a job starts only before its batch's
``latest_start``; one that cannot is *skipped* and later released) and returns when each
has finished, timed out or been skipped; ``BatchRunner.settle`` records them all with one
``queue.settle`` call and logs one line per job (id, type, attempt, correlation id).

Hung handlers
-------------
A handler still running at its timeout is failed as retryable and its worker thread
is *abandoned*: the pool starts a replacement at once and the batch moves on. Python
cannot kill a thread, so the hung call keeps running in the sandbox (in Lambda it is
frozen with the sandbox between invocations and may resume in a later one). Its job
is retried meanwhile, which is safe because every effect is idempotent (the workers
use idempotency keys and conditional writes); the abandoned call's late result is
ignored. The pool bound counts live workers: abandoned calls run on top of it.

Errors
------
``RetryableJobError`` → retry (its ``delay_s`` overrides the backoff);
``EndpointGoneError`` (a 410) of a gated webhook → held with its partner, disabled;
``PermanentJobError`` or ``InvalidJobError`` → dead-letter; any other exception →
retry (its type and message are stored); a job whose type has no handler in this
deploy → dead-letter; a handler that returns anything but ``None`` (an ``async def``
handler's coroutine, say) broke its contract → dead-letter. The engine dead-letters a
retry that has no attempts left. One job's failure never touches the others.
"""

from __future__ import annotations

import collections
import contextvars
import inspect
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any

from ..errors import EndpointGoneError, InvalidJobError, PermanentJobError, RetryableJobError
from ..logging import logger
from ..models import ClaimedJob, Job, JobState, JobType
from ..queue import JobQueue, Outcome, error_text
from ..queue.scripts import SettleCode
from ..queue.specs import GATED_TYPES
from ..tracing import current_entity, job_span
from .config import ProcessorConfig
from .joblog import log_results
from .pool import WorkerPool
from .report import BatchResult, JobOutcome, JobResult

Handler = Callable[[Job], object]  # must return None; raise to fail
HandlerRegistry = Mapping[JobType, Handler]


class _State(Enum):
    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"  # could not start before the deadline: released
    NO_HANDLER = "no_handler"


class JobRun:
    """One claimed job's run; its fields change only under its batch's condition lock."""

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
    trace_parent: Any  # the caller's X-Ray entity: each job's subsegment hangs under it
    todo: collections.deque[JobRun]  # not yet taken by a runner
    runners: int = 0  # runners started for this batch (a replaced stuck one still counts)


class BatchRunner:
    """Runs claimed batches on ``pool`` and settles them on ``queue``."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: HandlerRegistry,
        pool: WorkerPool,
        config: ProcessorConfig,
        clock: Callable[[], float],
    ) -> None:
        self.queue = queue
        self.handlers = handlers
        self.pool = pool
        self.config = config
        self.clock = clock

    def execute(self, claimed: Sequence[ClaimedJob], hard_stop: float) -> list[JobRun]:
        """Run a claimed batch on the pool; every task ends finished, timed out or skipped."""
        tasks = [JobRun(c, self.handlers.get(c.job.type)) for c in claimed]
        batch = _Batch(
            cond=threading.Condition(),
            latest_start=hard_stop - self.config.job_timeout_s,
            hard_stop=hard_stop,
            context=contextvars.copy_context(),
            trace_parent=current_entity(),
            todo=collections.deque(t for t in tasks if t.state is _State.PENDING),
        )
        # Runners take tasks until none is left. One starts; each runner that takes a task
        # while more wait starts another, up to the pool size: slow (I/O) handlers fan out
        # to the whole pool within microseconds, while fast ones are done by a few runners
        # (each hand-off wakes a thread, which costs more than a no-op job).
        if batch.todo:
            batch.runners = 1
            self.pool.submit(partial(self._runner, batch))
        self._wait(tasks, batch)
        return tasks

    def settle(self, tasks: list[JobRun]) -> BatchResult:
        """Record a run batch's outcomes in one call; log one line per job."""
        if not tasks:
            return BatchResult()
        outcomes = [self._outcome(task) for task in tasks]
        settled = self.queue.settle(outcomes)
        results = [
            self._result(task, outcome, state, code)
            for task, outcome, (state, code) in zip(tasks, outcomes, settled, strict=True)
        ]
        log_results(results)
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
        self.pool.submit(partial(self._runner, batch))

    def _work(self, task: JobRun, batch: _Batch) -> None:
        """Runs on a pool thread."""
        with batch.cond:
            if task.state is not _State.PENDING:
                return  # skipped by the batch already
            now = self.clock()
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
            with job_span(task.claimed, batch.trace_parent):
                returned = batch.context.copy().run(self._call, task)
        except BaseException as exc:  # a handler's failure is data, whatever it is
            error = exc
        with batch.cond:
            if task.state is _State.RUNNING:
                task.state, task.ended = _State.FINISHED, self.clock()
                task.error, task.returned = error, returned
            elif inspect.iscoroutine(returned):
                returned.close()
            batch.cond.notify_all()

    @staticmethod
    def _call(task: JobRun) -> object:
        job = task.claimed.job
        logger.thread_safe_append_keys(**_job_keys(task.claimed))
        assert task.handler is not None
        return task.handler(job)

    def _wait(self, tasks: list[JobRun], batch: _Batch) -> None:
        """Block until every task has finished, timed out or been skipped."""
        timeout = self.config.job_timeout_s
        with batch.cond:
            while True:
                now = self.clock()
                wake = math.inf
                open_tasks = False
                for task in tasks:
                    if task.state is _State.RUNNING:
                        if now >= task.started + timeout or now >= batch.hard_stop:
                            task.state, task.ended = _State.TIMED_OUT, now
                            if task.thread is not None:
                                self.pool.abandon(task.thread)
                            if batch.todo:  # the stuck runner stops: replace it
                                self.pool.submit(partial(self._runner, batch))
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

    def _outcome(self, task: JobRun) -> Outcome:
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
        if isinstance(error, EndpointGoneError) and claimed.job.type in GATED_TYPES:
            # Not the job's fault: its partner's endpoint is gone. The job waits (held) with
            # the partner's other webhooks until an operator re-enables the endpoint.
            return Outcome(claimed, "hold", error=error_text(error), started_ms=started)
        if isinstance(error, PermanentJobError | InvalidJobError):
            return Outcome(claimed, "dead", error=error_text(error), started_ms=started)
        return Outcome(claimed, "retry", error=error_text(error), started_ms=started)

    @staticmethod
    def _result(task: JobRun, settled: Outcome, state: JobState, code: int) -> JobResult:
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
    JobState.HELD: JobOutcome.HELD,
}


def _job_keys(claimed: ClaimedJob) -> dict[str, Any]:
    job = claimed.job
    return {
        "job_id": job.id,
        "job_type": job.type.value,
        "attempt": claimed.attempt,
        "correlation_id": job.correlation_id,
    }
