"""The monitor as deployed, on a read-only Redis user (ACL on the session's redis-server):
its statistics script runs as EVALSHA_RO, and nothing else is allowed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from jobs_core import BackendError, JobQueue, RedisBackend, Settings
from jobs_core.queue import scripts
from jobs_core.queue.acl import acl_rules

from functions.monitor import app
from tests.integration.monitor.test_monitor_integration import (
    EVENT,
    check_known_state,
    seed_over_tcp,
)
from tests.support.redis_acl import acl_user
from tests.unit.monitor.emf import parse_emf
from tests.unit.monitor.lambda_support import FakeLambdaContext

RELEASE = {"transactionId": "esc-1", "recipientEmail": "seller@example.com", "amount": 10_000}


@pytest.fixture
def monitor_url(redis_url: str, monitor_env: str) -> Iterator[str]:
    with acl_user(redis_url, acl_rules(monitor_env, role="monitor")) as url:
        yield url


def test_the_monitor_publishes_its_metrics_as_a_read_only_user(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_url: str,
    monitor_env: str,
    monitor_url: str,
    lambda_context: FakeLambdaContext,
) -> None:
    state = seed_over_tcp(redis_url, monitor_env)
    redis.Redis.from_url(redis_url).script_flush()  # the cold path too: EVAL_RO
    monkeypatch.setenv("REDIS_URL", monitor_url)

    answer = app.lambda_handler(EVENT, lambda_context)
    check_known_state(parse_emf(capsys.readouterr().out), state, monitor_env)
    assert answer["ready"] == state.ready
    app.lambda_handler(EVENT, lambda_context)  # warm: EVALSHA_RO
    check_known_state(parse_emf(capsys.readouterr().out), state, monitor_env)
    assert app.get_queue().backend.name == "redis"


def test_the_monitor_user_may_do_nothing_else(
    redis_url: str, monitor_env: str, monitor_url: str
) -> None:
    user = redis.Redis.from_url(monitor_url, decode_responses=True)
    queue = JobQueue(RedisBackend(user), Settings(namespace=monitor_env))
    assert queue.get_queue_stats().ready == 0
    assert queue.get_dead_letter_jobs(10) == []
    assert queue.get_job_status("nope") is None

    with pytest.raises(BackendError, match="no permissions"):
        queue.enqueue_job("send_release_email", RELEASE)  # EVALSHA/EVAL: writes
    refused = [("FLUSHDB",), ("FLUSHALL",), ("CONFIG", "GET", "*"), ("KEYS", "*"),
               ("SCRIPT", "FLUSH"), ("ACL", "LIST"), ("ACL", "SETUSER", "evil", "on")]  # fmt: skip
    for command in refused:
        with pytest.raises(redis.exceptions.NoPermissionError):
            user.execute_command(*command)
    inside = queue.keys.timeline
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.zadd(inside, {"x": 1})  # read-only keys, even inside the namespace
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.get("{another-namespace}:timeline")
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.evalsha(scripts.STATS.sha, 2, queue.keys.timeline, queue.keys.dead, 0, 10)
    outside = "return redis.call('GET', KEYS[1])"
    with pytest.raises(redis.exceptions.NoPermissionError):
        user.eval_ro(outside, 1, "{another-namespace}:job:1")
    # A read-only script that tries to write is refused by the server itself.
    with pytest.raises(redis.exceptions.ResponseError):
        user.eval_ro("return redis.call('SET', KEYS[1], 'x')", 1, inside)
    user.close()
