"""The monitor as deployed: its own cached factory, a real Redis, Upstash REST, Secrets Manager.

The queue is seeded with a clock set 100 s in the past, so the oldest ready job is
100 s old plus however long the test took to reach the handler: every count is exact
and the age is bounded below exactly.
"""

from __future__ import annotations

import time

import boto3
import pytest
from jobs_core import BackendError, JobQueue, ManualClock, RedisBackend, Settings

from functions.monitor import app
from tests.support.redis_server import free_port
from tests.support.upstash_server import UpstashServer
from tests.unit.monitor.emf import EmfMetric, log_lines, parse_emf
from tests.unit.monitor.known_state import AGE_S, KnownState, expected_metrics, seed
from tests.unit.monitor.lambda_support import FakeLambdaContext

EVENT = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
AGE_SLACK_S = 60.0  # generous: the bound only rules out a wrong clock, not a slow machine


def seed_over_tcp(redis_url: str, namespace: str) -> KnownState:
    """Seed the test's namespace directly over TCP, as if 100 s ago."""
    clock = ManualClock(start_ms=time.time_ns() // 1_000_000 - int(AGE_S * 1000))
    settings = Settings(backend="redis", redis_url=redis_url, namespace=namespace)
    return seed(JobQueue.from_settings(settings, clock=clock), clock)


def check_known_state(metrics: list[EmfMetric], state: KnownState, namespace: str) -> None:
    """Every metric exact, except the age: within [100 s, 100 s + slack)."""
    expected = expected_metrics(state, queue=namespace)
    ages = [m for m in metrics if m.name == "OldestReadyJobAge"]
    assert len(ages) == 1
    assert AGE_S <= ages[0].values[0] < AGE_S + AGE_SLACK_S
    others = {(m.name, m.unit, m.dimensions, m.values[0]) for m in metrics if m not in ages}
    assert others == {e for e in expected if e[0] != "OldestReadyJobAge"}
    assert all(m.namespace == "EscrowJobs" for m in metrics)
    assert len(metrics) == len(expected)


def test_real_redis_through_the_real_factory(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    redis_url: str,
    monitor_env: str,
    lambda_context: FakeLambdaContext,
) -> None:
    state = seed_over_tcp(redis_url, monitor_env)
    monkeypatch.setenv("REDIS_URL", redis_url)

    answer = app.lambda_handler(EVENT, lambda_context)

    check_known_state(parse_emf(capsys.readouterr().out), state, monitor_env)
    assert app.get_queue().backend.name == "redis"
    assert answer["ready"] == state.ready


def test_upstash_token_read_from_secrets_manager_and_one_request_per_run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    upstash_server: UpstashServer,
    monitor_env: str,
    lambda_context: FakeLambdaContext,
    aws: None,
) -> None:
    """As in AWS: only the URL and the secret's name in the environment."""
    upstash_server.reset()
    secret_name = f"{monitor_env}/upstash-redis-rest-token"
    boto3.client("secretsmanager").create_secret(
        Name=secret_name, SecretString=upstash_server.token
    )
    state = seed_over_tcp(upstash_server.redis_url, monitor_env)
    monkeypatch.setenv("JOBS_BACKEND", "upstash")
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", upstash_server.url)
    monkeypatch.setenv("UPSTASH_TOKEN_PARAM", secret_name)

    app.lambda_handler(EVENT, lambda_context)  # the first run may load the script (EVAL)
    capsys.readouterr()
    before = upstash_server.request_count
    app.lambda_handler(EVENT, lambda_context)

    assert upstash_server.request_count - before == 1  # one Redis round trip per run
    check_known_state(parse_emf(capsys.readouterr().out), state, monitor_env)
    assert app.get_queue().backend.name == "upstash"


def test_a_wrong_token_is_a_redis_error_and_a_rotated_one_is_picked_up(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    upstash_server: UpstashServer,
    monitor_env: str,
    lambda_context: FakeLambdaContext,
    aws: None,
) -> None:
    upstash_server.reset()
    secret_name = f"{monitor_env}/upstash-redis-rest-token"
    boto3.client("secretsmanager").create_secret(Name=secret_name, SecretString="not-the-token")
    monkeypatch.setenv("UPSTASH_REDIS_REST_URL", upstash_server.url)
    monkeypatch.setenv("UPSTASH_TOKEN_PARAM", secret_name)

    with pytest.raises(BackendError):
        app.lambda_handler(EVENT, lambda_context)

    out = capsys.readouterr().out
    totals = (("queue", monitor_env), ("service", "queue-monitor"))
    assert {(m.name, m.unit, m.dimensions, m.values) for m in parse_emf(out)} == {
        ("MonitorRedisErrors", "Count", totals, (1.0,))
    }
    [error] = [line for line in log_lines(out) if line["level"] == "ERROR"]
    assert error["backend"] == "upstash"
    assert "not-the-token" not in out  # the secret never reaches the log

    # The token is rotated to the right one: the next run reads it again and succeeds.
    boto3.client("secretsmanager").put_secret_value(
        SecretId=secret_name, SecretString=upstash_server.token
    )
    answer = app.lambda_handler(EVENT, lambda_context)
    assert answer["ready"] == 0
    assert {m.name for m in parse_emf(capsys.readouterr().out)} >= {"QueueDepth"}


def test_redis_down_is_a_metric_an_error_log_and_a_failed_invocation(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    monitor_env: str,
    lambda_context: FakeLambdaContext,
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nobody listens

    with pytest.raises(BackendError) as raised:
        app.lambda_handler(EVENT, lambda_context)

    assert raised.value.transient
    out = capsys.readouterr().out
    totals = (("queue", monitor_env), ("service", "queue-monitor"))
    assert {(m.name, m.unit, m.dimensions, m.values) for m in parse_emf(out)} == {
        ("MonitorRedisErrors", "Count", totals, (1.0,))
    }
    [error] = [line for line in log_lines(out) if line["level"] == "ERROR"]
    assert error["message"] == "queue stats unavailable"
    assert error["backend"] == "redis"
    assert isinstance(app.get_queue().backend, RedisBackend)
