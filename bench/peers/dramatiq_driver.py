"""dramatiq driver: one-by-one enqueue, drain with one worker, billing, idle (no bulk API).

Run with the dramatiq venv:
``.bench-venvs/dramatiq/bin/python bench/peers/dramatiq_driver.py --redis-url URL``.
One ``dramatiq.Worker`` (the class the CLI starts in each process) with its
defaults: 8 threads, prefetch 16, ``worker_timeout`` 1000 ms (documented as how
long an idle consumer backs off between fetches: it caps the idle poll and never
delays a non-empty queue). The broker keeps its default middleware; the worker is
stopped once a middleware has counted N processed messages.
"""

from __future__ import annotations

import threading
import time
from importlib.metadata import version
from typing import Any

import _common as c
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

QUEUE = "bench"


class _Counter(Middleware):
    """Sets ``done`` after ``target`` messages were processed (or skipped)."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def _one(self) -> None:
        with self.lock:
            self.count += 1
            if self.count >= self.target:
                self.done.set()

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: Any = None
    ) -> None:
        self._one()

    def after_skip_message(self, broker: Any, message: Any) -> None:
        self._one()


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0])
    url, n = args.redis_url, args.jobs
    billing = c.Billing(url)
    c.flushall(url)
    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)
    counter = _Counter(n)
    broker.add_middleware(counter)

    @dramatiq.actor(queue_name=QUEUE)
    def noop() -> None:
        return None

    broker.client.ping()

    billing.start()
    t0 = c.now()
    for _ in range(n):
        noop.send()
    enqueue_s = c.now() - t0
    enqueue_cmds = billing.stop()

    billing.start()
    t0 = c.now()
    worker = dramatiq.Worker(broker)
    worker.start()
    if not counter.done.wait(timeout=args.timeout):
        raise SystemExit(f"dramatiq: {counter.count} of {n} jobs processed")
    drain_s = c.now() - t0
    worker.stop()
    process_cmds = billing.stop()

    idle = None
    if args.idle_seconds > 0:
        c.flushall(url)
        # A fresh broker: a second Worker on the first one would stack its middleware.
        idle_broker = RedisBroker(url=url)
        dramatiq.actor(noop.fn, broker=idle_broker, queue_name=QUEUE)
        worker = dramatiq.Worker(idle_broker)
        worker.start()
        time.sleep(c.IDLE_WARMUP_S)
        billing.start()
        time.sleep(args.idle_seconds)
        idle = c.idle_per_min(billing.stop(), args.idle_seconds)
        worker.stop()
        idle_broker.close()
    broker.close()

    c.emit(
        {
            "enqueue_per_s": c.per_s(n, enqueue_s),
            "bulk_enqueue_per_s": None,
            "drain_per_s": c.per_s(n, drain_s),
            "billed_cmds_enqueue_per_job": c.per_job(enqueue_cmds, n),
            "billed_cmds_process_per_job": c.per_job(process_cmds, n),
            "idle_cmds_per_min": idle,
            "jobs": n,
            "version": version("dramatiq"),
            "redis_py": version("redis"),
            "drain_settings": (
                "dramatiq.Worker defaults: 8 threads, prefetch 16,"
                " worker_timeout 1000 ms (idle back-off cap)"
            ),
        }
    )


if __name__ == "__main__":
    main()
