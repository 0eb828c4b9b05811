"""huey driver: one-by-one enqueue, drain with one consumer, billing, idle (no bulk API).

Run with the huey venv:
``.bench-venvs/huey/bin/python bench/peers/huey_driver.py --redis-url URL``.
A ``RedisHuey`` with its defaults (blocking BRPOP dequeue, results on, None results not
stored) and hiredis installed beside redis-py (redis-py picks its parser itself); the
consumer ``huey_consumer`` would start: ``create_consumer()`` with its defaults (one
worker thread, periodic tasks on), stopped once its COMPLETE signal counted N tasks.
"""

from __future__ import annotations

import threading
import time
from importlib.metadata import version
from typing import Any

import _common as c
from huey import RedisHuey
from huey.signals import SIGNAL_COMPLETE, SIGNAL_ERROR


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    url, n = args.redis_url, args.jobs
    billing = c.Billing(url)
    c.flushall(url)
    huey = RedisHuey("bench", url=url)
    lock, done, count = threading.Lock(), threading.Event(), [0]

    @huey.task()
    def noop() -> None:
        return None

    @huey.signal(SIGNAL_COMPLETE, SIGNAL_ERROR)
    def counted(signal: str, task: Any, *rest: Any) -> None:
        with lock:
            count[0] += 1
            if count[0] >= n:
                done.set()

    huey.storage.conn.ping()

    billing.start()
    t0 = c.now()
    for _ in range(n):
        noop()
    enqueue_s = c.now() - t0
    enqueue_cmds = billing.stop()

    billing.start()
    t0 = c.now()
    consumer = huey.create_consumer()
    consumer.start()
    if not done.wait(timeout=args.timeout):
        raise SystemExit(f"huey: {count[0]} of {n} tasks processed")
    drain_s = c.now() - t0
    consumer.stop(graceful=True)
    process_cmds = billing.stop()

    idle = None
    if args.idle_seconds > 0:
        c.flushall(url)
        consumer = huey.create_consumer()
        consumer.start()
        time.sleep(c.IDLE_WARMUP_S)
        billing.start()
        time.sleep(args.idle_seconds)
        idle = c.idle_per_min(billing.stop(), args.idle_seconds)
        consumer.stop(graceful=True)

    c.emit(
        {
            "enqueue_per_s": c.per_s(n, enqueue_s),
            "bulk_enqueue_per_s": None,
            "drain_per_s": c.per_s(n, drain_s),
            "billed_cmds_enqueue_per_job": c.per_job(enqueue_cmds, n),
            "billed_cmds_process_per_job": c.per_job(process_cmds, n),
            "idle_cmds_per_min": idle,
            "jobs": n,
            "version": version("huey"),
            "redis_py": version("redis"),
            "drain_settings": "huey consumer defaults: 1 worker thread, blocking dequeue; hiredis",
        }
    )


if __name__ == "__main__":
    main()
