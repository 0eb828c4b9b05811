"""The queue operations; the only caller of the Lua scripts.

Every public method is one Redis command (one script), whatever the backend.
The job record is written at enqueue and at settle time only: claiming moves
timeline entries and never rewrites records, which keeps a job's whole life
(enqueue, claim, complete) at about five billed commands.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..clock import Clock, SystemClock
from ..config import Settings, default_processor_id
from ..errors import LeaseLostError
from ..models import ClaimedJob, EventKind, Job, JobEvent, JobState, JobType
from . import scripts
from .backends import Backend, ScriptArg, backend_from_settings
from .keys import QueueKeys, enqueued_score
from .operations import QueueOperations
from .specs import (
    GATED_ARG,
    GATED_TYPES,
    ClaimResult,
    EnqueueResult,
    JobSpec,
    Outcome,
    PayloadInput,
    build_job,
    error_text,
    partner_of,
)

if TYPE_CHECKING:
    from .hints import ClaimHint

# Lua's unpack() takes at most ~8000 values; 6 arguments per job keeps a call well under.
MAX_JOBS_PER_CALL = 1000


class JobQueue(QueueOperations):
    """A Redis job queue with leases, retries, a dead-letter queue and dedupe.

    >>> from jobs_core import JobQueue, Settings
    >>> queue = JobQueue.from_settings(Settings())          # embedded Redis
    >>> job_id = queue.enqueue_job("send_release_email", {
    ...     "transactionId": "esc-123", "recipientEmail": "user@example.com", "amount": 10000,
    ... }, dedupe_key="escrow-esc-123-release")
    >>> [claimed] = queue.claim(limit=10)
    >>> queue.complete(claimed)
    """

    def __init__(
        self,
        backend: Backend,
        settings: Settings | None = None,
        *,
        clock: Clock | None = None,
        rand: random.Random | None = None,
    ) -> None:
        self.backend = backend
        self.settings = settings or Settings()
        self.keys = QueueKeys(self.settings.namespace)
        self._clock = clock or SystemClock()
        self._rand = rand or random.Random()
        self.processor_id = self.settings.processor_id or default_processor_id()
        s = self.settings
        self._gate_conf = (
            f"{s.partner_rate_per_s:g} {s.partner_concurrency} {s.circuit_failures} "
            f"{int(s.circuit_open_s * 1000)} {int(s.circuit_open_cap_s * 1000)}"
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> JobQueue:
        return cls(backend_from_settings(settings), settings, clock=clock)

    def now_ms(self) -> int:
        return self._clock.now_ms()

    # -- enqueue -------------------------------------------------------------------------

    def enqueue_job(
        self,
        job_type: JobType | str,
        payload: PayloadInput,
        *,
        dedupe_key: str | None = None,
        max_attempts: int | None = None,
        delay_s: float = 0.0,
        correlation_id: str | None = None,
    ) -> str:
        """Validate and queue one job; return its id. A job with a ``dedupe_key`` has the id
        derived from the key: while that job's record lives (waiting, running, dead, or
        finished within ``Settings.finished_ttl_s``) the same key writes nothing."""
        options = None
        if dedupe_key is not None or max_attempts is not None or delay_s or correlation_id:
            options = {
                "dedupe_key": dedupe_key,
                "max_attempts": max_attempts,
                "delay_s": delay_s or None,
                "correlation_id": correlation_id,
            }
        return self.enqueue_batch([(job_type, payload, options)]).ids[0]

    def enqueue_jobs(self, specs: Sequence[JobSpec]) -> list[str]:
        """Queue several jobs in one round trip; each spec is ``(type, payload[, options])``.

        All specs are validated first: one bad spec refuses the whole batch, nothing written.
        """
        return self.enqueue_batch(specs).ids

    def enqueue_batch(
        self, specs: Sequence[JobSpec], *, read_marker: bool = False
    ) -> EnqueueResult:
        """``enqueue_jobs`` that can also report whether a processor is draining right now."""
        now = self.now_ms()
        jobs = [build_job(spec, now, self.settings) for spec in specs]
        ids: list[str] = []
        duplicates: list[bool] = []
        active = False
        legacy = self.settings.legacy_dedupe_keys
        for start in range(0, len(jobs), MAX_JOBS_PER_CALL):
            chunk = jobs[start : start + MAX_JOBS_PER_CALL]
            marker_at = now if read_marker and start == 0 else 0
            args: list[ScriptArg] = [self.keys.prefix, marker_at, len(chunk)]
            for job in chunk:
                args += [job.id, job.type.value, enqueued_score(job.due_ms), job.record, job.route]
            if legacy:
                args += [job.dedupe_key or "" for job in chunk]
            reply = self._run(scripts.ENQUEUE, [self.keys.timeline], args)
            active = active or bool(int(reply[0]))
            for job, existed in zip(chunk, reply[1:], strict=True):
                # 0 new (or this request's own), 1 there already, else the id that an
                # earlier version's dedupe key names (legacy_dedupe_keys)
                code = existed.decode() if isinstance(existed, bytes) else str(existed)
                ids.append(job.id if code in ("0", "1") else code)
                duplicates.append(code != "0")
        return EnqueueResult(ids, active, duplicates, jobs)

    # -- claim and settle ------------------------------------------------------------------

    def claim(
        self,
        limit: int = 10,
        *,
        types: Iterable[JobType | str] | None = None,
        lease_s: float | None = None,
        hold_marker_s: float = 0.0,
    ) -> list[ClaimedJob]:
        """Lease up to ``limit`` due jobs (all types, or ``types``), oldest due first.

        Expired leases are reaped first (an attempt counted, or dead-lettered) and their
        jobs leased ahead of the backlog. ``hold_marker_s`` > 0 also sets the
        processor-active marker. ``claim_batch`` also says when the next job is due.
        """
        return self.claim_batch(
            limit, types=types, lease_s=lease_s, hold_marker_s=hold_marker_s
        ).jobs

    def claim_batch(
        self,
        limit: int = 10,
        *,
        types: Iterable[JobType | str] | None = None,
        lease_s: float | None = None,
        hold_marker_s: float = 0.0,
        hints: Sequence[ClaimHint] = (),
    ) -> ClaimResult:
        """``claim``, with what the script saw: the next due time and a full Redis.

        ``hints`` are jobs whose records the caller holds (a kick's: ``hints.py``); one
        found as its enqueue left it is leased without its record being read.
        """
        if limit < 1:
            return ClaimResult([], now_ms=self.now_ms())
        now = self.now_ms()
        lease_ms = int((lease_s or self.settings.lease_s) * 1000)
        token = secrets.token_hex(8)
        wanted = "" if types is None else "|" + "|".join(JobType(t).value for t in types) + "|"
        chunk = max(limit * 2, 32) if wanted else limit + 8
        args: list[ScriptArg] = [
            self.keys.prefix,
            now,
            now + lease_ms,
            limit,
            token,
            wanted,
            chunk,
            max(chunk, 10_000 if wanted else chunk * 4),
            "0",
            int(hold_marker_s * 1000),
            lease_ms,
            GATED_ARG,
            self._gate_conf,
            " ".join(f"{h.member} {h.score}" for h in hints),
        ]
        reply = self._run(
            scripts.CLAIM,
            [self.keys.timeline, self.keys.dead],
            args,
            resend_flag_index=8,
        )
        deadline = _dt(now + lease_ms)
        claimed = []
        for raw in reply[scripts.CLAIM_HEADER :]:
            if raw[:1] == "=":  # the i-th hint's job: its record was not read
                raw = hints[int(raw[1:]) - 1].record
            job = Job.from_record(raw, state=JobState.RUNNING)
            claimed.append(
                ClaimedJob(
                    job=job,
                    token=token,
                    attempt=job.attempts + 1,
                    lease_deadline=deadline,
                    payload_json=raw.partition("\n")[2],
                )
            )
        next_due = int(reply[2])
        return ClaimResult(
            claimed,
            now_ms=now,
            next_due_ms=None if next_due < 0 else next_due,
            out_of_memory=bool(int(reply[3])),
            reaped=int(reply[0]),
            dead_lettered=int(reply[1]),
        )

    def complete(self, claimed: ClaimedJob, *, started_ms: int | None = None) -> None:
        """Mark a leased job succeeded. Raises ``LeaseLostError`` if the lease was taken over."""
        self._settle_one(Outcome(claimed, "done", started_ms=started_ms))

    def fail(
        self,
        claimed: ClaimedJob,
        error: BaseException | str,
        *,
        permanent: bool = False,
        delay_s: float | None = None,
    ) -> JobState:
        """Record a failed attempt: retry later (backoff with full jitter, or ``delay_s``),
        or, if ``permanent`` or out of attempts, move the job to the dead-letter queue.
        Returns the job's new state (``scheduled`` or ``dead``)."""
        text = error if isinstance(error, str) else error_text(error)
        outcome = Outcome(claimed, "dead" if permanent else "retry", error=text, delay_s=delay_s)
        return self._settle_one(outcome)

    def release(self, claimed: ClaimedJob) -> None:
        """Give back a leased job that was never started: due again at once, no attempt counted."""
        self._settle_one(Outcome(claimed, "release"))

    def _settle_one(self, outcome: Outcome) -> JobState:
        [(state, code)] = self.settle([outcome])
        scripts.check_settle_code(code, outcome.claimed.id)
        return state

    def settle(self, outcomes: Sequence[Outcome]) -> list[tuple[JobState, int]]:
        """Record many outcomes in one call; per job ``(new state, settle code)``.

        Unlike the single-job calls this does not raise on a lost lease: the code says
        so (``SettleCode.LEASE_LOST``) and nothing was written for that job.
        """
        if not outcomes:
            return []
        now = self.now_ms()
        args: list[ScriptArg] = [
            self.keys.prefix,
            now,
            self.settings.finished_ttl_s,
            GATED_ARG,
            self._gate_conf,
        ]
        states: list[JobState] = []
        for outcome in outcomes:
            action, record, score, state = self._settlement(outcome, now)
            c = outcome.claimed
            args += [c.id, c.job.type.value, c.token, action, record, score]
            states.append(state)
        codes = self._run(scripts.SETTLE, [self.keys.timeline, self.keys.dead], args)
        return [(s, int(code)) for s, code in zip(states, codes, strict=True)]

    def _settlement(self, outcome: Outcome, now: int) -> tuple[str, str, int, JobState]:
        claimed, job = outcome.claimed, outcome.claimed.job
        text = claimed.payload_json  # the payload as claimed: written back, not encoded again
        if outcome.kind == "release":
            return "release", "", _ms(job.next_run_at), JobState.QUEUED
        started = outcome.started_ms or now
        common: dict[str, Any] = {
            "attempts": claimed.attempt,
            "started_at": _dt(started),
            "settled_by": claimed.token,
        }
        # The attempt's history entry rides in the record this settle writes anyway.
        event: dict[str, Any] = {
            "at": _dt(now),
            "attempt": claimed.attempt,
            "started_at": _dt(started),
            "processor": self.processor_id,
            "error": outcome.error,
        }
        kind = outcome.kind
        if kind == "retry" and claimed.attempt >= job.max_attempts:
            kind = "dead"
        if kind == "hold":
            update = {**common, "state": JobState.HELD, "last_error": outcome.error}
            held = job.with_event(JobEvent(kind=EventKind.HELD, **event), **update)
            return "hold", held.to_record(payload_json=text), now, JobState.HELD
        if kind == "done":
            update = {**common, "state": JobState.SUCCEEDED, "finished_at": _dt(now)}
            done = job.with_event(JobEvent(kind=EventKind.SUCCEEDED, **event), **update)
            return "done", done.to_record(payload_json=text), now, JobState.SUCCEEDED
        if kind == "dead":
            update = {
                **common,
                "state": JobState.DEAD,
                "finished_at": _dt(now),
                "last_error": outcome.error,
            }
            dead = job.with_event(JobEvent(kind=EventKind.DEAD, **event), **update)
            return "dead", dead.to_record(payload_json=text), now, JobState.DEAD
        delay = outcome.delay_s
        if delay is None:
            policy = self.settings.retry_policy(job.type.value)
            delay = policy.delay(claimed.attempt, self._rand)
        due = now + int(delay * 1000)
        update = {
            **common,
            "state": JobState.SCHEDULED,
            "next_run_at": _dt(due),
            "last_error": outcome.error,
        }
        retry = job.with_event(
            JobEvent(kind=EventKind.RETRIED, next_run_at=_dt(due), **event), **update
        )
        return "retry", retry.to_record(payload_json=text), due, JobState.SCHEDULED

    def extend_leases(self, claimed: Sequence[ClaimedJob], lease_s: float) -> list[bool]:
        """Push the lease deadline of held jobs to now + ``lease_s``; False where lost."""
        if not claimed:
            return []
        deadline = self.now_ms() + int(lease_s * 1000)
        args: list[ScriptArg] = [deadline, self.keys.prefix]
        for c in claimed:
            # a gated job's partner slot moves with its lease (extend_leases.lua)
            partner = partner_of(c.job.payload) if c.job.type in GATED_TYPES else ""
            args += [f"{c.job.type.value}|{c.id}|{c.token}", partner]
        codes = self._run(scripts.EXTEND, [self.keys.timeline], args)
        return [int(code) == scripts.SettleCode.SETTLED for code in codes]

    def extend_lease(self, claimed: ClaimedJob, lease_s: float | None = None) -> ClaimedJob:
        """Lengthen one lease for a long job; raises ``LeaseLostError`` if it was lost."""
        seconds = lease_s or self.settings.lease_s
        if not self.extend_leases([claimed], seconds)[0]:
            raise LeaseLostError(claimed.id)
        deadline = _dt(self.now_ms() + int(seconds * 1000))
        return claimed.model_copy(update={"lease_deadline": deadline})

    def _run(
        self,
        script: scripts.Script,
        keys: Sequence[str],
        args: list[ScriptArg],
        *,
        resend_flag_index: int | None = None,
    ) -> Any:
        return scripts.run(
            self.backend,
            script,
            keys,
            args,
            retries=self.settings.request_retries,
            resend_flag_index=resend_flag_index,
        )


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
