"""The processor on a Redis user limited to its queue's keys and scripts (ACL on the
session's redis-server): every queue operation works, and nothing beyond them does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from jobs_core import (
    BackendError,
    Job,
    JobQueue,
    JobState,
    PermanentJobError,
    RedisBackend,
    Settings,
)
from jobs_core.queue.acl import acl_rules
from operator_api import events, wiring

from tests.support.redis_acl import acl_user
from tests.unit.processor.support import AUDIT, FakeContext, RecordingLambda, enqueue, load_event


@pytest.fixture
def queue_url(redis_url: str, namespace: str) -> Iterator[str]:
    with acl_user(redis_url, acl_rules(namespace, role="queue")) as url:
        yield url


def test_the_processor_drains_as_a_user_limited_to_the_namespace(
    redis_url: str, namespace: str, queue_url: str
) -> None:
    redis.Redis.from_url(redis_url).script_flush()  # the cold path too: EVAL
    user_queue = JobQueue(
        RedisBackend.from_url(queue_url, timeout_s=5), Settings(namespace=namespace)
    )
    ids = enqueue(user_queue, 6, dedupe_key=None)
    doomed = ids[0]

    def handler(job: Job) -> None:
        if job.id == doomed:
            raise PermanentJobError("card declined")

    env = {"JOB_PROCESSOR_MAX_FANOUT": "0", "JOB_PROCESSOR_IDLE_EXIT_S": "0"}
    svc = wiring.build_services(
        env, handlers={AUDIT: handler}, queue=user_queue, lambda_client=RecordingLambda()
    )
    answer = events.handle(load_event("scheduled"), FakeContext(30), svc)  # type: ignore[arg-type]

    assert answer["succeeded"] == 5 and answer["deadLettered"] == 1, answer
    assert [j.id for j in user_queue.get_dead_letter_jobs(10)] == [doomed]
    assert user_queue.replay_dead_letter([doomed]) == [doomed]
    [claimed] = user_queue.claim(5)
    user_queue.fail(claimed, "again", permanent=True)
    assert user_queue.purge_dead_letter([doomed]) == 1
    stats = user_queue.get_queue_stats()
    assert (stats.ready, stats.running, stats.dead_letter) == (0, 0, 0)
    status = user_queue.get_job_status(ids[1])
    assert status is not None and status.state is JobState.SUCCEEDED


def test_the_queue_user_may_not_flush_configure_or_leave_its_namespace(
    namespace: str, queue_url: str
) -> None:
    user = redis.Redis.from_url(queue_url, decode_responses=True)
    own = JobQueue(RedisBackend(user), Settings(namespace=namespace))
    own.enqueue_job(AUDIT, {"transactionId": "e", "action": "a", "actor": "b"})
    for command in (("FLUSHDB",), ("FLUSHALL",), ("CONFIG", "GET", "*"),
                    ("CONFIG", "SET", "maxmemory", "1"), ("KEYS", "*"), ("SCAN", "0"),
                    ("SCRIPT", "FLUSH"), ("ACL", "LIST"), ("ACL", "SETUSER", "evil", "on"),
                    ("CLIENT", "LIST"), ("INFO",)):  # fmt: skip
        with pytest.raises(redis.exceptions.NoPermissionError):
            user.execute_command(*command)
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.get("{another-namespace}:job:1")
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.set("unrelated-key", "x")
    # A script is held to the same keys: the queue of another namespace is out of reach.
    other = JobQueue(RedisBackend(user), Settings(namespace=namespace + "-other"))
    with pytest.raises(BackendError, match="no permissions"):
        other.enqueue_job(AUDIT, {"transactionId": "e", "action": "a", "actor": "b"})
    with pytest.raises(BackendError, match="no permissions"):
        other.get_queue_stats()
    user.close()
