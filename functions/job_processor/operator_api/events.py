"""Which event an invocation is, and what it does: HTTP to the routes, anything else drains."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.typing import LambdaContext
from jobs_core import logger

from .wiring import Services

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

EventKind = Literal["http", "schedule", "kick", "fanout", "unknown"]


def event_kind(event: Mapping[str, Any]) -> EventKind:
    from jobs_core import FANOUT_SOURCE, KICK_SOURCE  # the kicker's module: on first use

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


@cache
def http_resolver() -> APIGatewayHttpResolver:
    """The operator API's routes, loaded on the first HTTP event: a scheduled or kicked
    drain never loads the resolver, the request models or the console."""
    from . import browse  # noqa: F401 (registers the reading routes and the console)
    from .routes import resolver

    return resolver


def handle(event: Mapping[str, Any], context: LambdaContext, svc: Services) -> dict[str, Any]:
    """Dispatch one event with the given services (``lambda_handler`` passes the cached ones)."""
    kind = event_kind(event)
    logger.clear_state()
    logger.append_keys(trigger=kind, request_id=getattr(context, "aws_request_id", None))
    if kind == "http":
        logger.set_correlation_id((event.get("requestContext") or {}).get("requestId"))
        resolver = http_resolver()
        resolver.context["services"] = svc  # cleared by resolve() when it returns
        return resolver.resolve(event, context)
    if kind == "unknown":
        logger.warning("ignoring an event of unknown shape", extra={"keys": sorted(event)[:10]})
        return {"status": "ignored", "reason": "unrecognised event"}
    logger.set_correlation_id(event.get("id"))
    hints = event.get("hints") if kind == "kick" else None
    return drain(svc, context, fan_out=kind != "fanout", hints=hints)


def drain(
    svc: Services, context: LambdaContext, *, fan_out: bool, hints: object = None
) -> dict[str, Any]:
    """Drain within the invocation's budget; fan out when a backlog is left (if allowed).
    A kick's ``hints`` (the jobs its enqueue wrote) go with the drain's first claim."""
    from jobs_core import fanout_count, parse_hints, publish_drain  # on first use

    remaining_s = context.get_remaining_time_in_millis() / 1000
    report = svc.processor.drain(remaining_s, hints=parse_hints(hints))
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
