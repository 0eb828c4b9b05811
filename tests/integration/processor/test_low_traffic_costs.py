"""What this product's usual traffic costs on Upstash's meter, counted by a real
redis-server (``INFO commandstats``: each script call and each command inside it): a lone
API job and a release request of three, each with its dedupe keys and the marker read for
the kick, then the drain the kick starts (a ``Processor`` with production defaults, given
the kick's event: its hints carry the records of jobs without personal data)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from jobs_core import Job, JobQueue, JobType, Kicker, RedisBackend, Settings, parse_hints
from jobs_core.processor import Processor, ProcessorConfig

from tests.unit.processor.support import RecordingLambda

AUDIT = JobType.AUDIT_LOG_CREATED
PAYLOAD = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}
RELEASE = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 10000}
NOT_COUNTED = {"info", "config|resetstat", "config"}


@pytest.fixture
def rig(redis_url: str) -> Iterator[tuple[JobQueue, Callable[[Callable[[], Any]], int]]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    backend = RedisBackend.from_url(redis_url, timeout_s=5)
    queue = JobQueue(backend, Settings(namespace=f"low-{uuid.uuid4().hex[:8]}"))

    def commands(action: Callable[[], Any]) -> int:
        client.config_resetstat()
        action()
        stats = client.info("commandstats")
        return sum(
            v["calls"] for k, v in stats.items() if k.removeprefix("cmdstat_") not in NOT_COUNTED
        )

    queue.get_queue_stats()  # a warm Lambda: connected, scripts loaded
    queue.enqueue_batch([(AUDIT, PAYLOAD, {"dedupe_key": "warm"})], read_marker=True)
    queue.complete(queue.claim(1)[0])
    yield queue, commands
    backend.close()
    client.close()


def kicked_request(queue: JobQueue, jobs: int, job_type: JobType = AUDIT) -> None:
    """The API's enqueue and kick, then the kicked drain with the event's hints, as the
    processor's handler passes them (``operator_api.events``)."""
    ran: list[str] = []

    def handler(job: Job) -> None:
        ran.append(job.id)

    payload = PAYLOAD if job_type is AUDIT else RELEASE
    specs = [(job_type, payload, {"dedupe_key": uuid.uuid4().hex}) for _ in range(jobs)]
    result = queue.enqueue_batch(specs, read_marker=True)
    lambda_client = RecordingLambda()
    assert Kicker("job-processor", client=lambda_client).kick(result)  # no processor: a kick
    [event] = lambda_client.events()
    processor = Processor(queue, {job_type: handler}, config=ProcessorConfig())
    report = processor.drain(60, hints=parse_hints(event.get("hints")))
    assert report.total.succeeded == jobs and sorted(ran) == sorted(result.ids)


def test_a_lone_job_costs_ten_commands_from_enqueue_to_its_record_of_success(
    rig: tuple[JobQueue, Callable[[Callable[[], Any]], int]],
) -> None:
    """Enqueue 3 (EVALSHA, MSETNX of the record that is also its dedupe key, ZADD that also
    reads the marker), claim 4 (EVALSHA, ZRANGEBYSCORE, ZREM, ZADD: the kick carried the
    record), settle 3 (EVALSHA, ZREM, SET); the drain ends without another poll: nothing
    else is due."""
    queue, commands = rig
    assert commands(lambda: kicked_request(queue, 1)) == 10


def test_a_lone_email_job_costs_one_read_more(
    rig: tuple[JobQueue, Callable[[Callable[[], Any]], int]],
) -> None:
    """An email job's record holds addresses: the kick does not carry it, so the claim
    reads it (its MGET): 11."""
    queue, commands = rig
    assert commands(lambda: kicked_request(queue, 1, JobType.SEND_RELEASE_EMAIL)) == 11


def test_a_release_request_of_three_jobs_costs_under_five_commands_a_job(
    rig: tuple[JobQueue, Callable[[Callable[[], Any]], int]],
) -> None:
    """Enqueue 3, claim 4, settle 6 (EVALSHA, ZMSCORE, ZREM, a SET per record): 13."""
    queue, commands = rig
    assert commands(lambda: kicked_request(queue, 3)) == 13
