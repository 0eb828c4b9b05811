"""The operator endpoint through HTTP API v2 events (the files in events/job_processor/)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jobs_core import Job, JobQueue, JobState, JobType, PermanentJobError
from operator_api import events, wiring

from .support import AUDIT, TOKEN, FakeContext, RecordingLambda, enqueue, load_event

Handlers = dict[JobType, Any]


def services(queue: JobQueue, handlers: Handlers | None = None, **env: str) -> wiring.Services:
    environ = {"JOB_PROCESSOR_SECRET_TOKEN": TOKEN, **env}
    return wiring.build_services(
        environ,
        handlers=handlers if handlers is not None else {AUDIT: lambda job: None},
        queue=queue,
        lambda_client=RecordingLambda(),
    )


def call(svc: wiring.Services, event: str | dict[str, Any]) -> tuple[int, dict[str, Any]]:
    raw = load_event(event) if isinstance(event, str) else event
    response = events.handle(raw, FakeContext(60), svc)  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])


def with_body(name: str, body: dict[str, Any]) -> dict[str, Any]:
    event = load_event(name)
    event["body"] = json.dumps(body)
    return event


@pytest.mark.parametrize(
    "event",
    [
        "get_stats_no_token",
        "get_stats_wrong_token",
        "get_stats_basic_scheme",
        "process_batch_no_token",
        "process_batch_wrong_token",
    ],
)
def test_missing_or_wrong_token_gets_401_and_nothing_is_done(queue: JobQueue, event: str) -> None:
    ran: list[str] = []
    [job_id] = enqueue(queue, 1)
    svc = services(queue, {AUDIT: lambda job: ran.append(job.id)})

    status, body = call(svc, event)

    assert status == 401 and body == {"error": "a valid bearer token is required"}
    assert ran == []
    job = queue.get_job_status(job_id)
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 0


def test_401_carries_a_bearer_challenge(queue: JobQueue) -> None:
    response = events.handle(
        load_event("get_stats_no_token"),
        FakeContext(),  # type: ignore[arg-type]
        services(queue),
    )
    assert response["headers"]["WWW-Authenticate"] == "Bearer"


def test_no_configured_token_refuses_everyone(queue: JobQueue) -> None:
    svc = wiring.build_services({}, handlers={}, queue=queue)
    status, _ = call(svc, "get_stats")
    assert status == 401


def test_a_bad_body_is_refused_before_anything_runs_even_with_a_good_token(
    queue: JobQueue,
) -> None:
    ran: list[str] = []
    enqueue(queue, 1)
    svc = services(queue, {AUDIT: lambda job: ran.append(job.id)})
    assert call(svc, "process_batch_bad_limit")[0] == 400
    assert ran == [] and queue.get_queue_stats().ready == 1


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ("process_batch_bad_limit", "limit"),
        ("process_batch_bad_type", "types.0"),
        ("process_batch_unknown_field", "limti"),
        ("bad_json", "body"),
        ("unknown_action", "action"),
        ("missing_action", "action"),
        ("replay_dead_letter_both", "all"),
    ],
)
def test_bad_body_gets_400_with_the_field_at_fault(queue: JobQueue, event: str, field: str) -> None:
    status, body = call(services(queue), event)
    assert status == 400
    assert body["field"] == field
    assert body["error"].startswith(field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "replay-dead-letter"}, "all"),
        ({"action": "purge-dead-letter", "ids": []}, "ids"),
        ({"action": "purge-dead-letter", "ids": ["bad id!"]}, "ids.0"),
        ({"action": "process-batch", "limit": "ten"}, "limit"),
        ({"action": "process-batch", "limit": 101}, "limit"),
    ],
)
def test_more_bad_bodies(queue: JobQueue, body: dict[str, Any], field: str) -> None:
    status, answer = call(services(queue), with_body("process_batch", body))
    assert (status, answer["field"]) == (400, field)


def test_a_json_array_body_is_refused(queue: JobQueue) -> None:
    status, body = call(services(queue), with_body("process_batch", [1, 2]))  # type: ignore[arg-type]
    assert (status, body["field"]) == (400, "body")


def test_get_stats_response_shape(queue: JobQueue) -> None:
    enqueue(queue, 3)
    [dead_id] = enqueue(queue, 1, JobType.SEND_RELEASE_EMAIL)

    def fail(job: Job) -> None:
        raise PermanentJobError("mailbox full for seller@example.com")

    svc = services(queue, {AUDIT: lambda job: None, JobType.SEND_RELEASE_EMAIL: fail})
    svc.processor.process_batch([JobType.SEND_RELEASE_EMAIL])

    status, body = call(svc, "get_stats")

    assert status == 200
    assert set(body) == {
        "stats", "deadLetterCount", "deadLetterSample", "oldestReadyAgeS", "overview",
        "disabledEndpoints",
    }  # fmt: skip
    assert body["overview"]["types"]["audit_log_created"]["ready"] == 3
    assert body["overview"]["types"]["audit_log_created"]["paused"] is False
    assert body["disabledEndpoints"] == []
    assert set(body["stats"]) == {t.value for t in JobType} | {"dead_letter"}
    assert body["stats"]["audit_log_created"] == {"ready": 3, "scheduled": 0, "running": 0}
    assert body["stats"]["dead_letter"] == 1 and body["deadLetterCount"] == 1
    [sample] = body["deadLetterSample"]
    assert sample["id"] == dead_id and sample["type"] == "send_release_email"
    assert sample["transactionId"] == "esc-0"
    assert "mailbox full" in sample["lastError"]
    assert "payload" not in sample  # payloads hold email addresses


def test_process_batch_runs_jobs_and_reports_them(queue: JobQueue) -> None:
    ids = enqueue(queue, 12)
    status, body = call(services(queue), "process_batch")
    assert status == 200
    assert body["action"] == "process-batch"
    assert body["processed"] == 10 and body["succeeded"] == 10  # the event's limit
    assert len(body["jobs"]) == 10 and {j["id"] for j in body["jobs"]} <= set(ids)
    assert all(j["outcome"] == "succeeded" for j in body["jobs"])


def test_process_batch_with_types(queue: JobQueue) -> None:
    enqueue(queue, 2, JobType.SEND_RELEASE_EMAIL)
    enqueue(queue, 7, AUDIT)
    status, body = call(services(queue), "process_batch_types")
    assert status == 200 and body["processed"] == 5
    assert {j["type"] for j in body["jobs"]} == {"audit_log_created"}


def _dead_letter(queue: JobQueue, count: int) -> list[str]:
    ids = enqueue(queue, count)

    def fail(job: Job) -> None:
        raise PermanentJobError("no")

    services(queue, {AUDIT: fail}).processor.process_batch(limit=count)
    return ids


def test_replay_dead_letter_by_ids_and_all(queue: JobQueue) -> None:
    ids = _dead_letter(queue, 3)
    svc = services(queue)

    status, body = call(
        svc, with_body("replay_dead_letter_ids", {"action": "replay-dead-letter", "ids": ids[:1]})
    )
    assert (status, body) == (200, {"action": "replay-dead-letter", "replayed": 1, "ids": ids[:1]})
    status, body = call(svc, "replay_dead_letter_all")
    assert status == 200 and sorted(body["ids"]) == sorted(ids[1:])
    assert queue.get_queue_stats().dead_letter == 0 and queue.get_queue_stats().ready == 3


def test_purge_dead_letter_by_ids_and_all(queue: JobQueue) -> None:
    ids = _dead_letter(queue, 3)
    svc = services(queue)
    status, body = call(
        svc, with_body("purge_dead_letter_ids", {"action": "purge-dead-letter", "ids": ids[:2]})
    )
    assert (status, body) == (200, {"action": "purge-dead-letter", "purged": 2})
    assert call(svc, "purge_dead_letter_all") == (200, {"action": "purge-dead-letter", "purged": 1})
    assert queue.get_queue_stats().dead_letter == 0


def test_token_store_failure_is_503_not_401(queue: JobQueue) -> None:
    def broken(name: str) -> str:
        raise RuntimeError("throttled")

    svc = wiring.build_services(
        {"JOB_PROCESSOR_TOKEN_PARAM": "/escrow/processor-token"},
        handlers={},
        queue=queue,
        fetch=broken,
    )
    status, body = call(svc, "get_stats")
    assert status == 503 and "token" in body["error"]


def test_the_param_token_wins_over_the_local_one(queue: JobQueue) -> None:
    svc = wiring.build_services(
        {"JOB_PROCESSOR_TOKEN_PARAM": "escrow/processor", "JOB_PROCESSOR_SECRET_TOKEN": "old"},
        handlers={},
        queue=queue,
        fetch=lambda name: TOKEN + "\n",
    )
    assert call(svc, "get_stats")[0] == 200
    wrong = load_event("get_stats")
    wrong["headers"]["authorization"] = "Bearer old"
    assert call(svc, wrong)[0] == 401


def test_unknown_event_shape_is_ignored(queue: JobQueue) -> None:
    result = events.handle({"hello": "world"}, FakeContext(), services(queue))  # type: ignore[arg-type]
    assert result["status"] == "ignored"
    assert queue.get_queue_stats().ready == 0


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        ("scheduled", "schedule"),
        ("kick", "kick"),
        ("fanout", "fanout"),
        ("get_stats", "http"),
        ("process_batch", "http"),
    ],
)
def test_event_kinds(event: str, kind: str) -> None:
    assert events.event_kind(load_event(event)) == kind


def test_enable_partner_releases_the_held_webhooks(queue: JobQueue) -> None:
    """A 410 disabled partner-a (held, not dead); the operator re-enables it over the API."""
    from jobs_core import EndpointGoneError

    gone = True

    def webhook(job: Job) -> None:
        if gone:
            raise EndpointGoneError("webhook to https://partner.example/h: HTTP 410")

    hook = JobType.WEBHOOK_ESCROW_STATUS_CHANGED
    payload = {
        "transactionId": "esc-1",
        "status": "funded",
        "escrowVersion": 2,
        "webhookUrl": "https://partner.example/h",
        "webhookSecretRef": "partner-a",
    }
    job_id = queue.enqueue_job(hook, payload)
    svc = services(queue, {hook: webhook})
    svc.processor.process_batch()
    status, body = call(svc, "get_stats")
    assert status == 200 and body["deadLetterCount"] == 0
    [disabled] = body["disabledEndpoints"]
    assert (disabled["partner"], disabled["held"]) == ("partner-a", 1)

    status, body = call(svc, with_body("process_batch", {"action": "enable-partner"}))
    assert (status, body["field"]) == (400, "partner")
    gone = False
    request = {"action": "enable-partner", "partner": "partner-a"}
    status, body = call(svc, with_body("process_batch", request))
    assert (status, body) == (200, {**request, "released": 1})
    assert svc.processor.process_batch().tally.succeeded == 1
    job = queue.get_job_status(job_id)
    assert job is not None and job.state is JobState.SUCCEEDED and job.attempts == 2
