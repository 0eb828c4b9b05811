"""Fixtures of the monitor's unit tests: a fake Lambda context, a queue in a known state."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobs_core import JobQueue, ManualClock, Settings, memory_backend

from functions.monitor import app
from tests.unit.monitor.known_state import KnownState, seed
from tests.unit.monitor.lambda_support import CurrentStdout, FakeLambdaContext

EVENTS = Path(__file__).resolve().parents[3] / "events" / "monitor"


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def scheduled_event() -> dict[str, Any]:
    """The sample event that `sam local invoke -e` uses, loaded from events/monitor/."""
    return json.loads((EVENTS / "scheduled.json").read_text())


_QUEUE_FACTORY = app.get_queue  # tests may swap app.get_queue; this stays the real one


@pytest.fixture(autouse=True)
def _metrics_on_and_fresh_factory(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Powertools drops metrics in dev mode; every test builds its own queue; and the
    logger (whose stream was bound at import) writes where ``capsys`` reads, so a test
    sees the JSON log lines exactly as CloudWatch Logs would."""
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setattr(app.logger.registered_handler, "stream", CurrentStdout())
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
