"""rq driver: one-by-one and bulk enqueue, drain with one worker, billing, idle.

Run with the rq venv: ``.bench-venvs/rq/bin/python bench/peers/rq_driver.py --redis-url URL``.
``--worker fork`` is rq's default ``Worker`` (a forked work horse per job),
``--worker simple`` its in-process ``SimpleWorker``. The worker is run with
``work(max_jobs=N)``: the normal blocking loop (BLMOVE, dequeue timeout 405 s by
default, which is no poll interval), leaving once N jobs are done.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from importlib.metadata import version

import _common as c
from _jobs import noop
from redis import Redis
from rq import Queue, SimpleWorker, Worker

QUEUE = "bench"
WORKERS = {"fork": Worker, "simple": SimpleWorker}


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--worker", choices=sorted(WORKERS), default="fork")


def _idle_worker(url: str, worker_cls: type[Worker]) -> None:
    redis = Redis.from_url(url)
    worker_cls([Queue(QUEUE, connection=redis)], connection=redis).work(logging_level="WARNING")


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0], _options)
    url, n = args.redis_url, args.jobs
    worker_cls = WORKERS[args.worker]
    billing = c.Billing(url)
    c.flushall(url)
    redis = Redis.from_url(url)
    redis.ping()
    queue = Queue(QUEUE, connection=redis)

    billing.start()
    t0 = c.now()
    for _ in range(n):
        queue.enqueue(noop)
    enqueue_s = c.now() - t0
    enqueue_cmds = billing.stop()

    billing.start()
    t0 = c.now()
    worker = worker_cls(
        [Queue(QUEUE, connection=Redis.from_url(url))], connection=Redis.from_url(url)
    )
    worker.work(max_jobs=n, logging_level="WARNING")
    drain_s = c.now() - t0
    process_cmds = billing.stop()
    done = queue.finished_job_registry.count
    if done != n:
        raise SystemExit(f"rq: {done} of {n} jobs finished")

    c.flushall(url)
    t0 = c.now()
    queue.enqueue_many([Queue.prepare_data(noop) for _ in range(n)])
    bulk_s = c.now() - t0
    if queue.count != n:
        raise SystemExit(f"rq: bulk enqueue left {queue.count} of {n} jobs")

    idle = None
    if args.idle_seconds > 0:
        c.flushall(url)
        proc = multiprocessing.get_context("fork").Process(
            target=_idle_worker, args=(url, worker_cls), daemon=True
        )
        proc.start()
        time.sleep(c.IDLE_WARMUP_S)
        billing.start()
        time.sleep(args.idle_seconds)
        idle = c.idle_per_min(billing.stop(), args.idle_seconds)
        proc.kill()
        proc.join(5)

    c.emit(
        {
            "enqueue_per_s": c.per_s(n, enqueue_s),
            "bulk_enqueue_per_s": c.per_s(n, bulk_s),
            "drain_per_s": c.per_s(n, drain_s),
            "billed_cmds_enqueue_per_job": c.per_job(enqueue_cmds, n),
            "billed_cmds_process_per_job": c.per_job(process_cmds, n),
            "idle_cmds_per_min": idle,
            "jobs": n,
            "version": version("rq"),
            "redis_py": version("redis"),
            "drain_settings": (
                f"rq.{worker_cls.__name__}, work(max_jobs=N),"
                " defaults (blocking BLMOVE, no poll interval)"
            ),
        }
    )


if __name__ == "__main__":
    main()
