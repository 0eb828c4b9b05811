"""The monitor handler on the embedded Redis: the EMF it prints, read back and checked."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jobs_core.queue.operations
import pytest
from jobs_core import (
    BackendError,
    ConfigurationError,
    JobQueue,
    JobType,
    ManualClock,
    Settings,
    memory_backend,
)
from queue_monitor import metrics

from functions.monitor import app
from tests.unit.monitor.emf import EmfMetric, log_lines, parse_emf
from tests.unit.monitor.known_state import KnownState, expected_metrics, seed
from tests.unit.monitor.lambda_support import FakeLambdaContext

ROOT = Path(__file__).resolve().parents[3]


def observed(metrics: list[EmfMetric]) -> set[tuple[str, str, tuple[tuple[str, str], ...], float]]:
    """(name, unit, dims, value) of each metric; each must carry exactly one value."""
    assert all(m.namespace == "EscrowJobs" for m in metrics)
    assert all(len(m.values) == 1 for m in metrics)
    return {(m.name, m.unit, m.dimensions, m.values[0]) for m in metrics}


class DownBackend:
    """A backend whose Redis is unreachable: every call fails as the real ones do."""

    name = "upstash"

    def evalsha(self, sha: str, keys: Sequence[str], args: Sequence[object]) -> Any:
        raise BackendError("upstash", "unreachable: ConnectError('refused')", transient=True)

    eval = evalsha_ro = eval_ro = evalsha

    def close(self) -> None:
        pass


def test_known_queue_every_metric_name_unit_dimension_and_value(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    known_queue: tuple[JobQueue, KnownState],
    scheduled_event: dict[str, Any],
    lambda_context: FakeLambdaContext,
    namespace: str,
) -> None:
    queue, state = known_queue
    monkeypatch.setattr(app, "get_queue", cache(lambda: queue))

    answer = app.lambda_handler(scheduled_event, lambda_context)

    metrics = parse_emf(capsys.readouterr().out)
    assert observed(metrics) == expected_metrics(state, queue=namespace)
    assert len(metrics) == 7 + len(JobType)  # nothing published twice
    assert answer["ready"] == 5
    assert answer["scheduled"] == 1
    assert answer["running"] == 1
    assert answer["deadLetter"] == 1
    assert answer["oldestReadyAgeS"] == 100.0
    assert answer["readyByType"]["send_release_email"] == 3
    assert answer["truncated"] is False
    json.dumps(answer)  # a Lambda answer must serialise


def test_empty_queue_publishes_zeros_for_every_type(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lambda_context: FakeLambdaContext,
    namespace: str,
) -> None:
    queue = JobQueue(memory_backend(), Settings(namespace=namespace), clock=ManualClock())
    monkeypatch.setattr(app, "get_queue", cache(lambda: queue))

    app.lambda_handler({}, lambda_context)

    empty = KnownState({t: 0 for t in JobType}, 0, 0, 0, 0.0)
    assert observed(parse_emf(capsys.readouterr().out)) == expected_metrics(empty, queue=namespace)


def test_redis_failure_is_a_metric_and_an_error_log_and_the_invocation_fails(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lambda_context: FakeLambdaContext,
    namespace: str,
) -> None:
    queue = JobQueue(DownBackend(), Settings(namespace=namespace, request_retries=0))
    builds: list[JobQueue] = []

    def build() -> JobQueue:
        builds.append(queue)
        return queue

    monkeypatch.setattr(app, "get_queue", cache(build))

    with pytest.raises(BackendError):
        app.lambda_handler({}, lambda_context)

    app.get_queue()
    assert len(builds) == 2  # the failed run dropped the cached queue: the next one rebuilds

    out = capsys.readouterr().out
    totals = (("queue", namespace), ("service", "queue-monitor"))
    assert observed(parse_emf(out)) == {("MonitorRedisErrors", "Count", totals, 1.0)}
    [error] = [line for line in log_lines(out) if line["level"] == "ERROR"]
    assert error["message"] == "queue stats unavailable"
    assert error["backend"] == "upstash"
    assert error["transient"] is True
    assert "ConnectError" in error["exception"]
    assert error["function_request_id"] == lambda_context.aws_request_id


def test_truncated_scan_is_flagged_in_the_metrics_and_the_log(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lambda_context: FakeLambdaContext,
    namespace: str,
) -> None:
    clock = ManualClock()
    queue = JobQueue(memory_backend(), Settings(namespace=namespace), clock=clock)
    seed(queue, clock)  # 8 timeline entries
    monkeypatch.setattr(jobs_core.queue.operations, "STATS_SCAN_CAP", 3)
    monkeypatch.setattr(app, "get_queue", cache(lambda: queue))

    answer = app.lambda_handler({}, lambda_context)

    out = capsys.readouterr().out
    blobs = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    assert blobs[0]["stats_truncated"] is True
    assert all("stats_truncated" not in b for b in blobs[1:])
    assert answer["truncated"] is True
    assert any(line["level"] == "WARNING" for line in log_lines(out))


def test_the_docstring_documents_exactly_what_is_published(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    known_queue: tuple[JobQueue, KnownState],
    lambda_context: FakeLambdaContext,
) -> None:
    queue, _ = known_queue
    monkeypatch.setattr(app, "get_queue", cache(lambda: queue))
    app.lambda_handler({}, lambda_context)
    published = {(m.name, m.unit, frozenset(m.dims)) for m in parse_emf(capsys.readouterr().out)}

    row = re.compile(r"^``(\w+)``\s+(\w+)\s+([\w, ]+?)\s{2,}", re.MULTILINE)
    documented = {
        (name, unit, frozenset(d.strip() for d in dims.split(",")))
        for name, unit, dims in row.findall(metrics.__doc__ or "")
    }
    assert documented == published


def test_get_queue_builds_once_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBS_BACKEND", "memory")
    monkeypatch.setenv("JOBS_NAMESPACE", "from-env")

    queue = app.get_queue()

    assert queue.settings.namespace == "from-env"
    assert queue.backend.name == "memory"
    assert app.get_queue() is queue


def test_no_redis_in_lambda_is_a_configuration_error_not_a_redis_metric(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    lambda_context: FakeLambdaContext,
) -> None:
    for name in ("JOBS_BACKEND", "REDIS_URL", "UPSTASH_REDIS_REST_URL", "KV_REST_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "escrow-jobs-test-monitor")

    with pytest.raises(ConfigurationError):
        app.lambda_handler({}, lambda_context)

    assert parse_emf(capsys.readouterr().out) == []


def test_importing_the_module_builds_and_reads_nothing() -> None:
    """Settings that would fail if anything were built at import time: import succeeds."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_FUNCTION_NAME": "escrow-jobs-test-monitor",
        "JOBS_BACKEND": "upstash",  # no URL, no token: Settings.from_env() would raise
        "UPSTASH_TOKEN_PARAM": "no/such/secret",  # and no AWS credentials to fetch it
    }
    done = subprocess.run(
        [sys.executable, "-c", "import app"],
        cwd=ROOT / "functions" / "monitor",  # the task root, as Lambda imports it
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
