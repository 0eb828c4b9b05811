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
