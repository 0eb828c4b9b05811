"""saq driver: one-by-one enqueue, drain with one worker, billing, idle (no bulk API).

Run with the saq venv: ``.bench-venvs/saq/bin/python bench/peers/saq_driver.py --redis-url URL``.
saq's worker with its defaults: concurrency 10, ``dequeue_timeout=0`` (BLMOVE
blocks until a job arrives: no poll interval), ``poll_interval=0``, upkeep timers
schedule/abort 1 s, worker_info 10 s, sweep 60 s. The worker is stopped once an
``after_process`` hook has counted N jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from importlib.metadata import version
from typing import Any

import _common as c
from saq import Queue, Worker

QUEUE = "bench"


async def noop(ctx: dict[str, Any]) -> None:
    return None


async def _stop(worker: Worker, task: asyncio.Task[None]) -> None:
    await worker.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url, n = args.redis_url, args.jobs
    billing = c.Billing(url)
    c.flushall(url)
    queue = Queue.from_url(url, name=QUEUE)
    await queue.connect()
    await queue.redis.ping()  # type: ignore[attr-defined]

    billing.start()
    t0 = c.now()
    for _ in range(n):
        await queue.enqueue("noop")
    enqueue_s = c.now() - t0
    enqueue_cmds = billing.stop()

    done = asyncio.Event()
    finished = 0

    async def after_process(ctx: dict[str, Any]) -> None:
        nonlocal finished
        finished += 1
        if finished >= n:
            done.set()

    billing.start()
    t0 = c.now()
    worker = Worker(queue, functions=[noop], after_process=[after_process])
    task = asyncio.create_task(worker.start())
    await asyncio.wait_for(done.wait(), timeout=args.timeout)
    drain_s = c.now() - t0
    await _stop(worker, task)
    process_cmds = billing.stop()
    complete = await queue.count("incomplete")
    if complete != 0:
        raise SystemExit(f"saq: {complete} of {n} jobs still incomplete")

    idle = None
    if args.idle_seconds > 0:
        c.flushall(url)
        idle_queue = Queue.from_url(url, name=QUEUE)
        await idle_queue.connect()
        worker = Worker(idle_queue, functions=[noop])
        task = asyncio.create_task(worker.start())
        await asyncio.sleep(c.IDLE_WARMUP_S)
        billing.start()
        await asyncio.sleep(args.idle_seconds)
        idle = c.idle_per_min(billing.stop(), args.idle_seconds)
        await _stop(worker, task)
        await idle_queue.disconnect()
    await queue.disconnect()

    return {
        "enqueue_per_s": c.per_s(n, enqueue_s),
        "bulk_enqueue_per_s": None,
        "drain_per_s": c.per_s(n, drain_s),
        "billed_cmds_enqueue_per_job": c.per_job(enqueue_cmds, n),
        "billed_cmds_process_per_job": c.per_job(process_cmds, n),
        "idle_cmds_per_min": idle,
        "jobs": n,
        "version": version("saq"),
        "redis_py": version("redis"),
        "drain_settings": (
            "saq Worker defaults: concurrency 10, dequeue_timeout 0 (blocking BLMOVE, no poll)"
        ),
    }


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
