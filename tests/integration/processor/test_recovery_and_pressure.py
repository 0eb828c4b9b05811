"""The processor when things go wrong for real: a holder SIGKILLed behind a backlog, a
Redis out of memory (maxmemory, noeviction), and a delayed job whose kick finds it not
yet due."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from jobs_core import (
    BackendError,
    Job,
    JobQueue,
    JobType,
    Kicker,
    Processor,
    ProcessorConfig,
    publish_drain,
)

from tests.integration.processor.conftest import redis_queue
from tests.support.redis_server import RedisServer

AUDIT = JobType.AUDIT_LOG_CREATED
PAYLOAD = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}
ROOT = Path(__file__).resolve().parents[3]

HOLDER = textwrap.dedent(
    """
    import sys, time
    import redis
    from jobs_core import JobType, Processor, ProcessorConfig
    from tests.integration.processor.conftest import redis_queue

    url, namespace = sys.argv[1], sys.argv[2]
    queue = redis_queue(url, namespace)
    flag = redis.Redis.from_url(url)

    def hang(job):
        flag.incr(namespace + ":started")
        time.sleep(600)

    config = ProcessorConfig(concurrency=8, batch_size=16, job_timeout_s=0.5,
                             lease_margin_s=0.5, safety_margin_s=0.1)
    Processor(queue, {JobType.AUDIT_LOG_CREATED: hang}, config=config).drain(120)
    """
)


@pytest.mark.slow
def test_a_sigkilled_holders_jobs_run_about_one_lease_later_behind_a_backlog(
    redis_url: str, namespace: str, queue: JobQueue
) -> None:
    """16 jobs are leased (1.5 s) by a processor that is then SIGKILLed; 3000 jobs due
    before that lease ends queue up behind them. The next drain runs the 16 about one
    lease after the kill, while most of the backlog still waits."""
    victims = set(queue.enqueue_jobs([(AUDIT, PAYLOAD)] * 16))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, redis_url, namespace], env=env)
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        deadline = time.monotonic() + 30
        while int(raw.get(f"{namespace}:started") or 0) < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert queue.get_queue_stats().running == 16
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    killed = time.monotonic()
    queue.enqueue_jobs([(AUDIT, PAYLOAD)] * 3000)

    ran: dict[str, float] = {}
    backlog_before = 0

    def handler(job: Job) -> None:
        nonlocal backlog_before
        if job.id in victims:
            ran[job.id] = time.monotonic() - killed
        else:
            if len(ran) < len(victims):
                backlog_before += 1
            time.sleep(0.0015)

    config = ProcessorConfig(concurrency=1, batch_size=16, job_timeout_s=0.5, safety_margin_s=0.1)
    Processor(queue, {AUDIT: handler}, config=config).drain(4.5)

    lease_s = 2 * 0.5 + 0.5  # the holder's lease: 2 rounds of its pool + its margin
    assert set(ran) == victims
    assert max(ran.values()) < lease_s + 1.5, ran
    assert backlog_before < 2000  # far from behind the whole backlog
    for job_id in victims:
        job = queue.get_job_status(job_id)
        assert job is not None and job.attempts == 2  # the killed attempt counted


def test_a_full_redis_still_drains_and_says_so_loudly(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Under ``maxmemory`` with ``noeviction`` and memory full, enqueues fail, but claims
    and settles go on (their first write frees memory), the whole backlog drains, and the
    drain logs an error and publishes RedisOutOfMemory."""
    with RedisServer() as server:
        raw = redis.Redis.from_url(server.url)
        namespace = f"t-{uuid.uuid4().hex[:8]}"
        queue = redis_queue(server.url, namespace)
        ids = queue.enqueue_jobs([(AUDIT, PAYLOAD)] * 200)
        used = int(raw.info("memory")["used_memory"])
        raw.config_set("maxmemory-policy", "noeviction")
        raw.config_set("maxmemory", used - 100_000)  # full: nothing can be evicted
        with pytest.raises(redis.ResponseError, match="maxmemory"):
            raw.set("one-more", "x")
        with pytest.raises(BackendError, match="maxmemory"):
            queue.enqueue_job(AUDIT, PAYLOAD)

        ran: list[str] = []
        processor = Processor(queue, {AUDIT: lambda job: ran.append(job.id)})
        report = processor.drain(30)
        publish_drain(report, queue=namespace)

        assert sorted(ran) == sorted(ids)
        assert report.total.succeeded == 200 and report.redis_full >= 1
        assert queue.get_queue_stats().ready == 0
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert [r.getMessage() for r in errors if "out of memory" in r.getMessage()]
        out = capsys.readouterr().out
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        emf = next(line for line in lines if "_aws" in line)
        assert emf["RedisOutOfMemory"][0] >= 1


class LambdaLikeInvoker:
    """Stands in for Lambda's asynchronous invoke: runs the processor's drain on a thread,
    as an invocation with a 30 s budget would, and answers 202 at once."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor
        self.threads: list[threading.Thread] = []

    def invoke(self, **kwargs: Any) -> dict[str, int]:
        thread = threading.Thread(target=self.processor.drain, args=(30,), daemon=True)
        thread.start()
        self.threads.append(thread)
        return {"StatusCode": 202}


def test_a_delayed_job_enqueued_with_a_kick_runs_about_on_time(queue: JobQueue) -> None:
    started: list[float] = []
    processor = Processor(queue, {AUDIT: lambda job: started.append(time.time())})
    invoker = LambdaLikeInvoker(processor)
    kicker = Kicker("job-processor", client=invoker)

    result = queue.enqueue_batch([(AUDIT, PAYLOAD, {"delay_s": 2.0})], read_marker=True)
    due = time.time() + 2.0
    assert kicker.kick(result)
    invoker.threads[0].join(timeout=10)

    assert len(started) == 1
    assert -0.05 <= started[0] - due < 1.0  # not at the next minute's schedule
