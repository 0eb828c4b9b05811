"""The module-level API over one queue (and one processor) built once from the environment.

This is the layer's composition root: the only module that joins the queue, the
processor and the workers (the processor itself never depends on the workers). The
seed system's calls work as written, in Python spelling, with no set-up beyond the
environment, each still one Redis round trip::

    from jobs_core import enqueue_job, get_dead_letter_jobs, get_job_status, get_queue_stats

    job_id = enqueue_job("send_release_email", {...}, dedupe_key="escrow-esc_1-release")
    get_job_status(job_id).state
    get_queue_stats().ready
    get_dead_letter_jobs(100)
    process_next_job("send_release_email")
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

from .models import Job, JobType, QueueStats
from .processor import HandlerRegistry, Processor
from .processor.report import BatchResult, JobResult
from .queue import JobQueue, JobSpec
from .queue.specs import PayloadInput

_default_lock = threading.Lock()
_default: Processor | None = None
_default_queue: JobQueue | None = None


def default_handlers(environ: Mapping[str, str] | None = None) -> HandlerRegistry:
    """This deploy's registry: ``jobs_core.workers.build_handlers`` with its dependencies
    read from ``environ`` (the process environment when None). Imported here, on first
    use: the processor itself never depends on the workers."""
    from .workers import build_handlers, deps_from_environ

    return build_handlers(deps_from_environ(environ))


def set_default_queue(queue: JobQueue | None) -> None:
    """Install the queue the module-level functions use (None: build it on next use).

    The default processor is dropped too, so it is rebuilt on this queue."""
    global _default, _default_queue
    with _default_lock:
        _default_queue = queue
        _default = None


def default_queue() -> JobQueue:
    """The module-level queue: ``JobQueue.from_settings(Settings.from_env())``, built once."""
    with _default_lock:
        return _queue_locked()


def _queue_locked() -> JobQueue:
    global _default_queue
    if _default_queue is None:
        from .config import Settings

        _default_queue = JobQueue.from_settings(Settings.from_env())
    return _default_queue


def set_default_processor(processor: Processor | None) -> None:
    """Install the processor the module-level functions use (None: build it on next use)."""
    global _default
    with _default_lock:
        _default = processor


def default_processor() -> Processor:
    """The module-level processor: the default queue and the workers' registry, built on
    first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Processor(_queue_locked(), default_handlers())
        return _default


def enqueue_job(
    job_type: JobType | str,
    payload: PayloadInput,
    *,
    dedupe_key: str | None = None,
    max_attempts: int | None = None,
    delay_s: float = 0.0,
    correlation_id: str | None = None,
) -> str:
    """Queue one job on the default queue (one round trip); return its id, or the id
    already queued under ``dedupe_key``. The seed's ``enqueueJob(type, payload, opts)``.

    >>> enqueue_job("audit_log_created", {...}, dedupe_key="escrow-esc_1-audit")  # doctest: +SKIP
    '01J...'
    """
    return default_queue().enqueue_job(
        job_type,
        payload,
        dedupe_key=dedupe_key,
        max_attempts=max_attempts,
        delay_s=delay_s,
        correlation_id=correlation_id,
    )


def enqueue_jobs(specs: Sequence[JobSpec]) -> list[str]:
    """Queue several ``(type, payload[, options])`` jobs in one round trip; their ids."""
    return default_queue().enqueue_jobs(specs)


def get_job_status(job_id: str) -> Job | None:
    """The job as it stands now, or None once its record expired. The seed's ``getJobStatus``.

    >>> get_job_status("01J...").state  # doctest: +SKIP
    <JobState.QUEUED: 'queued'>
    """
    return default_queue().get_job_status(job_id)


def get_queue_stats() -> QueueStats:
    """Depth per type, dead-letter size and oldest ready age. The seed's ``getQueueStats``."""
    return default_queue().get_queue_stats()


def get_dead_letter_jobs(limit: int = 100) -> list[Job]:
    """Dead-lettered jobs, newest first. The seed's ``getDeadLetterJobs(100)``."""
    return default_queue().get_dead_letter_jobs(limit)


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
