"""taskiq-redis driver: one-by-one enqueue, drain with one worker, billing, idle (no bulk API).

Run with the taskiq venv:
``.bench-venvs/taskiq/bin/python bench/peers/taskiq_driver.py --redis-url URL``.
taskiq-redis's ``RedisStreamBroker`` (the broker its README recommends: a consumer
group, messages acknowledged) with its defaults (XREADGROUP BLOCK 2 s, count 100,
XAUTOCLAIM of messages idle 10 min) and hiredis installed beside redis-py. The
worker is the receiver ``taskiq worker`` runs in each process, started with
``taskiq.api.run_receiver_task`` and the CLI's defaults (100 async tasks, ack when
saved); the producer's ``startup()`` declares the consumer group before the jobs
are sent, as a deployed producer does. The receiver is cancelled once a
middleware counted N saved results; every message is then checked acknowledged.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from importlib.metadata import version
from typing import Any

import _common as c
from redis.asyncio import Redis
from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

QUEUE = "bench"
GROUP = "taskiq"


class _Counter(TaskiqMiddleware):
    """Sets ``done`` after ``target`` results were saved."""

    def __init__(self, target: int) -> None:
        super().__init__()
        self.target = target
        self.count = 0
        self.done = asyncio.Event()

    def post_save(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        self.count += 1
        if self.count >= self.target:
            self.done.set()


def _broker(url: str, middleware: TaskiqMiddleware | None = None) -> RedisStreamBroker:
    broker = RedisStreamBroker(url, queue_name=QUEUE, consumer_group_name=GROUP)
    if middleware is not None:
        broker.add_middlewares(middleware)

    @broker.task(task_name="noop")
    async def noop() -> None:
        return None

    return broker


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url, n = args.redis_url, args.jobs
    billing = c.Billing(url)
    c.flushall(url)
    producer = _broker(url)
    await producer.startup()
    noop = producer.find_task("noop")
    assert noop is not None
    redis = Redis.from_url(url)
    await redis.ping()

    billing.start()
    t0 = c.now()
    for _ in range(n):
        await noop.kiq()
    enqueue_s = c.now() - t0
    enqueue_cmds = billing.stop()

    counter = _Counter(n)
    billing.start()
    t0 = c.now()
    worker = _broker(url, counter)
    await worker.startup()
    task = asyncio.create_task(run_receiver_task(worker))
    await asyncio.wait_for(counter.done.wait(), timeout=args.timeout)
    drain_s = c.now() - t0
    await asyncio.sleep(0.2)  # the last acknowledgements follow the last save
    process_cmds = billing.stop()
    await _stop(task)
    pending = (await redis.xpending(QUEUE, GROUP))["pending"]
    if pending:
        raise SystemExit(f"taskiq: {pending} of {n} messages not acknowledged")
    await worker.shutdown()

    idle = None
    if args.idle_seconds > 0:
        c.flushall(url)
        worker = _broker(url)
        await worker.startup()
        task = asyncio.create_task(run_receiver_task(worker))
        await asyncio.sleep(c.IDLE_WARMUP_S)
        billing.start()
        await asyncio.sleep(args.idle_seconds)
        idle = c.idle_per_min(billing.stop(), args.idle_seconds)
        await _stop(task)
        await worker.shutdown()
    await producer.shutdown()
    await redis.aclose()

    return c.figures(
        n,
        seconds=(enqueue_s, None, drain_s),
        commands=(enqueue_cmds, process_cmds),
        idle=idle,
        versions=(version("taskiq-redis"), version("redis")),
        drain_settings=(
            "taskiq worker receiver defaults (100 async tasks, ack when saved),"
            " RedisStreamBroker defaults (XREADGROUP BLOCK 2 s, count 100); hiredis"
        ),
    )


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
