"""The module-level API over a processor built once from the environment.

This is the layer's composition root: the only module that joins the queue, the
processor and the workers (the processor itself never depends on the workers), so
``process_next_job("send_release_email")`` works with no set-up beyond the environment.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from .models import JobType
from .processor import HandlerRegistry, Processor
from .processor.report import BatchResult, JobResult
from .queue import JobQueue

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
