"""redis-py over TCP: unreachable servers and NOSCRIPT recovery on a real redis-server."""

from __future__ import annotations

import uuid

import pytest
import redis
from jobs_core import BackendError, JobQueue, RedisBackend, Settings

from tests.support.redis_server import RedisServer, free_port

RELEASE = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 10000}


def test_unreachable_redis_is_a_typed_transient_error() -> None:
    backend = RedisBackend.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    queue = JobQueue(backend, Settings(request_retries=0))
    with pytest.raises(BackendError) as info:
        queue.enqueue_job("send_release_email", RELEASE)
    assert info.value.backend == "redis" and info.value.transient
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)


def test_script_cache_flush_is_recovered(redis_url: str) -> None:
    queue = JobQueue(
        RedisBackend.from_url(redis_url, timeout_s=2),
        Settings(namespace=f"t-{uuid.uuid4().hex[:8]}"),
    )
    queue.enqueue_job("send_release_email", RELEASE)
    redis.Redis.from_url(redis_url).script_flush()
    queue.enqueue_job("send_release_email", RELEASE)
    assert queue.get_queue_stats().ready == 2


def test_queue_survives_a_redis_restart_between_calls() -> None:
    with RedisServer() as server:
        queue = JobQueue(
            RedisBackend.from_url(server.url, timeout_s=1), Settings(request_retries=0)
        )
        queue.enqueue_job("send_release_email", RELEASE)
        server.stop()
        with pytest.raises(BackendError):
            queue.get_queue_stats()
