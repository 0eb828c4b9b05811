"""The scheduled outbox sweep through the Lambda handler: side effects that missed Redis
are queued by the next scheduled run, each once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from escrow import api, outbox
from escrow.service import EscrowService
from jobs_core import JobQueue
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

SCHEDULED = json.loads(
    (Path(__file__).parents[3] / "events/escrow_api/scheduled_outbox_sweep.json").read_text()
)


def test_the_scheduled_event_sweeps_what_redis_missed(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
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
    assert app.lambda_handler(SCHEDULED, FakeLambdaContext()) == {
        "swept": False,
        "error": "redis unavailable",
    }  # type: ignore[arg-type]
    assert len(pending(service)) == 9

    # Redis is back.
    monkeypatch.setattr(service, "queue", queue)
    result = app.lambda_handler(SCHEDULED, FakeLambdaContext())  # type: ignore[arg-type]
    assert result == {"swept": True, "found": 9, "enqueued": 9, "invalid": 0}
    assert pending(service) == []
    assert job_counts(queue) == expected_release_jobs([e for e, _ in escrows])
    assert app.lambda_handler(SCHEDULED, FakeLambdaContext())["found"] == 0  # type: ignore[arg-type]
