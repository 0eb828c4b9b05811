"""Many processes on one real Redis: exactly-once completion, and no job lost to a crash."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest
from jobs_core import ClaimedJob, JobQueue, JobState, LeaseLostError, RedisBackend, Settings

from tests.integration.queue_workers import drain

AUDIT = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}


def make_queue(url: str, namespace: str) -> JobQueue:
    return JobQueue(RedisBackend.from_url(url, timeout_s=5), Settings(namespace=namespace))


@pytest.mark.slow
def test_eight_processes_complete_ten_thousand_jobs_exactly_once(redis_url: str) -> None:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    queue = make_queue(redis_url, namespace)
    ids = queue.enqueue_jobs([("audit_log_created", AUDIT)] * 10_000)
    assert len(set(ids)) == 10_000

    with ProcessPoolExecutor(max_workers=8, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(drain, redis_url, namespace, 25, 5) for _ in range(8)]
        per_process = [f.result(timeout=300) for f in futures]

    completions = Counter(job_id for done in per_process for job_id in done)
    assert set(completions) == set(ids)
    assert max(completions.values()) == 1
    assert sum(1 for done in per_process if done) >= 2  # the work really was shared
    stats = queue.get_queue_stats()
    assert (stats.ready, stats.scheduled, stats.running, stats.dead_letter) == (0, 0, 0, 0)
    sample = ids[::1000]
    assert all(queue.get_job_status(i).state is JobState.SUCCEEDED for i in sample)  # type: ignore[union-attr]


@pytest.mark.slow
def test_killed_processor_loses_no_job_and_its_tokens_are_refused(redis_url: str) -> None:
    namespace = f"t-{uuid.uuid4().hex[:8]}"
    queue = make_queue(redis_url, namespace)
    ids = queue.enqueue_jobs([("audit_log_created", AUDIT)] * 30)

    lease_s = 1.5
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.queue_workers",
            redis_url,
            namespace,
            "20",
            str(lease_s),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = child.stdout.readline() if child.stdout else ""
        held = [ClaimedJob.model_validate(c) for c in json.loads(line)]
        assert len(held) == 20
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)

    assert queue.get_queue_stats().running == 20
    time.sleep(lease_s + 0.2)  # let the dead processor's leases run out

    completed: list[str] = []
    for _ in range(10):
        for claimed in queue.claim(50):
            queue.complete(claimed)
            completed.append(claimed.id)
    assert sorted(completed) == sorted(ids)
    for claimed in queue.claim(50):
        raise AssertionError(f"unexpected job {claimed.id}")
    for stale in held:
        with pytest.raises(LeaseLostError):
            queue.complete(stale)
        job = queue.get_job_status(stale.id)
        assert job is not None and job.state is JobState.SUCCEEDED and job.attempts == 2
