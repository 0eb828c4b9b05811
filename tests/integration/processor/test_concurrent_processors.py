"""Several processors drain one real Redis queue at once: every job runs exactly once."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest
import redis
from jobs_core import Job, JobQueue, JobState
from jobs_core.processor import Processor, ProcessorConfig

from tests.unit.processor.support import AUDIT, enqueue

from .conftest import redis_queue

CONFIG = ProcessorConfig(concurrency=4, batch_size=8, idle_exit_s=0.5, idle_poll_min_s=0.05)


def test_threads_four_processors_each_job_exactly_once(
    redis_url: str, namespace: str, queue: JobQueue
) -> None:
    ids = enqueue(queue, 800)
    runs: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(job: Job) -> None:
        with lock:
            runs[job.id] += 1
        if random.random() < 0.05:
            time.sleep(0.005)  # stir the interleaving

    processors = [
        Processor(redis_queue(redis_url, namespace), {AUDIT: handler}, config=CONFIG)
        for _ in range(4)
    ]
    reports = []
    threads = [
        threading.Thread(target=lambda p=p: reports.append(p.drain(120))) for p in processors
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    assert set(runs) == set(ids) and max(runs.values()) == 1
    assert sum(r.total.succeeded for r in reports) == 800
    assert sum(1 for r in reports if r.total.succeeded) >= 2  # the work was shared
    stats = queue.get_queue_stats()
    assert (stats.ready, stats.scheduled, stats.running, stats.dead_letter) == (0, 0, 0, 0)


def drain_in_process(url: str, namespace: str, runs_key: str) -> int:
    """Runs in a spawned process: drain until idle; each run is counted in Redis."""
    counter = redis.Redis.from_url(url)

    def handler(job: Job) -> None:
        counter.hincrby(runs_key, job.id, 1)

    report = Processor(redis_queue(url, namespace), {AUDIT: handler}, config=CONFIG).drain(120)
    return report.total.succeeded


@pytest.mark.slow
def test_processes_three_processors_each_job_exactly_once(
    redis_url: str, namespace: str, queue: JobQueue
) -> None:
    ids = enqueue(queue, 1500)
    runs_key = f"runs-{uuid.uuid4().hex[:8]}"

    with ProcessPoolExecutor(max_workers=3, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(drain_in_process, redis_url, namespace, runs_key) for _ in range(3)]
        done = [f.result(timeout=180) for f in futures]

    runs = {
        k.decode(): int(v) for k, v in redis.Redis.from_url(redis_url).hgetall(runs_key).items()
    }
    assert set(runs) == set(ids) and set(runs.values()) == {1}
    assert sum(done) == 1500
    sample = ids[::150]
    assert all(queue.get_job_status(i).state is JobState.SUCCEEDED for i in sample)  # type: ignore[union-attr]
