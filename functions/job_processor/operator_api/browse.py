"""The operator API's reading routes, behind the same bearer token as ``routes``:

- ``GET /api/jobs?state=ready|scheduled|running|dead&type=T&order=oldest|newest&offset=0
  &limit=50`` → one page ``{"jobs": [...], "total": n, "complete": bool}``;
  ``GET /api/jobs?escrowId=E`` → the waiting, running and dead jobs of one escrow;
- ``GET /api/jobs/{jobId}[?showPii=true]`` → the job in full: options, payload (email
  addresses redacted unless asked), every attempt and operator action;
- ``GET /api/jobs/audit?limit=50`` → the newest operator actions (who, when, what);
- ``GET /api/jobs/history`` → processed, succeeded and failed jobs per minute over the last
  hour, from the CloudWatch metrics the processor publishes (no Redis command);

and the console itself (``console``): ``GET /`` and ``GET /console/{asset}``, a static
page that asks for the token and keeps it in the tab's ``sessionStorage``; it sends it
as a bearer header, never in a URL.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from jobs_core import audit_view, job_summary, job_view, logger

from . import console
from .models import HttpError, JobQuery, JobsQuery, parse_query
from .routes import authorized, resolver

AUDIT_MAX = 200


@resolver.get("/api/jobs")
def list_jobs() -> dict[str, Any]:
    svc = authorized()
    query = parse_query(JobsQuery, resolver.current_event.query_string_parameters)
    if query.escrowId is not None:
        jobs, complete = svc.queue.find_jobs(query.escrowId)
        return {"escrowId": query.escrowId, "jobs": [job_summary(j) for j in jobs],
                "total": len(jobs), "complete": complete}  # fmt: skip
    page = svc.queue.list_jobs(
        query.state,
        job_type=query.type,
        newest_first=query.order == "newest",
        offset=query.offset,
        limit=query.limit,
    )
    return {
        "state": query.state,
        "type": query.type.value if query.type else None,
        "order": query.order,
        "offset": query.offset,
        "jobs": [job_summary(j) for j in page.jobs],
        "total": page.total,
        "complete": page.complete,
    }


@resolver.get("/api/jobs/audit")
def audit() -> dict[str, Any]:
    svc = authorized()
    params = resolver.current_event.query_string_parameters or {}
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= AUDIT_MAX or set(params) - {"limit"}:
        field = "limit" if not set(params) - {"limit"} else sorted(set(params) - {"limit"})[0]
        raise HttpError(400, f"{field}: limit is a whole number from 1 to {AUDIT_MAX}",
                        field=field)  # fmt: skip
    return {"entries": [audit_view(e) for e in svc.queue.audit_log(limit)]}


@resolver.get("/api/jobs/history")
def history() -> dict[str, Any]:
    svc = authorized()
    return svc.history.last_hour(svc.queue.settings.namespace)


@resolver.get("/api/jobs/<jobId>")
def show_job(jobId: str) -> dict[str, Any]:
    svc = authorized()
    query = parse_query(JobQuery, resolver.current_event.query_string_parameters)
    job = svc.queue.get_job_status(jobId)
    if job is None:
        raise HttpError(404, f"job {jobId} not found (or its record expired)", id=jobId)
    if query.showPii:
        logger.info("job shown with personal data", extra={"job_id": jobId})
    return job_view(job, show_pii=query.showPii)


@resolver.get("/")
def console_page() -> Response[str]:
    return console.asset_response("index.html")


@resolver.get("/console/<asset>")
def console_asset(asset: str) -> Response[str]:
    return console.asset_response(asset)
