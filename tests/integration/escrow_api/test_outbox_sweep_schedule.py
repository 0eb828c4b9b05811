"""The scheduled outbox sweep through the Lambda handler: side effects that missed Redis
are queued by the next scheduled run, each once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from escrow import api, outbox
from escrow.service import EscrowService
from jobs_core import JobQueue, ManualClock
from local_stack.stripe_server import StripeServer

from functions.escrow_api import app
from tests.integration.escrow_api.harness import (
    FakeLambdaContext,
    invoke,
    job_counts,
    release_event,
    seed_funded,
)
from tests.integration.escrow_api.test_outbox import (
    expected_release_jobs,
    pending,
    unreachable_queue,
)
from tests.unit.monitor.emf import parse_emf

SCHEDULED = json.loads(
    (Path(__file__).parents[3] / "events/escrow_api/scheduled_outbox_sweep.json").read_text()
)


def test_the_scheduled_event_sweeps_what_redis_missed(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    escrows = seed_funded(service, stripe_api, 3)
    down, _ = unreachable_queue(queue)
    monkeypatch.setattr(service, "queue", down)
    for escrow_id, _ in escrows:
        assert invoke(release_event(escrow_id)).status == 200
    assert len(pending(service)) == 9
    # The entries are old enough to belong to no live request (the sweep waits 30 s).
    monkeypatch.setattr(
        api, "sweep_outbox", lambda store, q: outbox.sweep_outbox(store, q, min_age_s=0.0)
    )

    # Still down: the scheduled run says so and leaves every entry in place.
    capsys.readouterr()
    result = app.lambda_handler(SCHEDULED, FakeLambdaContext())  # type: ignore[arg-type]
    assert result.pop("oldestAgeS") < 60
    assert result == {"swept": False, "error": "redis unavailable", "backlog": 9}
    assert len(pending(service)) == 9
    [waiting] = outbox_metrics(capsys.readouterr().out)
    assert waiting["OutboxBacklog"] == 9 and 0 <= waiting["OutboxOldestEntryAge"] < 60

    # Redis is back.
    monkeypatch.setattr(service, "queue", queue)
    result = app.lambda_handler(SCHEDULED, FakeLambdaContext())  # type: ignore[arg-type]
    assert result == {"swept": True, "found": 9, "enqueued": 9, "invalid": 0, "backlog": 0,
                      "oldestAgeS": 0.0}  # fmt: skip
    assert outbox_metrics(capsys.readouterr().out) == [
        {"OutboxBacklog": 0, "OutboxOldestEntryAge": 0}
    ]
    assert pending(service) == []
    assert job_counts(queue) == expected_release_jobs([e for e, _ in escrows])
    assert app.lambda_handler(SCHEDULED, FakeLambdaContext())["found"] == 0  # type: ignore[arg-type]


def outbox_metrics(out: str) -> list[dict[str, float]]:
    """The values of each EMF line of the escrow API's outbox metrics on stdout."""
    lines = []
    for metric in parse_emf(out):
        if metric.dimensions == (("queue", "escrow-api-tests"), ("service", "escrow-api")):
            lines.append(metric)
    by_line: dict[str, float] = {m.name: m.values[0] for m in lines}
    assert all(m.unit == ("Seconds" if "Age" in m.name else "Count") for m in lines)
    return [by_line] if by_line else []


def test_an_entry_waiting_for_minutes_shows_its_age(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Redis down for 7 minutes: the metric the alarm reads says 420 s (the clock moved)."""
    [(escrow_id, _)] = seed_funded(service, stripe_api, 1)
    down, _ = unreachable_queue(queue)
    monkeypatch.setattr(service, "queue", down)
    assert invoke(release_event(escrow_id)).status == 200
    [oldest] = sorted(e.created_ms for e in pending(service))[:1]
    later = JobQueue(down.backend, down.settings, clock=ManualClock(start_ms=oldest + 420_000))
    monkeypatch.setattr(service, "queue", later)
    capsys.readouterr()

    result = app.lambda_handler(SCHEDULED, FakeLambdaContext())  # type: ignore[arg-type]

    assert (result["swept"], result["backlog"], result["oldestAgeS"]) == (False, 3, 420.0)
    assert outbox_metrics(capsys.readouterr().out) == [
        {"OutboxBacklog": 3, "OutboxOldestEntryAge": 420.0}
    ]
