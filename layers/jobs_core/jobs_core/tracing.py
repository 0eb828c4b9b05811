"""Tracing with Powertools Tracer (AWS X-Ray): one escrow followed from its request to its
jobs and their effects.

The three functions wrap their handler with ``tracer.capture_lambda_handler``; botocore
(DynamoDB, SES, Lambda), httpx (Upstash, partner webhooks) and requests (Stripe) calls
become subsegments. Annotations, searchable in X-Ray (``annotation.escrow_id = "esc_..."``):

- the escrow API annotates its request with ``escrow_id``;
- the processor runs each job in a subsegment ``## <job type>`` annotated with
  ``job_id``, ``job_type``, ``attempt`` and ``escrow_id`` (the payload's ``transaction_id``).

Outside Lambda (tests, the local stack, the CLI) Powertools disables tracing and every
call here is a no-op.

>>> with job_span(claimed, parent=None):   # doctest: +SKIP
...     handler(claimed.job)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from aws_lambda_powertools import Tracer

from .models import ClaimedJob

# Patched once, at import, and only inside Lambda (a disabled tracer patches nothing).
tracer = Tracer(patch_modules=("botocore", "httpx", "requests"))

ESCROW_ID = "escrow_id"
JOB_ID = "job_id"


def annotate_escrow(escrow_id: str) -> None:
    """Annotate the current (request) subsegment with the escrow it concerns."""
    if not tracer.disabled:
        tracer.put_annotation(ESCROW_ID, escrow_id)


def current_entity() -> Any | None:
    """The X-Ray segment or subsegment open on this thread (None when tracing is off).

    Jobs run on pool threads, which have no X-Ray context of their own: the batch takes
    this on its own thread and hands it to each job's ``job_span``.
    """
    if tracer.disabled:
        return None
    from aws_xray_sdk.core import xray_recorder

    return xray_recorder.get_trace_entity()


@contextlib.contextmanager
def job_span(claimed: ClaimedJob, parent: Any | None) -> Iterator[None]:
    """Run one job inside a subsegment of ``parent``, annotated with its ids."""
    if parent is None or tracer.disabled:
        yield
        return
    from aws_xray_sdk.core import xray_recorder

    job = claimed.job
    xray_recorder.context.set_trace_entity(parent)
    try:
        with xray_recorder.in_subsegment(f"## {job.type.value}") as subsegment:
            subsegment.put_annotation(JOB_ID, job.id)
            subsegment.put_annotation("job_type", job.type.value)
            subsegment.put_annotation("attempt", claimed.attempt)
            escrow_id = job.payload.get("transaction_id")  # every payload has one
            if isinstance(escrow_id, str):
                subsegment.put_annotation(ESCROW_ID, escrow_id)
            yield
    finally:
        xray_recorder.context.clear_trace_entities()
