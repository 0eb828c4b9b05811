"""One log line per job (id, type, attempt, correlation id, outcome), at a price a no-op
drain can pay.

Going through ``logging`` and Powertools' formatter costs about 80 µs a line (a record, the
key extraction, a redaction pass over the whole line): a third of a no-op job's life. The
lines of jobs that succeeded or were released (the common case) are therefore built here
once per batch, in the same JSON shape as the formatter's (level, location, message,
timestamp, the logger's persistent keys such as ``service`` and the Lambda context, then
the job's fields; ``None`` left out) and written to the logger's handler in one write
under its lock. Only the correlation id is caller text, so only it is redacted. Lines
that carry an error (retried, dead-lettered, lease lost) are rare and go through the
logger as before.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..logging import logger
from ..redact import redact_text
from .report import JobOutcome, JobResult

_FAST = frozenset({JobOutcome.SUCCEEDED, JobOutcome.RELEASED})
_FORMAT_KEYS = frozenset({"level", "location", "message", "timestamp"})
_dumps: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":"), default=str).encode


def log_results(results: Sequence[JobResult]) -> None:
    """Log one line per job: the common outcomes cheaply, the rest through the logger."""
    fast: list[JobResult] = []
    for result in results:
        if result.outcome in _FAST:
            fast.append(result)
        else:
            _log_slow(result)
    if fast and logger.log_level <= logging.INFO:
        _write(fast)


def _write(results: Sequence[JobResult]) -> None:
    handler = logger.registered_handler
    stream = getattr(handler, "stream", None)
    if stream is None:  # not a stream handler: let logging deal with it
        for result in results:
            _log_slow(result)
        return
    base: dict[str, Any] = {
        "level": "INFO",
        "location": "log_results:1",
        "message": "",
        "timestamp": _timestamp(),
    }
    for key, value in logger.get_current_keys().items():
        if key not in _FORMAT_KEYS and value is not None:
            base[key] = value
    lines = []
    for r in results:
        line = dict(base)
        line["message"] = "job " + r.outcome.value
        line["job_id"] = r.job_id
        line["job_type"] = r.job_type.value
        line["attempt"] = r.attempt
        if r.correlation_id is not None:
            line["correlation_id"] = redact_text(r.correlation_id)
        line["outcome"] = r.outcome.value
        if r.duration_ms is not None:
            line["duration_ms"] = round(r.duration_ms, 1)
        lines.append(_dumps(line))
    text = "\n".join(lines) + "\n"
    handler.acquire()
    try:
        stream.write(text)
        stream.flush()
    finally:
        handler.release()


def _timestamp() -> str:
    """Powertools' default: ``2026-12-01 09:23:06,189+0000`` (local time, as Lambda's UTC)."""
    now = time.time()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + (
        f",{int(now * 1000) % 1000:03d}{time.strftime('%z', time.localtime(now))}"
    )


def _log_slow(result: JobResult) -> None:
    outcome = result.outcome
    if outcome is JobOutcome.DEAD_LETTERED:
        log, level = logger.error, logging.ERROR
    elif outcome in (JobOutcome.RETRIED, JobOutcome.LEASE_LOST, JobOutcome.HELD):
        log, level = logger.warning, logging.WARNING
    else:
        log, level = logger.info, logging.INFO
    if level < logger.log_level:
        return
    message = f"job {outcome.value}"
    if outcome is JobOutcome.LEASE_LOST:
        message = "job lease lost: another processor holds it now; its result was not recorded"
    log(
        message,
        extra={
            "job_id": result.job_id,
            "job_type": result.job_type.value,
            "attempt": result.attempt,
            "correlation_id": result.correlation_id,
            "outcome": outcome.value,
            "duration_ms": None if result.duration_ms is None else round(result.duration_ms, 1),
            "error": result.error,
        },
    )
