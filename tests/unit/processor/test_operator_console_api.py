"""The operator API's console routes and actions through HTTP API v2 events: the token
(401), bad parameters (400 naming the field), listings, a job's history, the audited
actions, the chart's CloudWatch query, and the console's static files."""

from __future__ import annotations

import contextlib
import copy
import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest
from jobs_core import (
    Job,
    JobQueue,
    JobState,
    JobType,
    ManualClock,
    PermanentJobError,
    Settings,
    memory_backend,
)
from jobs_core.processor import metrics as processor_metrics
from operator_api import events, history, wiring

from .support import AUDIT, TOKEN, FakeContext, RecordingLambda, enqueue, load_event

EMAIL = JobType.SEND_RELEASE_EMAIL


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(int(datetime.now(UTC).timestamp() * 1000))


@pytest.fixture
def queue(clock: ManualClock) -> JobQueue:
    settings = Settings(namespace=f"t-{secrets.token_hex(6)}")
    return JobQueue(memory_backend(), settings, clock=clock)


class FakeCloudWatch:
    def __init__(self, results: list[dict[str, Any]]) -> None:
        self.results = results
        self.calls: list[dict[str, Any]] = []

    def get_metric_data(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"MetricDataResults": self.results}


def services(
    queue: JobQueue, handlers: dict[JobType, Any] | None = None, cloudwatch: Any = None
) -> wiring.Services:
    return wiring.build_services(
        {"JOB_PROCESSOR_SECRET_TOKEN": TOKEN},
        handlers=handlers if handlers is not None else {AUDIT: lambda job: None},
        queue=queue,
        lambda_client=RecordingLambda(),
        cloudwatch=lambda: cloudwatch,
    )


def request(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
    token: str | None = TOKEN,
    route: str | None = None,
) -> dict[str, Any]:
    event = copy.deepcopy(load_event("get_stats"))
    event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {route or path}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        event["body"] = json.dumps(body)
    if token is None:
        del event["headers"]["authorization"]
    else:
        event["headers"]["authorization"] = f"Bearer {token}"
    return event


def call(svc: wiring.Services, event: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    response = events.handle(event, FakeContext(60), svc)  # type: ignore[arg-type]
    body = response["body"]
    with contextlib.suppress(ValueError):
        body = json.loads(body)
    return response["statusCode"], body, response.get("headers") or {}


def dead_email(queue: JobQueue) -> str:
    [job_id] = enqueue(queue, 1, EMAIL)

    def fail(job: Job) -> None:
        raise PermanentJobError("mailbox of seller@example.com is full")

    services(queue, {EMAIL: fail}).processor.process_batch([EMAIL])
    return job_id


GUARDED = [
    ("GET", "/api/jobs", None, None),
    ("GET", "/api/jobs/some-id", None, "/api/jobs/{jobId}"),
    ("GET", "/api/jobs/audit", None, None),
    ("GET", "/api/jobs/history", None, None),
    ("POST", "/api/jobs/process", {"action": "pause-type", "type": "audit_log_created"}, None),
    ("POST", "/api/jobs/process", {"action": "cancel-job", "id": "x"}, None),
    ("POST", "/api/jobs/process", {"action": "run-job-now", "id": "x"}, None),
    ("POST", "/api/jobs/process", {"action": "resume-type", "type": "audit_log_created"}, None),
]


@pytest.mark.parametrize("token", [None, "wrong-token"])
@pytest.mark.parametrize(("method", "path", "body", "route"), GUARDED)
def test_every_console_route_refuses_a_missing_or_wrong_token(
    queue: JobQueue,
    token: str | None,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    route: str | None,
) -> None:
    enqueue(queue, 1)
    svc = services(queue, cloudwatch=FakeCloudWatch([]))
    status, answer, headers = call(svc, request(method, path, body=body, token=token, route=route))
    assert status == 401 and answer == {"error": "a valid bearer token is required"}
    assert headers.get("WWW-Authenticate") == "Bearer"
    assert queue.audit_log() == [] and not queue.get_queue_stats().paused_types


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"state": "finished"}, "state"),
        ({"type": "nope"}, "type"),
        ({"order": "sideways"}, "order"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"escrowId": 'esc"1'}, "escrowId"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_listing_parameters_are_400_naming_the_field(
    queue: JobQueue, query: dict[str, str], field: str
) -> None:
    status, body, _ = call(services(queue), request("GET", "/api/jobs", query=query))
    assert status == 400 and body["field"] == field and body["error"].startswith(field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "cancel-job"}, "id"),
        ({"action": "cancel-job", "id": "a b"}, "id"),
        ({"action": "pause-type", "type": "nope"}, "type"),
        ({"action": "pause-type", "type": "audit_log_created", "actor": ""}, "actor"),
        ({"action": "run-job-now", "id": "x", "actor": "a\nb"}, "actor"),
        ({"action": "resume-type"}, "type"),
    ],
)
def test_bad_action_bodies_are_400_naming_the_field(
    queue: JobQueue, body: dict[str, Any], field: str
) -> None:
    status, answer, _ = call(services(queue), request("POST", "/api/jobs/process", body=body))
    assert status == 400 and answer["field"] == field
    assert queue.audit_log() == []


def test_list_by_state_type_order_and_page(queue: JobQueue, clock: ManualClock) -> None:
    ids = []
    for _ in range(3):
        ids += enqueue(queue, 1)
        clock.advance(1)
    enqueue(queue, 2, EMAIL)
    svc = services(queue)
    query = {"state": "ready", "type": "audit_log_created", "order": "newest", "limit": "2"}
    status, body, _ = call(svc, request("GET", "/api/jobs", query=query))
    assert status == 200 and body["total"] == 3 and body["complete"] is True
    assert [j["id"] for j in body["jobs"]] == [ids[2], ids[1]]
    assert body["jobs"][0]["transactionId"] == "esc-0" and "payload" not in body["jobs"][0]
    status, body, _ = call(svc, request("GET", "/api/jobs", query={**query, "offset": "2"}))
    assert [j["id"] for j in body["jobs"]] == [ids[0]]


def test_find_by_escrow_and_show_a_job_with_its_attempts_redacted(queue: JobQueue) -> None:
    job_id = dead_email(queue)
    svc = services(queue)
    status, body, _ = call(svc, request("GET", "/api/jobs", query={"escrowId": "esc-0"}))
    assert status == 200 and [j["id"] for j in body["jobs"]] == [job_id]
    assert body["jobs"][0]["state"] == "dead"

    route = "/api/jobs/{jobId}"
    status, job, _ = call(svc, request("GET", f"/api/jobs/{job_id}", route=route))
    assert status == 200 and job["state"] == "dead" and job["piiShown"] is False
    assert "seller@example.com" not in json.dumps(job)
    [attempt] = job["history"]
    assert attempt["kind"] == "dead" and attempt["attempt"] == 1 and attempt["processor"]
    assert attempt["startedAt"] and attempt["at"] and "s***@example.com" in attempt["error"]
    query = {"showPii": "true"}
    status, whole, _ = call(svc, request("GET", f"/api/jobs/{job_id}", query=query, route=route))
    assert whole["piiShown"] is True and "seller@example.com" in json.dumps(whole)
    status, _missing, _ = call(svc, request("GET", "/api/jobs/nope", route=route))
    assert status == 404
    status, bad, _ = call(
        svc, request("GET", f"/api/jobs/{job_id}", query={"showPii": "maybe"}, route=route)
    )
    assert status == 400 and bad["field"] == "showPii"


def test_actions_are_done_and_audited_with_the_actor(queue: JobQueue) -> None:
    dead = dead_email(queue)
    [waiting] = enqueue(queue, 1, delay_s=600)
    svc = services(queue)

    def act(body: dict[str, Any]) -> tuple[int, Any]:
        status, answer, _ = call(svc, request("POST", "/api/jobs/process", body=body))
        return status, answer

    assert act({"action": "pause-type", "type": "send_release_email", "actor": "dana"}) == (
        200,
        {"action": "pause-type", "type": "send_release_email", "changed": True},
    )
    status, replayed = act({"action": "replay-dead-letter", "ids": [dead], "actor": "dana"})
    assert status == 200 and replayed["ids"] == [dead]
    assert act({"action": "run-job-now", "id": waiting, "actor": "dana"})[0] == 200
    assert queue.get_job_status(waiting).state is JobState.QUEUED  # type: ignore[union-attr]
    assert act({"action": "cancel-job", "id": waiting, "actor": "dana"})[0] == 200
    status, conflict = act({"action": "cancel-job", "id": waiting})
    assert status == 409 and conflict["state"] == "cancelled"
    assert act({"action": "run-job-now", "id": "no-such-job"})[0] == 404

    status, log, _ = call(svc, request("GET", "/api/jobs/audit", query={"limit": "10"}))
    assert status == 200
    assert [(e["actor"], e["action"]) for e in log["entries"]] == [
        ("dana", "cancel"),
        ("dana", "run-now"),
        ("dana", "replay"),
        ("dana", "pause"),
    ]
    status, overview, _ = call(svc, request("GET", "/api/jobs/process"))
    assert overview["overview"]["paused"] == ["send_release_email"]
    assert overview["overview"]["types"]["send_release_email"]["ready"] == 1  # waits, counted
    status, bad, _ = call(svc, request("GET", "/api/jobs/audit", query={"limit": "x"}))
    assert status == 400 and bad["field"] == "limit"


def test_history_sums_the_processors_metrics_per_minute_from_cloudwatch(
    queue: JobQueue,
) -> None:
    now = datetime.now(UTC)
    minute = now.replace(second=0, microsecond=0)
    cloudwatch = FakeCloudWatch(
        [
            {"Label": "succeeded", "Timestamps": [minute], "Values": [7.0]},
            {"Label": "deadLettered", "Timestamps": [minute], "Values": [2.0]},
        ]
    )
    svc = services(queue, cloudwatch=cloudwatch)
    status, body, _ = call(svc, request("GET", "/api/jobs/history"))
    assert status == 200 and body["source"] == "cloudwatch" and len(body["points"]) == 60
    assert body["points"][-1]["succeeded"] == 7 and body["points"][-1]["deadLettered"] == 2
    assert body["points"][0]["succeeded"] == 0
    [query] = cloudwatch.calls
    names = {q["MetricStat"]["Metric"]["MetricName"] for q in query["MetricDataQueries"]}
    assert names == {
        processor_metrics.JOBS_PROCESSED,
        processor_metrics.JOBS_SUCCEEDED,
        processor_metrics.JOBS_RETRIED,
        processor_metrics.JOBS_DEAD_LETTERED,
    }
    dims = query["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"]
    assert dims == [
        {"Name": "service", "Value": processor_metrics.METRICS_SERVICE},
        {"Name": "queue", "Value": queue.settings.namespace},
    ]
    assert history.METRICS_NAMESPACE == processor_metrics.METRICS_NAMESPACE


def test_the_console_page_is_static_self_contained_and_holds_no_data(queue: JobQueue) -> None:
    enqueue(queue, 1)
    svc = services(queue)
    status, page, headers = call(svc, request("GET", "/", token=None))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "esc-0" not in page and TOKEN not in page
    assert '<script src="/console/app.js"' in page
    for asset, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        route = "/console/{asset}"
        status, text, headers = call(svc, request("GET", f"/console/{asset}", route=route))
        assert status == 200 and headers["Content-Type"].startswith(kind)
        # nothing from outside: the only URL is the SVG namespace, which is no fetch
        assert set(re.findall(r"https?://[^\s\"'`]+", text)) <= {"http://www.w3.org/2000/svg"}
    status, _, _ = call(svc, request("GET", "/console/secrets.txt", route="/console/{asset}"))
    assert status == 404
