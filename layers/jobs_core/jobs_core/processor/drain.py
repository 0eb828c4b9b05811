"""The processor: claim a batch → run it on a bounded pool → settle it, within a deadline.

A batch costs two round trips whatever its size: one ``claim`` and one ``settle`` (the
engine's batch settle, fenced per job), so a steady drain spends 2/batch round trips
per job. ``drain`` repeats batches until the queue stays idle or the time left is too
short to start another job; an idle poll is one round trip.

When to poll again
    Every claim also says when the next job is due (``ClaimResult.due_in_s``). After a
    full batch the drain claims again at once. Otherwise, if a job is due within the
    budget (a short delay, a retry's backoff), it sleeps until then and claims it: a
    delayed job's kick runs it about on time. If nothing is due within the budget it
    stops right after the batch, without another poll (``idle_exit_s`` > 0 keeps an idle
    tail of polls instead, backing off from ``idle_poll_min_s`` to ``idle_poll_max_s``);
    work that arrives later kicks a processor, which costs no Redis command. A kicked
    drain's first claim carries the kick's hints, the records its enqueue wrote, and
    leases those jobs without reading them (``queue/hints.py``).

While draining, a batch's settle runs on a settler thread as the next batch is claimed
and run (at most one settle in flight; its result is collected before the next is sent,
and before ``drain`` returns): Redis works on one call while Python works on the other.

Time and leases
    ``hard_stop`` = now + remaining budget - ``safety_margin_s``. A job starts only while
    its whole ``job_timeout_s`` still fits before ``hard_stop``, so no job is ever cut off
    by the invocation's end; a claimed job that cannot start in time is *released* (back
    in the queue at once, no attempt counted). Every job therefore ends (finishes, or
    times out) by ``min(hard_stop, claim + rounds * job_timeout_s)`` with
    ``rounds = ceil(batch / concurrency)``, and the claim leases for exactly that plus
    ``lease_margin_s`` (which covers the settle call and its resends). A lease cannot
    expire while the invocation still works on the job, so no lease extension is needed.

Jobs, timeouts and errors
    How one batch runs (runners, hung handlers, how errors are classified) is told in
    ``batch``; the knobs and their environment variables in ``config``.

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

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BackendError
from ..logging import logger
from ..models import ClaimedJob, JobType
from ..queue import ClaimResult, JobQueue
from .batch import BatchRunner, HandlerRegistry
from .config import ProcessorConfig
from .pool import WorkerPool
from .report import BatchResult, DrainReport, JobResult, StopReason

if TYPE_CHECKING:
    from ..queue.hints import ClaimHint

MARKER_RELEASE_S = 0.001  # a marker TTL of 1 ms: how a drain lets go of the marker


@dataclass(slots=True)
class _Loop:
    """The drain loop's state between claims."""

    interval: float  # the next idle pause (doubles up to the max)
    marker_until: float = -math.inf  # when the marker we last set expires (our clock)
    worked: bool = False
    idle_since: float | None = None
    last_full: bool = False
    last_batch_s: float = 0.0  # how long the previous batch ran: the next may run as long
    # A batch's settle runs on the settler thread while the next batch is claimed and
    # run: one settle in flight at most, its result collected before the next.
    settling: Future[BatchResult] | None = None


def _report_full_redis(report: DrainReport) -> None:
    """Loudly, once per drain: an error line (and the ``RedisOutOfMemory`` metric)."""
    report.redis_full += 1
    if report.redis_full == 1:
        logger.error(
            "Redis is out of memory: it refuses writes that grow it (maxmemory with "
            "noeviction); claims and settles go on, enqueues fail until memory is freed"
        )


class Processor:
    """Runs claimed jobs on a bounded thread pool within a time budget.

    The keyword knobs are a shortcut for ``config=ProcessorConfig(...)``; a ``config``
    given wins over them. ``clock`` (monotonic seconds) and ``sleep`` are injectable.

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
        self._batches = BatchRunner(queue, self.handlers, self._pool, self.config, clock)
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
        hints: Sequence[ClaimHint] = (),
    ) -> DrainReport:
        """Run batches until the queue stays idle or the budget runs out; never past
        ``remaining_s - safety_margin_s``. A backend error ends the drain and is kept
        in ``report.error``. When the budget ran out right after a full batch, one
        stats call measures the backlog (``report.backlog``) for the fan-out decision.
        ``hints`` (a kick's jobs, with their records) go with the first claim.
        """
        cfg = self.config
        start = self._clock()
        hard_stop = self._hard_stop(start, remaining_s)
        wanted = None if types is None else [JobType(t) for t in types]
        report = DrainReport()
        loop = _Loop(interval=cfg.idle_poll_min_s)
        try:
            while True:
                now = self._clock()
                if hard_stop - now < cfg.job_timeout_s:
                    report.stop_reason = StopReason.BUDGET
                    break
                last_chance = self._last_chance(loop, now, hard_stop)
                hold = self._marker_hold(now, loop.marker_until, last_chance, loop.last_batch_s)
                result = self.queue.claim_batch(
                    cfg.batch_size,
                    types=wanted,
                    lease_s=self._lease_s(now, hard_stop, cfg.batch_size),
                    hold_marker_s=hold,
                    hints=hints if report.polls == 0 else (),
                )
                report.polls += 1
                if result.out_of_memory:
                    _report_full_redis(report)
                if hold == MARKER_RELEASE_S:
                    loop.marker_until = -math.inf
                elif hold > 0:
                    loop.marker_until = now + hold
                claimed = result.jobs
                loop.last_full = len(claimed) >= cfg.batch_size
                if claimed:
                    loop.worked, loop.idle_since = True, None
                    loop.interval = cfg.idle_poll_min_s
                    runs = self._batches.execute(claimed, hard_stop)
                    loop.last_batch_s = self._clock() - now
                    if loop.settling is not None:
                        report.add(loop.settling.result())
                    loop.settling = self._settler().submit(self._batches.settle, runs)
                    if loop.last_full or result.due_in_s() == 0.0:
                        continue  # more is due now
                pause = self._pause(loop, result, now, hard_stop)
                if pause is None:
                    report.stop_reason = StopReason.IDLE
                    break
                if pause > 0:
                    self._collect(loop, report)
                    self._sleep(max(0.0, min(pause, hard_stop - cfg.job_timeout_s - now)))
            self._collect(loop, report)
            if report.stop_reason is StopReason.BUDGET and loop.last_full and measure_backlog:
                report.backlog = self._backlog(wanted)
        except BackendError as exc:
            if loop.settling is not None:  # let the batch in flight finish and count it
                with contextlib.suppress(BackendError):
                    report.add(loop.settling.result())
            logger.exception("drain stopped: the queue backend failed")
            report.stop_reason = StopReason.BACKEND_ERROR
            report.error = exc
        report.elapsed_s = self._clock() - start
        return report

    def _last_chance(self, loop: _Loop, now: float, hard_stop: float) -> bool:
        """Whether the next claim may be the drain's last (it then lets go of the marker):
        not after a full batch, nor while an idle tail goes on after it."""
        cfg = self.config
        if loop.worked and loop.last_full:
            return False
        if not loop.worked or cfg.idle_exit_s <= 0:
            return True
        idle_for = 0.0 if loop.idle_since is None else now - loop.idle_since
        return (
            idle_for + loop.interval > cfg.idle_exit_s
            or hard_stop - now - loop.interval < cfg.job_timeout_s
        )

    def _pause(
        self, loop: _Loop, result: ClaimResult, now: float, hard_stop: float
    ) -> float | None:
        """After a claim that left nothing due now: how long to wait before the next claim
        (0: claim at once), or None to stop. A job due within the budget is waited for;
        otherwise the idle tail (``idle_exit_s``) polls on; a marker still held is let
        go of by one last claim."""
        cfg = self.config
        due_in = result.due_in_s()
        if due_in is not None and due_in > 0.0:
            start_by = hard_stop - cfg.job_timeout_s
            if now + due_in <= start_by:
                return max(0.0, now + due_in - self._clock())
        if loop.worked and not self._last_chance(loop, now, hard_stop):
            if loop.idle_since is None:
                loop.idle_since = now
            pause = loop.interval
            loop.interval = min(loop.interval * 2, cfg.idle_poll_max_s)
            return pause
        if loop.marker_until > self._clock():
            return 0.0  # the next claim is a last chance: it lets go of the marker
        return None

    @staticmethod
    def _collect(loop: _Loop, report: DrainReport) -> None:
        if loop.settling is not None:
            report.add(loop.settling.result())
            loop.settling = None

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
        return self._batches.settle(self._batches.execute(claimed, hard_stop))


# -- the original module-level API over a default processor ------------------------------
