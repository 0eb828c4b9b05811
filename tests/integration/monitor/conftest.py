"""Fixtures of the monitor's integration tests: the real factory, real Redis, moto."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from aws_lambda_powertools.utilities.parameters import base as parameters_base

from functions.monitor import app
from tests.unit.monitor.lambda_support import CurrentStdout, FakeLambdaContext

_QUEUE_FACTORY = app.get_queue

# Variables that would pick another backend or Redis than the one a test names.
_REDIS_VARIABLES = (
    "JOBS_BACKEND",
    "REDIS_URL",
    "UPSTASH_REDIS_REST_URL",
    "UPSTASH_REDIS_REST_TOKEN",
    "UPSTASH_TOKEN_PARAM",
    "KV_REST_API_URL",
    "KV_REST_API_TOKEN",
    "AWS_LAMBDA_FUNCTION_NAME",
)


@pytest.fixture(autouse=True)
def monitor_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean environment with a queue namespace of this test; yields the namespace.

    The handler then runs its real cached factory: tests set the variables they need.
    """
    for name in _REDIS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    namespace = f"monitor-it-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("JOBS_NAMESPACE", namespace)
    monkeypatch.setenv("JOBS_REDIS_TIMEOUT_S", "2")
    monkeypatch.setattr(app.logger.registered_handler, "stream", CurrentStdout())
    # Powertools keeps its parameter providers (and their boto3 clients) per process.
    monkeypatch.setattr(parameters_base, "DEFAULT_PROVIDERS", {})
    _QUEUE_FACTORY.cache_clear()
    yield namespace
    _QUEUE_FACTORY.cache_clear()


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process for every AWS call, with credentials that cannot reach AWS."""
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        yield
