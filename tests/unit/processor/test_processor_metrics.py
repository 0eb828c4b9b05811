"""EMF metrics per invocation: the emitted names, units and dimensions match the documented
table in ``jobs_core.processor.metrics`` (alarms are built on it)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from jobs_core import JobType
from jobs_core.processor import metrics as pm
from jobs_core.processor.report import DrainReport, JobOutcome, JobResult, StopReason

AUDIT = JobType.AUDIT_LOG_CREATED
EMAIL = JobType.SEND_RELEASE_EMAIL


def documented() -> set[tuple[str, str, tuple[str, ...]]]:
    rows = set()
    for line in (pm.__doc__ or "").splitlines():
        m = re.match(r"^``(\w+)``\s+(\w+)\s+([a-z_]+(?:, [a-z_]+)*)(?:\s|$)", line)
        if m:
            rows.add((m[1], m[2], tuple(m[3].split(", "))))
    return rows


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The EMF lines written, single values unwrapped (Powertools writes ``[4.0]``)."""
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    for blob in blobs:
        for key, value in blob.items():
            if isinstance(value, list) and len(value) == 1:
                blob[key] = value[0]
    return blobs


def result(job_type: JobType, outcome: JobOutcome, ms: float = 12.5, **kw: Any) -> JobResult:
    return JobResult("01J", job_type, 1, outcome, duration_ms=ms, **kw)


def sample_report() -> DrainReport:
    from jobs_core.processor.report import BatchResult

    report = DrainReport(stop_reason=StopReason.BUDGET, elapsed_s=1.25, backlog=40)
    report.add(
        BatchResult(
            [
                result(AUDIT, JobOutcome.SUCCEEDED),
                result(AUDIT, JobOutcome.RETRIED, timed_out=True),
                result(EMAIL, JobOutcome.DEAD_LETTERED),
                result(EMAIL, JobOutcome.RELEASED, ms=0),
                result(AUDIT, JobOutcome.LEASE_LOST),
            ]
        )
    )
    return report


def test_emitted_metrics_match_the_documented_table(capsys: pytest.CaptureFixture[str]) -> None:
    pm.publish_drain(sample_report(), queue="escrow-jobs", fanout=2)
    seen = set()
    for blob in emitted(capsys):
        [directive] = blob["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "EscrowJobs"
        [dims] = directive["Dimensions"]
        for metric in directive["Metrics"]:
            seen.add((metric["Name"], metric["Unit"], tuple(sorted(dims))))
    expected = {(n, u, tuple(sorted(d))) for n, u, d in documented()}
    assert len(expected) == 15
    assert seen == expected


def test_values_per_invocation_and_per_type(capsys: pytest.CaptureFixture[str]) -> None:
    pm.publish_drain(sample_report(), queue="escrow-jobs", fanout=2)
    totals, *per_type = emitted(capsys)
    assert totals["service"] == "job-processor" and totals["queue"] == "escrow-jobs"
    assert (totals["JobsProcessed"], totals["JobsSucceeded"], totals["JobsRetried"]) == (4, 1, 1)
    assert (totals["JobsDeadLettered"], totals["JobsReleased"]) == (1, 1)
    assert (totals["JobsTimedOut"], totals["LeasesLost"], totals["ProcessorFanOut"]) == (1, 1, 2)
    assert totals["DrainDuration"] == 1250.0
    by_type = {b["job_type"]: b for b in per_type}
    assert set(by_type) == {"audit_log_created", "send_release_email"}
    assert by_type["audit_log_created"]["JobsProcessed"] == 3
    assert by_type["audit_log_created"]["JobDuration"] == [12.5, 12.5, 12.5]
    assert by_type["send_release_email"]["JobsDeadLettered"] == 1


def test_an_idle_invocation_still_writes_zeros(capsys: pytest.CaptureFixture[str]) -> None:
    pm.publish_drain(DrainReport(), queue="q")
    [totals] = emitted(capsys)
    assert totals["JobsProcessed"] == 0 and totals["JobsDeadLettered"] == 0


def test_many_durations_are_split_across_lines_with_their_dimensions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from jobs_core.processor.report import BatchResult

    report = DrainReport()
    report.add(BatchResult([result(AUDIT, JobOutcome.SUCCEEDED, ms=i) for i in range(250)]))
    pm.publish_drain(report, queue="q")
    blobs = [b for b in emitted(capsys) if "JobDuration" in b]
    assert sum(len(b["JobDuration"]) for b in blobs) == 250
    assert all(b["job_type"] == "audit_log_created" and b["queue"] == "q" for b in blobs)
