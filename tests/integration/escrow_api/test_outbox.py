"""Side effects are never lost: one Redis round trip per request, and the outbox sweep.

The jobs of a transition are committed with it (the outbox); the request then enqueues
them in one round trip and deletes them. With Redis down the request still succeeds,
the entries wait, and ``sweep_outbox`` queues them once Redis is back; dedupe keys make
any second enqueue harmless.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
import redis
from botocore.exceptions import ClientError
from escrow.outbox import sweep_outbox
from escrow.service import EscrowService
from jobs_core import EnqueueResult, JobQueue, JobType, RedisBackend
from jobs_core.queue.keys import ACTIVE_MEMBER
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import invoke, job_counts, release_event, seed_funded
from tests.support.redis_server import RedisServer

RELEASE_JOBS = (
    JobType.SEND_RELEASE_EMAIL,
    JobType.WEBHOOK_ESCROW_STATUS_CHANGED,
    JobType.AUDIT_LOG_CREATED,
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def pending(service: EscrowService) -> list[Any]:
    return service.store.pending_outbox(older_than_ms=now_ms() + 1, limit=10_000)


def expected_release_jobs(escrow_ids: list[str]) -> dict[tuple[JobType, str], int]:
    return {
        (t, f"escrow-{escrow_id}-released-{t.value}"): 1
        for escrow_id in escrow_ids
        for t in RELEASE_JOBS
    }


def unreachable_queue(queue: JobQueue) -> tuple[JobQueue, RedisServer]:
    """A queue on a redis-server that this test starts, uses once, then stops."""
    server = RedisServer().start()
    settings = dataclasses.replace(queue.settings, redis_url=server.url, request_retries=0)
    down = JobQueue(RedisBackend.from_url(server.url, timeout_s=0.5), settings)
    down.get_queue_stats()  # a live connection first, so the outage breaks a real one
    server.stop()
    return down, server


def test_one_redis_round_trip_per_request_and_the_outbox_is_emptied(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue, clean_redis: RedisServer
) -> None:
    escrows = seed_funded(service, stripe_api, 6)
    assert invoke(release_event(escrows[0][0])).status == 200  # loads the script once
    client = redis.Redis.from_url(clean_redis.url, decode_responses=True)
    client.config_resetstat()
    for escrow_id, _ in escrows[1:]:
        assert invoke(release_event(escrow_id)).status == 200
    stats = client.info("commandstats")
    client.close()
    round_trips = sum(
        stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval")
    )
    assert round_trips == 5
    assert pending(service) == []
    assert job_counts(queue) == expected_release_jobs([e for e, _ in escrows])


@pytest.mark.slow
def test_redis_down_during_100_releases_then_one_sweep_queues_each_effect_once(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = seed_funded(service, stripe_api, 10)
    during = seed_funded(service, stripe_api, 100)
    for escrow_id, _ in before:  # Redis up: queued at once, outbox emptied
        assert invoke(release_event(escrow_id)).status == 200
    assert pending(service) == []

    down, _ = unreachable_queue(queue)
    monkeypatch.setattr(service, "queue", down)
    for escrow_id, intent_id in during:  # Redis down: the money still moves
        reply = invoke(release_event(escrow_id))
        assert reply.status == 200, reply.body
        assert reply.body["escrow"]["state"] == "released"
        assert stripe_api.payment_intent(intent_id)["status"] == "succeeded"
    waiting = pending(service)
    assert len(waiting) == 300
    assert {e.escrow_id for e in waiting} == {e for e, _ in during}

    # Redis is back. Entries younger than the sweep's minimum age belong to live requests.
    assert sweep_outbox(service.store, queue, min_age_s=3600).found == 0
    report = sweep_outbox(service.store, queue, min_age_s=0)
    assert (report.found, report.enqueued, report.invalid) == (300, 300, 0)
    assert pending(service) == []
    assert sweep_outbox(service.store, queue, min_age_s=0).found == 0

    counts = job_counts(queue)
    assert counts == expected_release_jobs([e for e, _ in before + during])
    # A second enqueue of the same entries (a sweep that died before deleting them,
    # racing another sweep) queues nothing new: the dedupe keys hold.
    queue.enqueue_batch([entry.spec(queue.now_ms()) for entry in waiting])
    assert job_counts(queue) == {}


def test_when_deleting_enqueued_entries_fails_the_sweep_queues_nothing_twice(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [(escrow_id, _)] = seed_funded(service, stripe_api, 1)

    def table_unavailable(*args: Any, **kwargs: Any) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "x"}}, "Batch")

    monkeypatch.setattr(service.store, "delete_outbox", table_unavailable)
    assert invoke(release_event(escrow_id)).status == 200
    monkeypatch.undo()
    assert len(pending(service)) == 3  # queued, but still in the outbox
    assert sweep_outbox(service.store, queue, min_age_s=0).found == 3
    assert job_counts(queue) == expected_release_jobs([escrow_id])


def test_the_processor_is_kicked_only_when_none_is_draining(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    clean_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kicks: list[EnqueueResult] = []
    monkeypatch.setattr(service, "kick", kicks.append)
    (first, _), (second, _) = seed_funded(service, stripe_api, 2)
    assert invoke(release_event(first)).status == 200
    assert [k.processor_active for k in kicks] == [False]
    assert len(kicks[0].ids) == 3
    client = redis.Redis.from_url(clean_redis.url)
    # A processor is draining: its marker, live for a minute (scored minus its expiry).
    client.zadd(queue.keys.timeline, {ACTIVE_MEMBER: -(queue.now_ms() + 60_000)})
    client.close()
    assert invoke(release_event(second)).status == 200
    assert len(kicks) == 1


def test_a_failing_kick_does_not_fail_the_request(
    service: EscrowService, stripe_api: StripeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_kick(result: EnqueueResult) -> None:
        raise RuntimeError("lambda:InvokeFunction denied")

    monkeypatch.setattr(service, "kick", broken_kick)
    [(escrow_id, _)] = seed_funded(service, stripe_api, 1)
    assert invoke(release_event(escrow_id)).status == 200
