"""X-Ray through Powertools Tracer with the real aws-xray-sdk recorder: each handler opens
its subsegment, every job runs in one of its own annotated with the job id and the escrow
id, and the escrow API annotates its request with the escrow id."""

from __future__ import annotations

from typing import Any

import pytest
from aws_xray_sdk.core import xray_recorder
from jobs_core import Job, JobQueue, tracing
from operator_api import wiring

from functions.job_processor import app as processor_app
from tests.support.xray import annotated, segment
from tests.unit.processor.support import AUDIT, FakeContext, RecordingLambda, enqueue, load_event

__all__ = ["segment"]  # the fixture


def test_each_job_runs_in_a_subsegment_with_its_job_and_escrow_ids(
    monkeypatch: pytest.MonkeyPatch, queue: JobQueue, segment: Any
) -> None:
    ids = enqueue(queue, 4)
    env = {"JOB_PROCESSOR_MAX_FANOUT": "0", "JOB_PROCESSOR_CONCURRENCY": "4"}
    seen: list[str] = []

    def handler(job: Job) -> None:
        # The job's own calls (boto3, httpx) land under its subsegment.
        seen.append(xray_recorder.current_subsegment().annotations["job_id"])

    svc = wiring.build_services(
        env, handlers={AUDIT: handler}, queue=queue, lambda_client=RecordingLambda()
    )
    monkeypatch.setattr(processor_app, "services", lambda: svc)

    processor_app.lambda_handler(load_event("scheduled"), FakeContext(30))  # type: ignore[arg-type]

    [handler_span] = segment.subsegments
    assert handler_span.name == "## lambda_handler"
    jobs = {a["job_id"]: a for a in annotated(handler_span) if "job_id" in a}
    assert set(jobs) == set(ids) == set(seen)
    for job_id, found in jobs.items():
        index = ids.index(job_id)
        assert found == {
            "name": "## audit_log_created",
            "job_id": job_id,
            "job_type": "audit_log_created",
            "attempt": 1,
            "escrow_id": f"esc-{index}",
        }


def test_with_tracing_off_jobs_run_untraced(queue: JobQueue) -> None:
    """Outside Lambda tracing is off: no tracer is built, no X-Ray context is needed."""
    assert tracing.active_tracer() is None
    ids = enqueue(queue, 2)
    env = {"JOB_PROCESSOR_MAX_FANOUT": "0"}
    ran: list[str] = []
    svc = wiring.build_services(
        env, handlers={AUDIT: lambda j: ran.append(j.id)}, queue=queue,
        lambda_client=RecordingLambda(),
    )  # fmt: skip
    svc.processor.process_batch(limit=10)
    assert sorted(ran) == sorted(ids)


def test_tracing_is_on_inside_lambda_only() -> None:
    from jobs_core.config import tracing_enabled

    assert tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task"})
    assert not tracing_enabled({})
    assert not tracing_enabled({"LAMBDA_TASK_ROOT": "/var/task", "AWS_SAM_LOCAL": "true"})
    off = {"LAMBDA_TASK_ROOT": "/var/task", "POWERTOOLS_TRACE_DISABLED": "true"}
    assert not tracing_enabled(off)
