"""Fixtures of the monitor's unit tests: a fake Lambda context, a queue in a known state."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jobs_core import JobQueue, ManualClock, Settings, memory_backend

from functions.monitor import app
from tests.unit.monitor.known_state import KnownState, seed

EVENTS = Path(__file__).resolve().parents[3] / "events" / "monitor"


@dataclass
class FakeLambdaContext:
    """The attributes Powertools and our handlers read from a Lambda context."""

    function_name: str = "escrow-jobs-test-monitor"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = (
        "arn:aws:lambda:eu-west-1:123456789012:function:escrow-jobs-test-monitor"
    )
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    remaining_ms: int = 15_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def scheduled_event() -> dict[str, Any]:
    """The sample event that `sam local invoke -e` uses, loaded from events/monitor/."""
    return json.loads((EVENTS / "scheduled.json").read_text())


class _CurrentStdout:
    """Writes to whatever ``sys.stdout`` is at write time (capsys swaps it per test)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


_QUEUE_FACTORY = app.get_queue  # tests may swap app.get_queue; this stays the real one


@pytest.fixture(autouse=True)
def _metrics_on_and_fresh_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Powertools drops metrics in dev mode; every test builds its own queue; and the
    logger (whose stream was bound at import) writes where ``capsys`` reads, so a test
    sees the JSON log lines exactly as CloudWatch Logs would."""
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setattr(app.logger.registered_handler, "stream", _CurrentStdout())
    _QUEUE_FACTORY.cache_clear()
    yield
    _QUEUE_FACTORY.cache_clear()


@pytest.fixture
def namespace() -> str:
    """A queue namespace of this test only (the embedded Redis is shared per process)."""
    return f"monitor-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def known_queue(namespace: str) -> tuple[JobQueue, KnownState]:
    clock = ManualClock()
    queue = JobQueue(memory_backend(), Settings(namespace=namespace), clock=clock)
    return queue, seed(queue, clock)
