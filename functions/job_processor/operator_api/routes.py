"""The operator API: ``/api/jobs/process`` on the HTTP API (payload v2).

``GET``  → ``{"stats": {<type>: {ready, scheduled, running}, ..., "dead_letter": n},
"deadLetterCount": n, "deadLetterSample": [...], "oldestReadyAgeS": s}``;
``POST`` ``{"action": "process-batch", "limit": 10, "types": [...]}`` → what it did;
``{"action": "replay-dead-letter", "ids": [...]}`` or ``"all": true`` → the ids queued
again; ``{"action": "purge-dead-letter", ...}`` likewise → how many were deleted.
Every request needs ``Authorization: Bearer <token>`` (compared in constant time):
401 without it or with a wrong one, and nothing is done; 400 names the field at fault.

``events.handle`` puts the ``Services`` in ``resolver.context`` before resolving.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from jobs_core import BackendError, Job, QueueStats, logger

from .auth import TokenUnavailableError
from .models import (
    HttpError,
    ProcessBatchRequest,
    ReplayDeadLetterRequest,
    parse_request,
)
from .wiring import Services

PATH = "/api/jobs/process"
DEAD_LETTER_SAMPLE = 10
HTTP_BUDGET_S = 28.0  # API Gateway gives up on an integration after 30 s

resolver = APIGatewayHttpResolver()


@resolver.exception_handler(HttpError)  # type: ignore[untyped-decorator]
def _http_error(exc: HttpError) -> Response[Any]:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    body = {"error": exc.message, **exc.extra}
    return Response(exc.status, content_types.APPLICATION_JSON, json.dumps(body), headers)


@resolver.exception_handler(BackendError)  # type: ignore[untyped-decorator]
def _backend_error(exc: BackendError) -> Response[Any]:
    logger.exception("queue backend failed", extra={"backend": exc.backend})
    body = {"error": "the queue backend is unavailable", "backend": exc.backend}
    return Response(503, content_types.APPLICATION_JSON, json.dumps(body))


def _authorized() -> Services:
    svc: Services = resolver.context["services"]
    header = resolver.current_event.headers.get("authorization")  # case-insensitive
    try:
        allowed = svc.token.allows(header)
    except TokenUnavailableError as exc:
        logger.error("operator token unavailable", extra={"error": str(exc)})
        raise HttpError(503, "the operator token cannot be read right now") from None
    if not allowed:
        logger.warning("refused an operator request without a valid token")
        raise HttpError(401, "a valid bearer token is required")
    return svc


@resolver.get(PATH)
def get_stats() -> dict[str, Any]:
    svc = _authorized()
    stats = svc.queue.get_queue_stats()
    sample = svc.queue.get_dead_letter_jobs(limit=DEAD_LETTER_SAMPLE)
    return stats_response(stats, sample)


@resolver.post(PATH)
def post_action() -> dict[str, Any]:
    svc = _authorized()
    request = parse_request(resolver.current_event.body)
    if isinstance(request, ProcessBatchRequest):
        result = svc.processor.process_batch(
            request.types, request.limit, remaining_s=_http_budget_s()
        )
        return {"action": request.action, **result.to_dict()}
    ids = list(request.ids) if request.ids else None
    if isinstance(request, ReplayDeadLetterRequest):
        replayed = svc.queue.replay_dead_letter(ids, limit=request.limit)
        logger.info("dead letters replayed", extra={"count": len(replayed)})
        return {"action": request.action, "replayed": len(replayed), "ids": replayed}
    purged = svc.queue.purge_dead_letter(ids, limit=request.limit)
    logger.info("dead letters purged", extra={"count": purged})
    return {"action": request.action, "purged": purged}


def _http_budget_s() -> float:
    context = resolver.lambda_context
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return HTTP_BUDGET_S
    return min(HTTP_BUDGET_S, float(remaining()) / 1000)


def stats_response(stats: QueueStats, dead_sample: list[Job]) -> dict[str, Any]:
    per_type: dict[str, Any] = {
        job_type.value: {"ready": s.ready, "scheduled": s.scheduled, "running": s.running}
        for job_type, s in sorted(stats.by_type.items())
    }
    return {
        "stats": {**per_type, "dead_letter": stats.dead_letter},
        "deadLetterCount": stats.dead_letter,
        "deadLetterSample": [_dead_summary(job) for job in dead_sample],
        "oldestReadyAgeS": round(stats.oldest_ready_age_s, 3),
    }


def _dead_summary(job: Job) -> dict[str, Any]:
    """A dead job without its payload (payloads hold email addresses)."""
    return {
        "id": job.id,
        "type": job.type.value,
        "attempts": job.attempts,
        "maxAttempts": job.max_attempts,
        "lastError": job.last_error,
        "transactionId": job.payload.get("transaction_id"),
        "correlationId": job.correlation_id,
        "createdAt": job.created_at.isoformat(),
        "finishedAt": job.finished_at.isoformat() if job.finished_at else None,
    }
