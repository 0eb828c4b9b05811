"""arq driver: one-by-one enqueue, drain with one worker, billing, idle (no bulk API).

Run with the arq venv: ``.bench-venvs/arq/bin/python bench/peers/arq_driver.py --redis-url URL``.
arq's worker polls the queue sorted set: it sleeps ``poll_delay`` (documented,
0.5 s by default) between polls, which bounds its drain rate. ``--poll-delay``
sets it (0 = no sleep, a busy loop against Redis). The other worker settings are
arq's defaults (max_jobs=10, one asyncio loop); the worker is stopped once an
``after_job_end`` hook has counted N jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from importlib.metadata import version
from typing import Any

import _common as c
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker


async def noop(ctx: dict[str, Any]) -> None:
    return None


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--poll-delay", type=float, default=0.5, help="arq Worker poll_delay, seconds"
    )


def _worker(settings: RedisSettings, poll_delay: float, after_job_end: Any = None) -> Worker:
    return Worker(
        functions=[noop],
        redis_settings=settings,
        handle_signals=False,
        poll_delay=poll_delay,
        after_job_end=after_job_end,
    )


async def _stop(worker: Worker, task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(asyncio.CancelledError):
        await worker.close()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url, n = args.redis_url, args.jobs
    settings = RedisSettings.from_dsn(url)
    billing = c.Billing(url)
    c.flushall(url)
    pool = await create_pool(settings)
    await pool.ping()

    billing.start()
    t0 = c.now()
    for _ in range(n):
        await pool.enqueue_job("noop")
    enqueue_s = c.now() - t0
    enqueue_cmds = billing.stop()

    done = asyncio.Event()
    finished = 0

    async def after_job_end(ctx: dict[str, Any]) -> None:
        nonlocal finished
        finished += 1
        if finished >= n:
            done.set()

    billing.start()
    t0 = c.now()
    worker = _worker(settings, args.poll_delay, after_job_end)
    task = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(done.wait(), timeout=args.timeout)
    drain_s = c.now() - t0
    await _stop(worker, task)
    process_cmds = billing.stop()
    if worker.jobs_complete != n:
        raise SystemExit(f"arq: {worker.jobs_complete} of {n} jobs complete")

    idle = None
    if args.idle_seconds > 0:
        c.flushall(url)
        worker = _worker(settings, args.poll_delay)
        task = asyncio.create_task(worker.async_run())
        await asyncio.sleep(c.IDLE_WARMUP_S)
        billing.start()
        await asyncio.sleep(args.idle_seconds)
        idle = c.idle_per_min(billing.stop(), args.idle_seconds)
        await _stop(worker, task)
    await pool.aclose()

    return {
        "enqueue_per_s": c.per_s(n, enqueue_s),
        "bulk_enqueue_per_s": None,
        "drain_per_s": c.per_s(n, drain_s),
        "billed_cmds_enqueue_per_job": c.per_job(enqueue_cmds, n),
        "billed_cmds_process_per_job": c.per_job(process_cmds, n),
        "idle_cmds_per_min": idle,
        "jobs": n,
        "version": version("arq"),
        "redis_py": version("redis"),
        "drain_settings": f"arq Worker, poll_delay={args.poll_delay:g}s, max_jobs=10 (default)",
    }


def main() -> None:
    args = c.parse_args(__doc__.splitlines()[0], _options)
    c.emit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
