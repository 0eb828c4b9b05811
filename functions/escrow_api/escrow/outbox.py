"""The outbox: side-effect jobs written with the state change, enqueued after it, swept if lost.

A transition writes its jobs (type, validated payload, dedupe key) to the table in the
same DynamoDB transaction as the new state. After the commit the request enqueues them
all with one ``enqueue_batch`` (one Redis round trip, see ``dispatch.py``) and deletes
the entries. When Redis is unreachable the request still succeeds and the entries stay;
``sweep_outbox``, which this function's own schedule runs every minute
(``api.sweep_outbox_now``), enqueues them later. Dedupe keys
(``escrow-<id>-<event>-<job type>``) make a second enqueue of the same entry harmless.

>>> from escrow.outbox import sweep_outbox
>>> report = sweep_outbox(store, queue)   # doctest: +SKIP
>>> report.enqueued
3
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jobs_core import (
    PAYLOAD_MODELS,
    BackendError,
    InvalidJobError,
    JobQueue,
    JobSpec,
    JobType,
    logger,
)

OUTBOX_SHARDS = 4  # outbox partitions; the sweep reads each (few, so each stays small)
SWEEP_MIN_AGE_S = 30.0  # leave fresh entries to the request that wrote them
SWEEP_LIMIT = 500
ENQUEUE_CHUNK = 100
MAX_DELAY_S = 30 * 86_400  # the queue's longest delay


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One job to enqueue; ``payload`` is already validated against its job type's model."""

    job_type: JobType
    payload: Mapping[str, Any]
    dedupe_key: str
    escrow_id: str
    created_ms: int
    correlation_id: str | None = None
    due_ms: int | None = None  # run no earlier than this (a reminder before a deadline)

    @property
    def shard(self) -> int:
        return outbox_shard(self.escrow_id)

    @property
    def sort_key(self) -> str:
        return f"{self.created_ms:013d}#{self.dedupe_key}"

    def spec(self, now_ms: int) -> JobSpec:
        options: dict[str, Any] = {"dedupe_key": self.dedupe_key}
        if self.correlation_id:
            options["correlation_id"] = self.correlation_id[:128]
        if self.due_ms is not None and self.due_ms > now_ms:
            options["delay_s"] = min((self.due_ms - now_ms) / 1000, MAX_DELAY_S)
        return (self.job_type, dict(self.payload), options)


def outbox_shard(escrow_id: str) -> int:
    digest = hashlib.sha256(escrow_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % OUTBOX_SHARDS


def dedupe_key(escrow_id: str, event: str, job_type: JobType) -> str:
    return f"escrow-{escrow_id}-{event}-{job_type.value}"


def make_entry(
    job_type: JobType,
    payload: Mapping[str, Any],
    *,
    escrow_id: str,
    event: str,
    now_ms: int,
    correlation_id: str | None,
    due_ms: int | None = None,
) -> OutboxEntry:
    """Validate ``payload`` now, so the outbox never holds a job the queue would refuse."""
    model = PAYLOAD_MODELS[job_type].model_validate(dict(payload))
    return OutboxEntry(
        job_type=job_type,
        payload=model.model_dump(mode="json", exclude_none=True),
        dedupe_key=dedupe_key(escrow_id, event, job_type),
        escrow_id=escrow_id,
        created_ms=now_ms,
        correlation_id=correlation_id,
        due_ms=due_ms,
    )


class OutboxStore(Protocol):
    """The two table operations the outbox needs (``store.EscrowStore`` has them)."""

    def pending_outbox(self, *, older_than_ms: int, limit: int) -> list[OutboxEntry]: ...

    def delete_outbox(self, entries: Sequence[OutboxEntry]) -> None: ...


@dataclass(frozen=True, slots=True)
class SweepReport:
    found: int  # entries older than min_age_s
    enqueued: int  # handed to the queue (a dedupe hit counts: the job is queued either way)
    invalid: int  # refused by the queue's payload models; left in the outbox
    # What still waits after the sweep: the backlog and its oldest entry's creation time.
    backlog: int = 0
    oldest_waiting_ms: int | None = None
    redis_error: str | None = None  # the sweep stopped: Redis unreachable (entries stay)

    def oldest_age_s(self, now_ms: int) -> float:
        """Age of the oldest entry still waiting (0 when none waits)."""
        if self.oldest_waiting_ms is None:
            return 0.0
        return max(0.0, (now_ms - self.oldest_waiting_ms) / 1000)


def sweep_outbox(
    store: OutboxStore,
    queue: JobQueue,
    *,
    min_age_s: float = SWEEP_MIN_AGE_S,
    limit: int = SWEEP_LIMIT,
    now_ms: int | None = None,
) -> SweepReport:
    """Enqueue the outbox entries older than ``min_age_s`` that no request enqueued, then
    delete them. Safe to run at any time and concurrently: dedupe keys absorb repeats.

    When Redis is unreachable the sweep stops, the entries stay, and the report says so
    (``redis_error``) with what still waits (``backlog``, ``oldest_waiting_ms``).
    """
    now = queue.now_ms() if now_ms is None else now_ms
    entries = store.pending_outbox(older_than_ms=now - int(min_age_s * 1000), limit=limit)
    enqueued = invalid = 0
    done: set[str] = set()
    redis_error: str | None = None
    for start in range(0, len(entries), ENQUEUE_CHUNK):
        chunk = entries[start : start + ENQUEUE_CHUNK]
        try:
            queue.enqueue_batch([e.spec(now) for e in chunk])
        except InvalidJobError:
            chunk, refused = _enqueue_one_by_one(queue, chunk, now)
            invalid += refused
        except BackendError as exc:
            redis_error = str(exc)
            break
        enqueued += len(chunk)
        store.delete_outbox(chunk)
        done.update(e.sort_key for e in chunk)
    waiting = [e.created_ms for e in entries if e.sort_key not in done]
    if entries:
        logger.info("outbox swept", extra={"found": len(entries), "enqueued": enqueued})
    return SweepReport(
        len(entries), enqueued, invalid, len(waiting), min(waiting, default=None), redis_error
    )


def _enqueue_one_by_one(
    queue: JobQueue, chunk: Sequence[OutboxEntry], now_ms: int
) -> tuple[list[OutboxEntry], int]:
    done: list[OutboxEntry] = []
    refused = 0
    for entry in chunk:
        try:
            queue.enqueue_batch([entry.spec(now_ms)])
            done.append(entry)
        except InvalidJobError:
            refused += 1
            logger.exception(
                "outbox entry refused by the queue", extra={"dedupe": entry.dedupe_key}
            )
    return done, refused
