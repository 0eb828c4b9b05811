"""The operator API: ``/api/jobs/process`` on the HTTP API (payload v2).

``GET``  → ``{"stats": {<type>: {ready, scheduled, running}, ..., "dead_letter": n},
"deadLetterCount": n, "deadLetterSample": [...], "oldestReadyAgeS": s, "overview": {...}}``
(the overview adds, per type, the oldest ready age and whether it is paused);
``POST`` ``{"action": "process-batch", "limit": 10, "types": [...]}`` → what it did;
``{"action": "replay-dead-letter", "ids": [...]}`` or ``"all": true`` → the ids queued
again; ``{"action": "purge-dead-letter", ...}`` likewise → how many were deleted;
``{"action": "cancel-job" | "run-job-now", "id": ...}`` (404 no such job, 409 not
waiting); ``{"action": "pause-type" | "resume-type", "type": ...}``. Every action but
process-batch takes ``"actor"`` (who asks; default ``operator-api``): the queue audits
it, who and when, in the same call. ``{"action": "enable-partner", "partner": "<secret
ref>"}`` re-enables a partner's webhook endpoint (disabled by a 410): its held webhooks
are due now. ``GET`` also lists the disabled endpoints (``disabledEndpoints``). The
browsing routes are in ``browse``.
Every request needs ``Authorization: Bearer <token>`` (compared in constant time):
401 without it or with a wrong one, and nothing is done; 400 names the field at fault.

``events.handle`` puts the ``Services`` in ``resolver.context`` before resolving.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from jobs_core import (
    BackendError,
    InvalidJobError,
    Job,
    JobNotFoundError,
    JobStateError,
    JobType,
    QueueStats,
    logger,
    stats_view,
)

from .auth import TokenUnavailableError
from .models import (
    CancelJobRequest,
    EnablePartnerRequest,
    HttpError,
    PauseTypeRequest,
    ProcessBatchRequest,
    PurgeDeadLetterRequest,
    ReplayDeadLetterRequest,
    ResumeTypeRequest,
    RunJobNowRequest,
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


@resolver.exception_handler(JobNotFoundError)  # type: ignore[untyped-decorator]
def _not_found(exc: JobNotFoundError) -> Response[Any]:
    body = {"error": str(exc), "id": exc.job_id}
    return Response(404, content_types.APPLICATION_JSON, json.dumps(body))


@resolver.exception_handler(JobStateError)  # type: ignore[untyped-decorator]
def _wrong_state(exc: JobStateError) -> Response[Any]:
    body = {"error": str(exc), "id": exc.job_id, "state": exc.state}
    return Response(409, content_types.APPLICATION_JSON, json.dumps(body))


@resolver.exception_handler(InvalidJobError)  # type: ignore[untyped-decorator]
def _invalid(exc: InvalidJobError) -> Response[Any]:
    body = {"error": str(exc), "field": exc.field}
    return Response(400, content_types.APPLICATION_JSON, json.dumps(body))


def authorized() -> Services:
    """The services, once the request's bearer token is the operator token (else 401)."""
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
    svc = authorized()
    stats = svc.queue.get_queue_stats()
    sample = svc.queue.get_dead_letter_jobs(limit=DEAD_LETTER_SAMPLE)
    dead = svc.queue.dead_letter_by_type() if stats.dead_letter else None
    disabled = svc.queue.partner_health() if stats.disabled_endpoints else []
    return {
        **stats_response(stats, sample, dead),
        "disabledEndpoints": [h.model_dump(mode="json") for h in disabled],
    }


@resolver.post(PATH)
def post_action() -> dict[str, Any]:
    svc = authorized()
    request = parse_request(resolver.current_event.body)
    if isinstance(request, ProcessBatchRequest):
        result = svc.processor.process_batch(
            request.types, request.limit, remaining_s=_http_budget_s()
        )
        return {"action": request.action, **result.to_dict()}
    logger.info("operator action", extra={"action": request.action, "actor": request.actor})
    return _act(svc, request)


def _act(svc: Services, request: Any) -> dict[str, Any]:
    """An audited action (the queue writes who and when with it, in the same call)."""
    queue, actor, action = svc.queue, request.actor, request.action
    if isinstance(request, ReplayDeadLetterRequest | PurgeDeadLetterRequest):
        ids = list(request.ids) if request.ids else None
        if isinstance(request, ReplayDeadLetterRequest):
            replayed = queue.replay_dead_letter(ids, limit=request.limit, actor=actor)
            return {"action": action, "replayed": len(replayed), "ids": replayed}
        purged = queue.purge_dead_letter(ids, limit=request.limit, actor=actor)
        return {"action": action, "purged": purged}
    if isinstance(request, CancelJobRequest):
        queue.cancel_job(request.id, actor=actor)
        return {"action": action, "id": request.id, "state": "cancelled"}
    if isinstance(request, RunJobNowRequest):
        queue.run_job_now(request.id, actor=actor)
        return {"action": action, "id": request.id, "state": "queued"}
    if isinstance(request, EnablePartnerRequest):
        released = queue.enable_partner(request.partner, actor=actor)
        return {"action": action, "partner": request.partner, "released": released}
    assert isinstance(request, PauseTypeRequest | ResumeTypeRequest)
    if isinstance(request, PauseTypeRequest):
        changed = queue.pause_type(request.type, actor=actor)
    else:
        changed = queue.resume_type(request.type, actor=actor)
    return {"action": action, "type": request.type.value, "changed": changed}


def _http_budget_s() -> float:
    context = resolver.lambda_context
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return HTTP_BUDGET_S
    return min(HTTP_BUDGET_S, float(remaining()) / 1000)


def stats_response(
    stats: QueueStats, dead_sample: list[Job], dead: Mapping[JobType, int] | None = None
) -> dict[str, Any]:
    per_type: dict[str, Any] = {
        job_type.value: {"ready": s.ready, "scheduled": s.scheduled, "running": s.running}
        for job_type, s in sorted(stats.by_type.items())
    }
    return {
        "stats": {**per_type, "dead_letter": stats.dead_letter},
        "deadLetterCount": stats.dead_letter,
        "deadLetterSample": [_dead_summary(job) for job in dead_sample],
        "oldestReadyAgeS": round(stats.oldest_ready_age_s, 3),
        "overview": stats_view(stats, dead or dict.fromkeys(JobType, 0)),
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
