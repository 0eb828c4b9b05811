"""Escrow API routes (API Gateway HTTP API, payload v2) on ``EscrowService``.

``app.py`` beside this package is the Lambda entry point (``app.lambda_handler``): it
hands HTTP events to ``resolver`` and the outbox sweep's schedule to ``sweep_outbox_now``.

Routes (the original system's paths)::

    POST /api/escrow                create; answers the PaymentIntent's client secret
    POST /api/stripe/webhook        Stripe events (signature checked)
    POST /api/escrow/release        buyer
    POST /api/escrow/refund         seller or admin
    POST /api/escrow/dispute        buyer
    POST /api/escrow/resolve        admin
    GET  /api/escrow/{escrowId}     parties and admins

At import time only the logger, the resolver and the cached service factory exist;
the service (boto3, Stripe, Redis clients) is built on the first request.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from jobs_core import logger  # the layer's Powertools logger: JSON, email addresses redacted

from . import auth
from .body import require_json
from .errors import ApiError, PayloadTooLargeError
from .messages import ApiRequest, ApiResponse
from .metrics import publish_outbox
from .models import MAX_BODY_BYTES
from .outbox import sweep_outbox
from .service import MAX_WEBHOOK_BYTES, EscrowService

JSON = "application/json"


@cache
def get_service() -> EscrowService:
    """The process's service, built from the environment on first use."""
    return EscrowService.from_env(os.environ)


def build_app(service: Callable[[], EscrowService]) -> APIGatewayHttpResolver:
    """A resolver with every route bound to ``service()``.

    Each resolver holds the event it is handling, so concurrent callers (tests; Lambda
    never runs two events at once in one process) each use their own.
    """
    app = APIGatewayHttpResolver()

    def request(limit: int = MAX_BODY_BYTES, *, json_body: bool = True) -> ApiRequest:
        req = request_from_event(app.current_event.raw_event, limit=limit)
        if json_body:
            require_json(req.headers)  # 415 before anything is read or written
        return req

    @app.post("/api/escrow")
    def create_escrow() -> Response[str]:
        return to_response(service().create(request()))

    @app.post("/api/stripe/webhook")
    def stripe_webhook() -> Response[str]:
        # Stripe's signature, not the media type, decides what is accepted here.
        return to_response(service().stripe_webhook(request(MAX_WEBHOOK_BYTES, json_body=False)))

    @app.post("/api/escrow/release")
    def release() -> Response[str]:
        return to_response(service().release(request()))

    @app.post("/api/escrow/refund")
    def refund() -> Response[str]:
        return to_response(service().refund(request()))

    @app.post("/api/escrow/dispute")
    def dispute() -> Response[str]:
        return to_response(service().dispute(request()))

    @app.post("/api/escrow/resolve")
    def resolve() -> Response[str]:
        return to_response(service().resolve(request()))

    @app.get("/api/escrow/<escrow_id>")
    def get_escrow(escrow_id: str) -> Response[str]:
        return to_response(service().get(request(json_body=False), escrow_id))

    def api_error(exc: ApiError) -> Response[str]:
        if exc.status >= 500:
            logger.warning("request failed", extra={"status": exc.status, "code": exc.code})
        return to_response(ApiResponse(exc.status, exc.error_body()))

    app.exception_handler(ApiError)(api_error)
    return app


def request_from_event(event: Mapping[str, Any], *, limit: int = MAX_BODY_BYTES) -> ApiRequest:
    """The service's view of an HTTP API v2 event: raw body bytes, headers, JWT claims."""
    raw = event.get("body") or ""
    # Refuse oversized bodies before decoding them (base64 is 4/3 of the bytes).
    if len(raw) > limit * 4 // 3 + 4:
        raise PayloadTooLargeError(f"the body is over {limit} bytes", field="body")
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode("utf-8")
    if len(body) > limit:
        raise PayloadTooLargeError(
            f"the body is {len(body)} bytes; the limit is {limit}", field="body"
        )
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    context = event.get("requestContext") or {}
    return ApiRequest(
        body=body,
        headers=headers,
        claims=auth.claims_from_event(event),
        request_id=context.get("requestId") if isinstance(context, Mapping) else None,
    )


def to_response(result: ApiResponse) -> Response[str]:
    return Response(
        status_code=result.status,
        content_type=JSON,
        body=result.json(),
        headers=dict(result.headers),
    )


resolver = build_app(get_service)
_per_thread = threading.local()


def current_resolver() -> APIGatewayHttpResolver:
    """This thread's resolver. Lambda runs one event per process, so one would do; a host
    that runs several events at once (the local stack's concurrent instances) gets one
    per thread, since a resolver holds the event it is handling."""
    if threading.current_thread() is threading.main_thread():
        return resolver
    app: APIGatewayHttpResolver | None = getattr(_per_thread, "app", None)
    if app is None:
        app = _per_thread.app = build_app(get_service)
    return app


def sweep_outbox_now() -> dict[str, Any]:
    """Enqueue the outbox entries that a request could not (Redis was down): every minute.

    It runs here, beside the table and the code that write the outbox, rather than in
    the processor, whose package carries no escrow domain code. Each run publishes the
    backlog it leaves and the age of its oldest entry (``metrics.py``), which page when
    entries wait for minutes; a Redis still down is logged and left to the next run.
    """
    service = get_service()
    report = sweep_outbox(service.store, service.queue)
    now = service.queue.now_ms()
    publish_outbox(report, queue=service.queue.settings.namespace, now_ms=now)
    waiting = {"backlog": report.backlog, "oldestAgeS": round(report.oldest_age_s(now), 3)}
    if report.redis_error is not None:
        logger.warning(
            "outbox sweep: Redis unavailable", extra={"error": report.redis_error, **waiting}
        )
        return {"swept": False, "error": "redis unavailable", **waiting}
    result = {"swept": True, "found": report.found, "enqueued": report.enqueued,
              "invalid": report.invalid, **waiting}  # fmt: skip
    logger.info("outbox swept", extra=result)
    return result


def reconcile_now(event: Mapping[str, Any], time_left_s: Callable[[], float]) -> dict[str, Any]:
    """Compare the escrows with Stripe (hourly schedule, and ``escrow-jobs reconcile``).

    Read-only: it reports each drift and publishes ``EscrowDrift``; it never moves money.
    ``closedWithinDays`` in the event overrides ``ESCROW_RECONCILE_DAYS``.
    """
    from .config import ApiConfig
    from .reconcile import publish, reconcile

    service = get_service()
    days = event.get("closedWithinDays")
    if not isinstance(days, int | float) or isinstance(days, bool) or not 0 <= days <= 90:
        days = ApiConfig.from_env(os.environ).reconcile_days
    report = reconcile(
        service.store,
        service.gateway,
        now_ms=service.now_ms(),
        closed_within_days=float(days),
        time_left_s=time_left_s,
    )
    publish(report, queue=service.queue.settings.namespace)
    result = report.to_dict()
    log = logger.warning if report.drifts else logger.info
    log("reconciled with Stripe", extra={k: v for k, v in result.items() if k != "drifts"})
    for drift in report.drifts:
        extra = {"drift": drift.kind, "escrow_id": drift.escrow_id, "ours": drift.ours,
                 "stripe": drift.stripe}  # fmt: skip
        logger.warning("escrow drift", extra=extra)
    return result
