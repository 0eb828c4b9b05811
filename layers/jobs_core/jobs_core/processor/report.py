"""What the processor did: one ``JobResult`` per job, tallies per batch and per drain.

Plain data, no I/O. ``to_dict`` gives the camelCase shapes the operator endpoint
answers with; ``metrics`` turns a ``DrainReport`` into EMF metrics.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..models import JobType

# Duration samples kept per tally (reservoir sampling beyond): bounds memory on long drains.
MAX_DURATION_SAMPLES = 1000


class JobOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    RETRIED = "retried"  # failed, due again after a backoff
    DEAD_LETTERED = "dead_lettered"  # permanent error, out of attempts, or unknown type
    RELEASED = "released"  # claimed but never started: back in the queue, no attempt spent
    LEASE_LOST = "lease_lost"  # ran, but another processor holds the job now: nothing written
    HELD = "held"  # its partner's endpoint is gone (410): held until re-enabled, not dead


class StopReason(StrEnum):
    IDLE = "idle"  # the queue stayed empty
    BUDGET = "budget"  # too little time left to start another job
    BACKEND_ERROR = "backend_error"  # Redis failed; the report says how far the drain got


@dataclass(frozen=True, slots=True)
class JobResult:
    job_id: str
    job_type: JobType
    attempt: int
    outcome: JobOutcome
    duration_ms: float | None = None  # None when the handler never started
    error: str | None = None
    timed_out: bool = False
    correlation_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.job_id,
            "type": self.job_type.value,
            "attempt": self.attempt,
            "outcome": self.outcome.value,
            "durationMs": None if self.duration_ms is None else round(self.duration_ms, 1),
            "error": self.error,
            "timedOut": self.timed_out,
        }


@dataclass(slots=True)
class Tally:
    """Counts of one batch, one job type or one whole drain."""

    processed: int = 0  # jobs that got an outcome other than "released"
    succeeded: int = 0
    retried: int = 0
    dead_lettered: int = 0
    released: int = 0
    lease_lost: int = 0
    timed_out: int = 0
    durations_ms: list[float] = field(default_factory=list)  # a sample, see MAX_DURATION_SAMPLES
    _seen_durations: int = 0

    def add(self, result: JobResult) -> None:
        outcome = result.outcome
        if outcome is JobOutcome.RELEASED:
            self.released += 1
            return
        self.processed += 1
        if outcome is JobOutcome.SUCCEEDED:
            self.succeeded += 1
        elif outcome is JobOutcome.RETRIED:
            self.retried += 1
        elif outcome is JobOutcome.DEAD_LETTERED:
            self.dead_lettered += 1
        else:
            self.lease_lost += 1
        if result.timed_out:
            self.timed_out += 1
        if result.duration_ms is not None:
            self._sample(result.duration_ms)

    def _sample(self, value: float) -> None:
        self._seen_durations += 1
        if len(self.durations_ms) < MAX_DURATION_SAMPLES:
            self.durations_ms.append(value)
            return
        slot = random.randrange(self._seen_durations)
        if slot < MAX_DURATION_SAMPLES:
            self.durations_ms[slot] = value

    def to_dict(self) -> dict[str, int]:
        return {
            "processed": self.processed,
            "succeeded": self.succeeded,
            "retried": self.retried,
            "deadLettered": self.dead_lettered,
            "released": self.released,
            "leaseLost": self.lease_lost,
            "timedOut": self.timed_out,
        }


@dataclass(slots=True)
class BatchResult:
    """One claim, its jobs run, one settle."""

    results: list[JobResult] = field(default_factory=list)

    @property
    def tally(self) -> Tally:
        tally = Tally()
        for result in self.results:
            tally.add(result)
        return tally

    def to_dict(self) -> dict[str, Any]:
        return {**self.tally.to_dict(), "jobs": [r.to_dict() for r in self.results]}


@dataclass(slots=True)
class DrainReport:
    """Everything one drain did, aggregated (no per-job list: a drain may run 100k jobs)."""

    total: Tally = field(default_factory=Tally)
    by_type: dict[JobType, Tally] = field(default_factory=dict)
    batches: int = 0
    polls: int = 0
    stop_reason: StopReason = StopReason.IDLE
    elapsed_s: float = 0.0
    backlog: int | None = None  # ready jobs left when the budget ran out (measured only then)
    redis_full: int = 0  # claims that found Redis refusing writes for memory
    error: BaseException | None = None  # the backend error that ended the drain, if any

    def add(self, batch: BatchResult) -> None:
        self.batches += 1
        for result in batch.results:
            self.total.add(result)
            self.by_type.setdefault(result.job_type, Tally()).add(result)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.total.to_dict(),
            "batches": self.batches,
            "polls": self.polls,
            "stopReason": self.stop_reason.value,
            "elapsedS": round(self.elapsed_s, 3),
            "backlog": self.backlog,
        }


def fanout_count(report: DrainReport, max_fanout: int) -> int:
    """How many more processors to start after ``report``'s drain: none unless it ran out of
    budget with jobs still ready; then one per invocation-load of backlog, at most
    ``max_fanout``. An invocation's load is what this one got through.

    >>> r = DrainReport(stop_reason=StopReason.BUDGET, backlog=250)
    >>> r.total.processed = 100
    >>> fanout_count(r, 4)
    3
    """
    if report.stop_reason is not StopReason.BUDGET or not report.backlog or max_fanout < 1:
        return 0
    per_invocation = max(report.total.processed, 1)
    return min(max_fanout, math.ceil(report.backlog / per_invocation))
