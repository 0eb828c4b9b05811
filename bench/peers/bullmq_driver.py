"""bullmq (Python) driver: one-by-one and bulk (addBulk) enqueue, drain with one worker, idle.

Run with the bullmq venv:
``.bench-venvs/bullmq/bin/python bench/peers/bullmq_driver.py --redis-url URL``.
bullmq's ``Worker`` with its defaults (concurrency 1, lock 30 s renewed every 15 s,
stalled check every 30 s, ``drainDelay`` 5 s: an idle worker blocks in BZPOPMIN
up to 5 s, so no poll interval) and hiredis installed beside redis-py (redis-py
picks its parser itself). The worker starts as ``Worker(...)`` starts it (autorun)
and is closed once its ``completed`` event counted N jobs. Bulk is one
``Queue.addBulk`` call of all N jobs, bullmq's bulk API.
"""

from __future__ import annotations

import argparse
import asyncio
from importlib.metadata import version
from typing import Any

import _common as c
from bullmq import Queue, Worker

QUEUE = "bench"


async def noop(job: Any, token: str) -> None:
    return None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url, n = args.redis_url, args.jobs
    billing = c.Billing(url)
    c.flushall(url)
    queue = Queue(QUEUE, {"connection": url})
    await queue.client.ping()

    billing.start()
    t0 = c.now()
    for _ in range(n):
        await queue.add("noop", {})
    enqueue_s = c.now() - t0
    enqueue_cmds = billing.stop()

    done = asyncio.Event()
    finished = 0

    def completed(*_: Any) -> None:
        nonlocal finished
        finished += 1
        if finished >= n:
            done.set()

    billing.start()
    t0 = c.now()
    worker = Worker(QUEUE, noop, {"connection": url})
    worker.on("completed", completed)
    await asyncio.wait_for(done.wait(), timeout=args.timeout)
    drain_s = c.now() - t0
    await worker.close()
    process_cmds = billing.stop()
    counts = await queue.getJobCounts("completed")
    if counts.get("completed") != n:
        raise SystemExit(f"bullmq: {counts} of {n} jobs completed")

    c.flushall(url)
    t0 = c.now()
    await queue.addBulk([{"name": "noop", "data": {}} for _ in range(n)])
    bulk_s = c.now() - t0
    waiting = await queue.getJobCounts("wait")
    if waiting.get("wait") != n:
        raise SystemExit(f"bullmq: bulk enqueue left {waiting} of {n} jobs")

    idle = None
    if args.idle_seconds > 0:
        c.flushall(url)
        worker = Worker(QUEUE, noop, {"connection": url})
        await asyncio.sleep(c.IDLE_WARMUP_S)
        billing.start()
        await asyncio.sleep(args.idle_seconds)
        idle = c.idle_per_min(billing.stop(), args.idle_seconds)
        await worker.close(force=True)
    await queue.close()

    return c.figures(
        n,
        seconds=(enqueue_s, bulk_s, drain_s),
        commands=(enqueue_cmds, process_cmds),
        idle=idle,
        versions=(version("bullmq"), version("redis")),
        drain_settings=(
            "bullmq Worker defaults: concurrency 1, blocking BZPOPMIN (drainDelay 5 s); hiredis"
        ),
    )


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
