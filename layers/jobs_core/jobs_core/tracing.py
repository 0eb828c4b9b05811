"""Tracing with Powertools Tracer (AWS X-Ray): one escrow followed from its request to its
jobs and their effects.

The three functions wrap their handler with ``capture_lambda_handler``; botocore
(DynamoDB, SES, Lambda), httpx (Upstash, partner webhooks) and requests (Stripe) calls
become subsegments. Annotations, searchable in X-Ray (``annotation.escrow_id = "esc_..."``):

- the escrow API annotates its request with ``escrow_id``;
- the processor runs each job in a subsegment ``## <job type>`` annotated with
  ``job_id``, ``job_type``, ``attempt`` and ``escrow_id`` (the payload's ``transaction_id``).

The Tracer (and the X-Ray SDK, which loads botocore) is built on the first traced
invocation, and only where tracing is on (inside Lambda, see ``config.tracing_enabled``):
elsewhere (tests, the local stack, the CLI) every call here is a no-op that imports
nothing.

>>> @capture_lambda_handler                 # doctest: +SKIP
... def lambda_handler(event, context): ...
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .config import tracing_enabled
from .models import ClaimedJob

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

PATCHED_MODULES = ("botocore", "httpx", "requests")
ESCROW_ID = "escrow_id"
JOB_ID = "job_id"

R = TypeVar("R")
_lock = threading.Lock()
_tracer: Tracer | None = None


def set_tracer(tracer: Tracer | None) -> None:
    """Install the tracer to use (tests); None: build one on next use where tracing is on."""
    global _tracer
    with _lock:
        _tracer = tracer


def active_tracer() -> Tracer | None:
    """The tracer when tracing is on (built on first use), else None."""
    global _tracer
    if _tracer is None:
        if not tracing_enabled():
            return None
        with _lock:
            if _tracer is None:
                from aws_lambda_powertools import Tracer

                _tracer = Tracer(patch_modules=PATCHED_MODULES)
    return None if _tracer.disabled else _tracer


def capture_lambda_handler(handler: Callable[[Any, Any], R]) -> Callable[[Any, Any], R]:
    """``Tracer.capture_lambda_handler`` (the response not captured: answers may carry
    client secrets), applied only when tracing is on."""

    @functools.wraps(handler)
    def run(event: Any, context: Any) -> R:
        tracer = active_tracer()
        if tracer is None:
            return handler(event, context)
        traced = tracer.capture_lambda_handler(handler, capture_response=False)
        result: R = traced(event, context)
        return result

    return run


def annotate_escrow(escrow_id: str) -> None:
    """Annotate the current (request) subsegment with the escrow it concerns."""
    tracer = active_tracer()
    if tracer is not None:
        tracer.put_annotation(ESCROW_ID, escrow_id)


def current_entity() -> Any | None:
    """The X-Ray segment or subsegment open on this thread (None when tracing is off).

    Jobs run on pool threads, which have no X-Ray context of their own: the batch takes
    this on its own thread and hands it to each job's ``job_span``.
    """
    if active_tracer() is None:
        return None
    from aws_xray_sdk.core import xray_recorder

    return xray_recorder.get_trace_entity()


@contextlib.contextmanager
def job_span(claimed: ClaimedJob, parent: Any | None) -> Iterator[None]:
    """Run one job inside a subsegment of ``parent``, annotated with its ids."""
    if parent is None or active_tracer() is None:
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
