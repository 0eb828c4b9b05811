"""The worker pool: the bound holds, and a stuck worker is replaced rather than waited for."""

from __future__ import annotations

import threading

import pytest
from jobs_core import Job, JobQueue
from jobs_core.processor import Processor
from jobs_core.processor.pool import WorkerPool

from .support import AUDIT, Gate, enqueue


def test_the_pool_runs_exactly_its_bound_at_once(queue: JobQueue) -> None:
    """A barrier of 3 only opens when 3 handlers run together (overlap, not timing);
    the gate proves no fourth ever joined them (the bound)."""
    enqueue(queue, 21)
    barrier = threading.Barrier(3, timeout=10)
    gate = Gate()

    def handler(job: Job) -> None:
        with gate:
            barrier.wait()

    result = Processor(queue, {AUDIT: handler}, concurrency=3).process_batch(limit=21)

    assert result.tally.succeeded == 21
    assert gate.max_in_flight == 3


def test_abandon_starts_a_replacement_and_the_stuck_thread_exits_later() -> None:
    pool = WorkerPool(2)
    stuck = threading.Event()
    started = threading.Event()
    holder: list[threading.Thread] = []

    def hang() -> None:
        holder.append(threading.current_thread())
        started.set()
        stuck.wait(10)

    pool.submit(hang)
    assert started.wait(5)
    pool.abandon(holder[0])
    assert (pool.live, pool.abandoned) == (2, 1)

    done = threading.Barrier(3, timeout=5)  # two live workers + this thread
    pool.submit(done.wait)
    pool.submit(done.wait)
    done.wait()  # both live workers took work while the stuck one still hangs

    stuck.set()
    holder[0].join(5)
    assert not holder[0].is_alive() and pool.abandoned == 0
    assert pool.live == 2
    pool.shutdown()


def test_work_that_raises_does_not_kill_the_worker() -> None:
    pool = WorkerPool(1)
    ran = threading.Event()

    def boom() -> None:
        raise RuntimeError("x")

    pool.submit(boom)
    pool.submit(ran.set)
    assert ran.wait(5)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(ran.set)


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError):
        WorkerPool(0)
