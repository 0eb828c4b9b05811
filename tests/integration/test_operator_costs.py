"""What the operator features cost the hot paths, counted by a real redis-server
(``INFO commandstats``, every command a script runs included): a job's history rides in
the record the settle writes anyway, and paused types cost the idle poll nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from jobs_core import JobQueue, JobType, ManualClock, RedisBackend, Settings

EMAIL = JobType.SEND_RELEASE_EMAIL
PAYLOAD = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 100}
NOT_COUNTED = {"info", "config|resetstat", "config"}


@pytest.fixture
def rig(redis_url: str) -> Iterator[tuple[JobQueue, Callable[[Callable[[], Any]], int]]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    backend = RedisBackend.from_url(redis_url, timeout_s=5)
    settings = Settings(namespace=f"cost-{uuid.uuid4().hex[:8]}")
    queue = JobQueue(backend, settings, clock=ManualClock())

    def commands(action: Callable[[], Any]) -> int:
        """Commands Redis ran for ``action``, those inside its script included."""
        client.config_resetstat()
        action()
        stats = client.info("commandstats")
        return sum(
            v["calls"] for k, v in stats.items() if k.removeprefix("cmdstat_") not in NOT_COUNTED
        )

    queue.enqueue_job(EMAIL, PAYLOAD)
    queue.complete(queue.claim(1)[0])  # the scripts are loaded: EVALSHA from here on
    yield queue, commands
    backend.close()
    client.close()


def test_a_job_with_history_costs_the_same_claim_and_settle(
    rig: tuple[JobQueue, Callable[[Callable[[], Any]], int]],
) -> None:
    queue, commands = rig
    queue.enqueue_job(EMAIL, PAYLOAD)
    fresh: list[Any] = []
    claim_fresh = commands(lambda: fresh.extend(queue.claim(1)))
    settle_fresh = commands(lambda: queue.complete(fresh[0]))

    job_id = queue.enqueue_job(EMAIL, PAYLOAD, max_attempts=1)
    queue.fail(queue.claim(1)[0], "boom")
    queue.replay_dead_letter([job_id], actor="ops")  # two events in its history now
    again: list[Any] = []
    claim_again = commands(lambda: again.extend(queue.claim(1)))
    settle_again = commands(lambda: queue.complete(again[0]))
    job = queue.get_job_status(job_id)
    assert job is not None and len(job.history) == 3

    assert (claim_again, settle_again) == (claim_fresh, settle_fresh)
    assert settle_fresh == 3, settle_fresh  # EVALSHA + the lease's ZREM + the record's SET


def test_paused_types_cost_the_idle_poll_nothing(
    rig: tuple[JobQueue, Callable[[Callable[[], Any]], int]],
) -> None:
    queue, commands = rig
    idle = commands(lambda: queue.claim(10))
    for job_type in (EMAIL, JobType.AUDIT_LOG_CREATED, JobType.SEND_REFUND_EMAIL):
        queue.pause_type(job_type, actor="ops")
    assert commands(lambda: queue.claim(10)) == idle
    enqueue = commands(lambda: queue.enqueue_job(JobType.AUDIT_LOG_CREATED, {
        "transactionId": "esc-1", "action": "released", "actor": "buyer-1"}))  # fmt: skip
    assert enqueue == 3, enqueue  # EVALSHA + MSETNX + ZADD: pausing adds nothing to it
