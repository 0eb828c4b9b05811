"""The Lambda's drain path: schedule, kick and fan-out events, metrics, fan-out decisions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from jobs_core import BackendError, ClaimHint, Job, JobQueue, Kicker
from jobs_core.processor.kick import FANOUT_SOURCE
from operator_api import events, wiring

from functions.job_processor import app

from .support import AUDIT, FakeContext, RecordingLambda, enqueue, load_event, payload

FAST = {
    "JOB_PROCESSOR_JOB_TIMEOUT_S": "0.2",
    "JOB_PROCESSOR_SAFETY_MARGIN_S": "0.1",
    "JOB_PROCESSOR_IDLE_EXIT_S": "0",
    "JOB_PROCESSOR_BATCH_SIZE": "4",
    "JOB_PROCESSOR_CONCURRENCY": "2",
    "JOB_PROCESSOR_MAX_FANOUT": "3",
    "AWS_LAMBDA_FUNCTION_NAME": "escrow-jobs-processor",
}


def services(queue: JobQueue, handler: Any, client: RecordingLambda, **env: str) -> wiring.Services:
    return wiring.build_services(
        {**FAST, **env}, handlers={AUDIT: handler}, queue=queue, lambda_client=client
    )


def metric_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if '"_aws"' in x]


@pytest.mark.parametrize("event", ["scheduled", "kick"])
def test_schedule_and_kick_drain_the_queue_and_publish_metrics(
    queue: JobQueue, event: str, capsys: pytest.CaptureFixture[str]
) -> None:
    enqueue(queue, 9)
    client = RecordingLambda()
    answer = events.handle(
        load_event(event), FakeContext(30), services(queue, lambda job: None, client)
    )  # type: ignore[arg-type]

    assert answer["status"] == "ok" and answer["succeeded"] == 9
    assert answer["stopReason"] == "idle" and answer["fanOut"] == 0
    assert client.calls == []
    totals = metric_lines(capsys)[0]
    assert totals["JobsSucceeded"] in (9, [9.0], 9.0)


def test_a_kicks_hints_go_with_the_drains_first_claim(
    queue: JobQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The event the API's kick sends, hints and all, reaches the first claim."""
    result = queue.enqueue_batch([(AUDIT, payload(AUDIT), None)] * 2, read_marker=True)
    kicked = RecordingLambda()
    assert Kicker("escrow-jobs-processor", client=kicked).kick(result)
    [event] = kicked.events()
    sent: list[tuple[ClaimHint, ...]] = []
    claim_batch = queue.claim_batch

    def spy(*args: Any, **kwargs: Any) -> Any:
        sent.append(tuple(kwargs.get("hints", ())))
        return claim_batch(*args, **kwargs)

    monkeypatch.setattr(queue, "claim_batch", spy)
    answer = events.handle(event, FakeContext(30), services(queue, lambda job: None, kicked))  # type: ignore[arg-type]

    assert answer["succeeded"] == 2
    assert [h.member for h in sent[0]] == [f"{AUDIT.value}|{i}" for i in result.ids]
    assert all(hints == () for hints in sent[1:])


def test_a_kick_with_malformed_hints_still_drains(queue: JobQueue) -> None:
    enqueue(queue, 2)
    event = {**load_event("kick"), "hints": [{"member": "x", "score": "1", "record": "{}"}]}
    answer = events.handle(
        event, FakeContext(30), services(queue, lambda job: None, RecordingLambda())
    )  # type: ignore[arg-type]
    assert answer["succeeded"] == 2


def test_a_backlog_left_at_the_end_of_the_budget_fans_out(queue: JobQueue) -> None:
    enqueue(queue, 300)

    def slow(job: Job) -> None:
        time.sleep(0.02)

    client = RecordingLambda()
    answer = events.handle(load_event("scheduled"), FakeContext(0.6), services(queue, slow, client))  # type: ignore[arg-type]

    assert answer["stopReason"] == "budget" and answer["backlog"] > 0
    assert 1 <= answer["fanOut"] <= 3 and len(client.calls) == answer["fanOut"]
    assert {c["FunctionName"] for c in client.calls} == {"escrow-jobs-processor"}
    assert {c["InvocationType"] for c in client.calls} == {"Event"}
    assert client.events()[0] == {"source": FANOUT_SOURCE, "generation": 1}


def test_a_fanned_out_processor_never_fans_out_again(queue: JobQueue) -> None:
    enqueue(queue, 300)

    def slow(job: Job) -> None:
        time.sleep(0.02)

    client = RecordingLambda()
    answer = events.handle(load_event("fanout"), FakeContext(0.6), services(queue, slow, client))  # type: ignore[arg-type]
    assert answer["stopReason"] == "budget" and answer["fanOut"] == 0 and client.calls == []


def test_fan_out_off_when_max_is_zero(queue: JobQueue) -> None:
    enqueue(queue, 300)
    client = RecordingLambda()
    svc = services(queue, lambda job: time.sleep(0.02), client, JOB_PROCESSOR_MAX_FANOUT="0")
    answer = events.handle(load_event("scheduled"), FakeContext(0.6), svc)  # type: ignore[arg-type]
    assert answer["fanOut"] == 0 and client.calls == []


def test_a_backend_failure_publishes_metrics_then_fails_the_invocation(
    queue: JobQueue, capsys: pytest.CaptureFixture[str]
) -> None:
    class Down:
        def evalsha(self, *args: Any) -> Any:
            raise BackendError("redis", "unreachable", transient=False)

        eval = evalsha_ro = eval_ro = evalsha

    broken = JobQueue(Down(), queue.settings)  # type: ignore[arg-type]
    svc = services(broken, lambda job: None, RecordingLambda())
    with pytest.raises(BackendError):
        events.handle(load_event("scheduled"), FakeContext(5), svc)  # type: ignore[arg-type]
    [totals] = metric_lines(capsys)
    assert "JobsProcessed" in totals


def test_lambda_handler_builds_services_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, queue: JobQueue
) -> None:
    """The real wiring with the default (embedded) queue; the registry is the test's."""
    monkeypatch.setattr(wiring, "default_handlers", lambda env: {AUDIT: lambda job: None})
    monkeypatch.setenv("JOBS_NAMESPACE", queue.settings.namespace)
    monkeypatch.setenv("JOB_PROCESSOR_IDLE_EXIT_S", "0")
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    wiring.services.cache_clear()
    try:
        enqueue(queue, 2)
        answer = app.lambda_handler(load_event("scheduled"), FakeContext(30))  # type: ignore[arg-type]
    finally:
        wiring.services.cache_clear()
    assert answer["succeeded"] == 2
