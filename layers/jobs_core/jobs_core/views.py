"""Jobs, statistics and audit entries as JSON data (camelCase), one shape for the operator
API, the console and the CLI's ``--json``. Email addresses are redacted unless asked.

    >>> redact_data({"to": ["bob@example.com"], "n": 1})
    {'to': ['b***@example.com'], 'n': 1}
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .models import Job, JobEvent, JobType, QueueStats
from .queue.operations import AuditEntry
from .redact import redact_text


def redact_data(value: Any) -> Any:
    """``value`` (JSON data) with every email address inside its strings redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


def iso(dt: datetime | None) -> str | None:
    return None if dt is None else dt.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_summary(job: Job) -> dict[str, Any]:
    """A job in a list: no payload (payloads hold email addresses), the escrow id."""
    return {
        "id": job.id,
        "type": job.type.value,
        "state": job.state.value,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "transactionId": job.payload.get("transaction_id"),
        "createdAt": iso(job.created_at),
        "nextRunAt": iso(job.next_run_at),
        "finishedAt": iso(job.finished_at),
        "lastError": redact_text(job.last_error) if job.last_error else None,
        "correlationId": job.correlation_id,
    }


def event_view(event: JobEvent, *, show_pii: bool = False) -> dict[str, Any]:
    error = event.error
    if error is not None and not show_pii:
        error = redact_text(error)
    return {
        "kind": event.kind.value,
        "at": iso(event.at),
        "attempt": event.attempt,
        "startedAt": iso(event.started_at),
        "processor": event.processor,
        "error": error,
        "nextRunAt": iso(event.next_run_at),
        "actor": event.actor,
    }


def job_view(job: Job, *, show_pii: bool = False) -> dict[str, Any]:
    """A job in full: options, payload (redacted unless ``show_pii``), every attempt."""

    def scrub(value: Any) -> Any:
        return value if show_pii else redact_data(value)

    return {
        **job_summary(job),
        "startedAt": iso(job.started_at),
        "lastError": scrub(job.last_error),
        "dedupeKey": job.dedupe_key,
        "payload": scrub(job.payload),
        "piiShown": show_pii,
        "history": [event_view(e, show_pii=show_pii) for e in job.history],
    }


def stats_view(stats: QueueStats, dead: Mapping[JobType, int] | None = None) -> dict[str, Any]:
    """Per type: ready, scheduled, running, dead (when counted), oldest ready age, paused;
    and the totals."""
    return {
        "types": {
            t.value: {
                "ready": s.ready,
                "scheduled": s.scheduled,
                "running": s.running,
                "dead": None if dead is None else dead.get(t, 0),
                "oldestReadyAgeS": round(s.oldest_ready_age_s, 3),
                "paused": s.paused,
                "pausedSince": iso(s.paused_since),
            }
            for t, s in sorted(stats.by_type.items())
        },
        "ready": stats.ready,
        "scheduled": stats.scheduled,
        "running": stats.running,
        "deadLetter": stats.dead_letter,
        "oldestReadyAgeS": round(stats.oldest_ready_age_s, 3),
        "paused": [t.value for t in stats.paused_types],
        "truncated": stats.truncated,
    }


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": iso(entry.at),
        "actor": redact_text(entry.actor),
        "action": entry.action,
        "count": entry.count,
        "ids": list(entry.ids),
        "type": entry.type,
        "partner": entry.partner,
    }
