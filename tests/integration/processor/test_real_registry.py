"""The Lambda wired with the deploy's real handler registry (jobs_core.workers), locally:
audit rows go to files under LOCAL_STATE_DIR, emails to the local mailbox."""

from __future__ import annotations

import json
from pathlib import Path

from jobs_core import JobQueue, JobState, JobType
from operator_api import events, wiring

from tests.unit.processor.support import FakeContext, RecordingLambda, load_event, payload


def test_scheduled_drain_runs_the_real_workers(queue: JobQueue, tmp_path: Path) -> None:
    env = {
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
        "MAILBOX_DIR": str(tmp_path / "mailbox"),
        "EMAIL_FROM": "Escrow <no-reply@example.com>",
        "JOB_PROCESSOR_IDLE_EXIT_S": "0",
    }
    svc = wiring.build_services(env, queue=queue, lambda_client=RecordingLambda())
    audit, email = queue.enqueue_jobs(
        [
            (JobType.AUDIT_LOG_CREATED, payload(JobType.AUDIT_LOG_CREATED)),
            (JobType.SEND_RELEASE_EMAIL, payload(JobType.SEND_RELEASE_EMAIL)),
        ]
    )

    answer = events.handle(load_event("scheduled"), FakeContext(30), svc)  # type: ignore[arg-type]

    assert answer["succeeded"] == 2, answer
    for job_id in (audit, email):
        job = queue.get_job_status(job_id)
        assert job is not None and job.state is JobState.SUCCEEDED
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written, "the workers wrote nothing"
    assert any(audit in p.read_text(errors="replace") or audit in p.name for p in written)
    assert json.dumps(answer)  # the summary is JSON-serialisable for Lambda
