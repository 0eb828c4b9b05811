"""Processor unit tests: the embedded Redis (fakeredis), one fresh namespace per test."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from jobs_core import JobQueue, Settings, memory_backend


@pytest.fixture
def queue() -> JobQueue:
    return JobQueue(memory_backend(), Settings(namespace=f"t-{secrets.token_hex(6)}"))


@pytest.fixture
def release() -> Iterator[list[object]]:
    """Events that hanging handlers wait on; all set when the test ends."""
    events: list[object] = []
    yield events
    for event in events:
        event.set()  # type: ignore[attr-defined]
