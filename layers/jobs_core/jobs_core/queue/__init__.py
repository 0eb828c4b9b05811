"""The queue engine: a Redis job queue with leases, retries, a dead-letter queue and dedupe.

``job_queue``  ``JobQueue``, the queue operations; with ``operations`` (what operators do:
               listings, search, audit, cancel, run now, pause) the only caller of the scripts
``specs``      job specs validated and encoded for enqueue; enqueue results, settle outcomes
``keys``       every Redis key name, under one hash tag per queue
``scripts``    loads ``lua/*.lua`` (one atomic operation each), runs them, maps return codes
``backends/``  the small backend protocol: Upstash (REST), redis-py (TCP, also fakeredis)
"""

from __future__ import annotations

from .job_queue import JobQueue
from .operations import LIST_STATES, AuditEntry, JobPage, ListState, check_actor
from .specs import ClaimResult, EnqueueResult, JobSpec, Outcome, error_text

__all__ = [
    "LIST_STATES",
    "AuditEntry",
    "ClaimResult",
    "EnqueueResult",
    "JobPage",
    "JobQueue",
    "JobSpec",
    "ListState",
    "Outcome",
    "check_actor",
    "error_text",
]
