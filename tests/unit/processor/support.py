"""Helpers shared by the processor tests (unit and integration)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from jobs_core import JobQueue, JobType

EVENTS = Path(__file__).resolve().parents[3] / "events" / "job_processor"
TOKEN = "local-processor-token"

AUDIT = JobType.AUDIT_LOG_CREATED
RELEASE_EMAIL = JobType.SEND_RELEASE_EMAIL


def payload(job_type: JobType, n: int = 0) -> dict[str, Any]:
    if job_type is JobType.SEND_RELEASE_EMAIL:
        return {"transactionId": f"esc-{n}", "recipientEmail": "seller@example.com", "amount": 100}
    if job_type is JobType.AUDIT_LOG_CREATED:
        return {"transactionId": f"esc-{n}", "action": "released", "actor": "buyer"}
    raise ValueError(job_type)


def enqueue(queue: JobQueue, count: int, job_type: JobType = AUDIT, **options: Any) -> list[str]:
    return queue.enqueue_jobs([(job_type, payload(job_type, i), options) for i in range(count)])


def load_event(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return data


class FakeContext:
    """A Lambda context whose remaining time runs out ``budget_s`` after creation."""

    function_name = "escrow-jobs-processor"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:escrow-jobs-processor"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    log_group_name = "/aws/lambda/escrow-jobs-processor"
    log_stream_name = "2026/11/29/[$LATEST]abc"

    def __init__(self, budget_s: float = 60.0) -> None:
        self._deadline = time.monotonic() + budget_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class RecordingLambda:
    """A stand-in for boto3's Lambda client: records every invoke, answers 202 (or fails)."""

    def __init__(self, *, fail: BaseException | None = None, status: int = 202) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.status = status
        self._lock = threading.Lock()

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.calls.append(kwargs)
        if self.fail is not None:
            raise self.fail
        return {"StatusCode": self.status}

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(call["Payload"]) for call in self.calls]


class Gate:
    """Counts handlers in flight; ``max_in_flight`` is the highest count seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def __enter__(self) -> Gate:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.in_flight -= 1
