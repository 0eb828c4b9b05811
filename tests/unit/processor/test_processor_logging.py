"""Every job log line carries the job's id, type, attempt and correlation id; no email
address is ever logged whole (the handler's own lines included)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from jobs_core import Job, JobQueue, RetryableJobError
from jobs_core.logging import logger, redact_emails, route_layer_loggers
from jobs_core.processor import Processor

from .support import AUDIT, RELEASE_EMAIL, enqueue


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("to jane.doe+tag@example.co.uk", "to j***@example.co.uk"),
        ("a@b.io and bob@sub.example.com", "a***@b.io and b***@sub.example.com"),
        ('{"email":"x_y@corp.example"}', '{"email":"x***@corp.example"}'),
        ("no address @ all, user@localhost", "no address @ all, user@localhost"),
    ],
)
def test_redact_emails(text: str, redacted: str) -> None:
    assert redact_emails(text) == redacted


def test_job_lines_carry_job_keys_and_no_whole_email(queue: JobQueue) -> None:
    [job_id] = queue.enqueue_jobs(
        [
            (
                RELEASE_EMAIL,
                {"transactionId": "esc-9", "recipientEmail": "seller@example.com", "amount": 5},
                {"correlation_id": "req-42"},
            )
        ]
    )
    std = logging.getLogger("jobs_core.workers.test")

    def handler(job: Job) -> None:
        logger.info("sending to seller@example.com")
        std.warning("provider said: unknown mailbox seller@example.com")
        raise RetryableJobError("bounced: seller@example.com")

    route_layer_loggers()
    lines: list[dict[str, Any]] = []
    with _capture(lines):
        Processor(queue, {RELEASE_EMAIL: handler}).process_next_job()

    text = json.dumps(lines)
    assert "seller@example.com" not in text and "s***@example.com" in text
    job_lines = [line for line in lines if line.get("job_id")]
    assert len(job_lines) == 3  # the handler's two lines and the outcome line
    for line in job_lines:
        assert line["job_id"] == job_id
        assert line["job_type"] == "send_release_email"
        assert line["attempt"] == 1
        assert line["correlation_id"] == "req-42"
    [outcome] = [line for line in job_lines if line.get("outcome")]
    assert outcome["outcome"] == "retried" and outcome["level"] == "WARNING"
    # The stored error is the handler's text; its redaction is the worker's business, the
    # log line's is ours.
    assert outcome["error"] == "RetryableJobError: bounced: s***@example.com"


def test_job_keys_do_not_leak_between_jobs_on_one_worker(queue: JobQueue) -> None:
    enqueue(queue, 3)
    lines: list[dict[str, Any]] = []
    with _capture(lines):
        Processor(queue, {AUDIT: lambda job: logger.info("hi")}, concurrency=1).process_batch()
        logger.info("after the batch")
    handler_lines = [line for line in lines if line["message"] == "hi"]
    assert len({line["job_id"] for line in handler_lines}) == 3
    [after] = [line for line in lines if line["message"] == "after the batch"]
    assert "job_id" not in after


def test_a_succeeded_jobs_line_has_the_formatters_shape_and_the_job_keys(
    queue: JobQueue,
) -> None:
    """The cheap line (built once per batch, see ``processor.joblog``) reads like the
    logger's: level, message, timestamp, service, the job's keys; caller text redacted."""
    [job_id] = queue.enqueue_jobs([(AUDIT, _AUDIT_PAYLOAD, {"correlation_id": "jane@example.com"})])
    lines: list[dict[str, Any]] = []
    with _capture(lines):
        logger.append_keys(request_id="req-7")
        try:
            Processor(queue, {AUDIT: lambda job: None}).process_next_job()
        finally:
            logger.remove_keys(["request_id"])
    [line] = [line for line in lines if line.get("job_id")]
    assert line["job_id"] == job_id and line["job_type"] == AUDIT.value
    assert line["attempt"] == 1 and line["outcome"] == "succeeded"
    assert line["message"] == "job succeeded" and line["level"] == "INFO"
    assert line["correlation_id"] == "j***@example.com"
    assert line["request_id"] == "req-7" and "service" in line and "timestamp" in line
    assert "error" not in line and isinstance(line["duration_ms"], float)


def test_no_success_line_below_its_level(queue: JobQueue) -> None:
    enqueue(queue, 2)
    lines: list[dict[str, Any]] = []
    with _capture(lines):
        logger.setLevel("WARNING")
        Processor(queue, {AUDIT: lambda job: None}).process_batch()
    assert [line for line in lines if line.get("job_id")] == []


_AUDIT_PAYLOAD = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}


class _capture:
    def __init__(self, lines: list[dict[str, Any]]) -> None:
        self.lines = lines
        self.buffer = io.StringIO()

    def __enter__(self) -> None:
        handler = logger.registered_handler
        assert isinstance(handler, logging.StreamHandler)
        self.previous = handler.setStream(self.buffer)
        self.level = logger.log_level
        logger.setLevel("INFO")
        logging.getLogger("jobs_core").setLevel("INFO")

    def __exit__(self, *exc: object) -> None:
        handler = logger.registered_handler
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(self.previous)
        logger.setLevel(self.level)
        self.lines.extend(json.loads(line) for line in self.buffer.getvalue().splitlines())
