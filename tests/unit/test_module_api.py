"""The seed's own calls, as module functions of ``jobs_core``: one queue from the environment,
one round trip per call."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import jobs_core
import pytest
from jobs_core import JobState, JobType, defaults
from jobs_core.queue import scripts
from jobs_core.queue.backends.counting import CountingBackend

RELEASE = {"transactionId": "esc-123", "recipientEmail": "user@example.com", "amount": 10000}


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingBackend]:
    """The module-level queue as the environment builds it, its round trips counted
    (scripts loaded first, as on a warm server: a cold EVALSHA is followed by an EVAL)."""
    monkeypatch.setenv("JOBS_BACKEND", "memory")
    monkeypatch.setenv("JOBS_NAMESPACE", f"module-api-{secrets.token_hex(4)}")
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    defaults.set_default_queue(None)
    queue = defaults.default_queue()
    for script in (scripts.ENQUEUE, scripts.STATUS, scripts.STATS, scripts.LIST_DEAD):
        queue.backend.client.script_load(script.source)  # type: ignore[attr-defined]
    counter = CountingBackend(queue.backend)
    queue.backend = counter
    yield counter
    defaults.set_default_queue(None)


def test_the_seed_example_works_as_written(counting: CountingBackend) -> None:
    from jobs_core import (
        enqueue_job,
        enqueue_jobs,
        get_dead_letter_jobs,
        get_job_status,
        get_queue_stats,
    )

    job_id = enqueue_job("send_release_email", RELEASE, dedupe_key="escrow-esc-123-release")
    assert counting.round_trips == 1
    assert enqueue_job("send_release_email", RELEASE, dedupe_key="escrow-esc-123-release") == job_id
    audit = {"transactionId": "esc-123", "action": "released", "actor": "buyer"}
    ids = enqueue_jobs(
        [("audit_log_created", audit), ("audit_log_created", audit, {"delay_s": 60})]
    )
    assert counting.round_trips == 3 and len(set(ids)) == 2

    status = get_job_status(job_id)
    assert status is not None and status.state is JobState.QUEUED
    assert status.type is JobType.SEND_RELEASE_EMAIL
    stats = get_queue_stats()
    assert (stats.ready, stats.scheduled, stats.dead_letter) == (2, 1, 0)
    assert get_dead_letter_jobs(100) == []
    assert counting.round_trips == 6  # one per call


def test_one_queue_for_the_process_shared_with_the_processor(counting: CountingBackend) -> None:
    queue = defaults.default_queue()
    assert defaults.default_queue() is queue
    assert defaults.default_processor().queue is queue
    job_id = jobs_core.enqueue_job("audit_log_created", {"transactionId": "e", "action": "a",
                                                         "actor": "b"})  # fmt: skip
    seen: list[str] = []
    defaults.set_default_processor(
        jobs_core.Processor(queue, {JobType.AUDIT_LOG_CREATED: lambda j: seen.append(j.id)})
    )
    assert jobs_core.process_next_job("audit_log_created") is not None
    assert seen == [job_id]
    status = jobs_core.get_job_status(job_id)
    assert status is not None and status.state is JobState.SUCCEEDED


def test_the_module_functions_are_public() -> None:
    names = {"enqueue_job", "enqueue_jobs", "get_job_status", "get_queue_stats",
             "get_dead_letter_jobs", "process_batch", "process_next_job"}  # fmt: skip
    assert names <= set(jobs_core.__all__)
