"""Processor Lambda: drains the queue on a schedule or a kick, and serves the operator API.

One function, three kinds of events (told apart by their shape, see ``event_kind``):

- the EventBridge schedule (every minute) and the enqueuers' kick
  (``{"source": "escrow-jobs.kick"}``): drain within the invocation's budget, then fan
  out (invoke itself asynchronously, up to ``JOB_PROCESSOR_MAX_FANOUT`` times) when the
  drain ran out of budget with a backlog left;
- a fan-out event (``{"source": "escrow-jobs.fanout"}``): drain, never fan out again (so
  processors cannot multiply: only the schedule and kicks start new ones);
- HTTP API v2 requests for ``/api/jobs/process`` (Powertools ``APIGatewayHttpResolver``):

  ``GET``  → ``{"stats": {<type>: {ready, scheduled, running}, ..., "dead_letter": n},
  "deadLetterCount": n, "deadLetterSample": [...], "oldestReadyAgeS": s}``;
  ``POST`` ``{"action": "process-batch", "limit": 10, "types": [...]}`` → what it did;
  ``{"action": "replay-dead-letter", "ids": [...]}`` or ``"all": true`` → the ids queued
  again; ``{"action": "purge-dead-letter", ...}`` likewise → how many were deleted.
  Every request needs ``Authorization: Bearer <token>`` (compared in constant time):
  401 without it or with a wrong one, and nothing is done; 400 names the field at fault.

Environment (besides the queue's own settings, see ``jobs_core.config``, and the
processor's ``JOB_PROCESSOR_*`` knobs, see ``jobs_core.processor.ProcessorConfig``):

=============================  ==================================================
``JOB_PROCESSOR_TOKEN_PARAM``  in AWS: the SSM parameter (a name starting with "/"
                               or an SSM ARN) or Secrets Manager secret holding the
                               operator token; read through Powertools parameters,
                               cached 5 minutes
``JOB_PROCESSOR_SECRET_TOKEN`` locally: the token itself (ignored when the param is set)
``JOB_PROCESSOR_FUNCTION_NAME`` the function fan-out invokes (default: this function)
``UPSTASH_TOKEN_PARAM``        the Secrets Manager secret with the Upstash REST token
                               (as the monitor reads it), unless the token is set
=============================  ==================================================

Nothing but the logger, the resolver and the routes exists at import time; the queue,
the handlers and the clients are built on first use (``services()``, cached).
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext
from jobs_core import (
    FANOUT_SOURCE,
    KICK_SOURCE,
    AwsSecretResolver,
    BackendError,
    HandlerRegistry,
    Job,
    JobQueue,
    JobType,
    Kicker,
    LambdaInvoker,
    Processor,
    ProcessorConfig,
    QueueStats,
    Settings,
    default_handlers,
    fanout_count,
    logger,
    publish_drain,
    route_layer_loggers,
)
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

ENV_TOKEN_PARAM = "JOB_PROCESSOR_TOKEN_PARAM"  # noqa: S105 (a variable name)
ENV_TOKEN = "JOB_PROCESSOR_SECRET_TOKEN"  # noqa: S105
ENV_FUNCTION_NAME = "JOB_PROCESSOR_FUNCTION_NAME"
ENV_SELF_NAME = "AWS_LAMBDA_FUNCTION_NAME"

PATH = "/api/jobs/process"
DEAD_LETTER_SAMPLE = 10
HTTP_BUDGET_S = 28.0  # API Gateway gives up on an integration after 30 s
TOKEN_MAX_AGE_S = 300

resolver = APIGatewayHttpResolver()

# -- the operator token -------------------------------------------------------------------

Fetch = Callable[[str], str]


class TokenUnavailableError(Exception):
    """The token store (SSM / Secrets Manager) could not be read."""


_AWS_SECRETS = AwsSecretResolver(max_age_s=TOKEN_MAX_AGE_S)  # builds no client until used


def fetch_parameter(name: str) -> str:
    """The token from SSM (names starting with "/", or SSM ARNs) or Secrets Manager,
    through Powertools parameters (cached ``TOKEN_MAX_AGE_S``)."""
    return _AWS_SECRETS.get(name)


@dataclass(frozen=True)
class TokenCheck:
    """Checks ``Authorization: Bearer <token>`` against the configured token."""

    param_name: str | None = None
    local_token: str | None = None
    fetch: Fetch = fetch_parameter

    def expected(self) -> str | None:
        if self.param_name:
            try:
                return self.fetch(self.param_name).strip() or None
            except Exception as exc:
                raise TokenUnavailableError(type(exc).__name__) from exc
        return (self.local_token or "").strip() or None

    def allows(self, authorization: str | None) -> bool:
        expected = self.expected()
        if not expected or not authorization:
            return False  # no token configured: every request is refused
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), expected.encode())


# -- wiring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    queue: JobQueue
    processor: Processor
    token: TokenCheck
    fanout: Kicker
    config: ProcessorConfig


def build_services(
    environ: Mapping[str, str],
    *,
    handlers: HandlerRegistry | None = None,
    queue: JobQueue | None = None,
    lambda_client: LambdaInvoker | None = None,
    fetch: Fetch = fetch_parameter,
) -> Services:
    """Everything the handler needs, from ``environ``; tests inject the rest."""
    env = dict(environ)
    config = ProcessorConfig.from_environ(env)
    queue = queue or JobQueue.from_settings(Settings.from_env(env, resolve_secret=fetch))
    route_layer_loggers()
    processor = Processor(queue, handlers if handlers is not None else default_handlers(env),
                          config=config)  # fmt: skip
    fanout = Kicker(
        function_name=env.get(ENV_FUNCTION_NAME) or env.get(ENV_SELF_NAME),
        enabled=config.max_fanout > 0,
        client=lambda_client,
    )
    token = TokenCheck(env.get(ENV_TOKEN_PARAM) or None, env.get(ENV_TOKEN) or None, fetch)
    return Services(queue, processor, token, fanout, config)


@cache
def services() -> Services:
    """Built on the first event and kept for the life of the execution environment."""
    return build_services(os.environ)


# -- the entry point ----------------------------------------------------------------------

EventKind = Literal["http", "schedule", "kick", "fanout", "unknown"]


def event_kind(event: Mapping[str, Any]) -> EventKind:
    if event.get("version") == "2.0" and "http" in (event.get("requestContext") or {}):
        return "http"
    source = event.get("source")
    if source == "aws.events" or event.get("detail-type") == "Scheduled Event":
        return "schedule"
    if source == KICK_SOURCE:
        return "kick"
    if source == FANOUT_SOURCE:
        return "fanout"
    return "unknown"


def lambda_handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, services())


def handle(event: Mapping[str, Any], context: LambdaContext, svc: Services) -> dict[str, Any]:
    """Dispatch one event with the given services (``lambda_handler`` passes the cached ones)."""
    kind = event_kind(event)
    logger.clear_state()
    logger.append_keys(trigger=kind, request_id=getattr(context, "aws_request_id", None))
    if kind == "http":
        logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
        resolver.context["services"] = svc  # cleared by resolve() when it returns
        return resolver.resolve(event, context)
    if kind == "unknown":
        logger.warning("ignoring an event of unknown shape", extra={"keys": sorted(event)[:10]})
        return {"status": "ignored", "reason": "unrecognised event"}
    logger.set_correlation_id(event.get("id"))
    return drain(svc, context, fan_out=kind != "fanout")


def drain(svc: Services, context: LambdaContext, *, fan_out: bool) -> dict[str, Any]:
    report = svc.processor.drain(context.get_remaining_time_in_millis() / 1000)
    started = 0
    wanted = fanout_count(report, svc.config.max_fanout) if fan_out else 0
    if wanted:
        started = svc.fanout.fan_out(wanted)
    publish_drain(report, queue=svc.queue.settings.namespace, fanout=started)
    summary = {**report.to_dict(), "fanOut": started}
    logger.info("drain finished", extra={"drain": summary})
    if report.error is not None:
        raise report.error  # Lambda counts the failed run; the schedule retries in a minute
    return {"status": "ok", **summary}


# -- the operator endpoint ----------------------------------------------------------------

JobId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessBatchRequest(_Body):
    action: Literal["process-batch"]
    limit: int = Field(default=10, ge=1, le=100)
    types: list[JobType] | None = Field(default=None, min_length=1)


class _DeadLetterRequest(_Body):
    ids: list[JobId] | None = Field(default=None, min_length=1, max_length=1000)
    all: bool = Field(default=False, validate_default=True)
    limit: int = Field(default=100, ge=1, le=1000)

    @field_validator("all")
    @classmethod
    def _one_selector(cls, value: bool, info: ValidationInfo) -> bool:
        has_ids = info.data.get("ids") is not None
        if value == has_ids:
            raise ValueError("give either ids or all: true" + (", not both" if value else ""))
        return value


class ReplayDeadLetterRequest(_DeadLetterRequest):
    action: Literal["replay-dead-letter"]


class PurgeDeadLetterRequest(_DeadLetterRequest):
    action: Literal["purge-dead-letter"]


ProcessRequest = Annotated[
    ProcessBatchRequest | ReplayDeadLetterRequest | PurgeDeadLetterRequest,
    Field(discriminator="action"),
]
AnyRequest = ProcessBatchRequest | ReplayDeadLetterRequest | PurgeDeadLetterRequest
_REQUEST: TypeAdapter[AnyRequest] = TypeAdapter(ProcessRequest)


class HttpError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        self.status, self.message, self.extra = status, message, extra
        super().__init__(message)


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


def parse_request(
    body: str | None,
) -> ProcessBatchRequest | ReplayDeadLetterRequest | PurgeDeadLetterRequest:
    """The POST body as a request model; ``HttpError(400)`` naming the field at fault."""
    try:
        data = json.loads(body or "")
    except ValueError:
        raise HttpError(400, "body: must be a JSON object", field="body") from None
    if not isinstance(data, dict):
        raise HttpError(400, "body: must be a JSON object", field="body")
    try:
        return _REQUEST.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        loc = [str(part) for part in first["loc"]]
        if first["type"] in ("union_tag_not_found", "union_tag_invalid"):
            loc = ["action"]
        elif loc and loc[0] == data.get("action"):
            loc = loc[1:]  # drop the union tag pydantic puts first
        field = ".".join(loc) or "body"
        raise HttpError(400, f"{field}: {first['msg']}", field=field) from None


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
