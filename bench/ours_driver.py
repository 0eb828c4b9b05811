"""escrow-jobs' own numbers, in the same shape as the peer drivers' JSON.

Runs in the project venv: ``python -m bench.ours_driver --redis-url URL --jobs N``.
Billed commands are ``INFO commandstats`` deltas (EVALSHA and every call inside the
script alike, as Upstash bills); round trips are counted at the backend.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from typing import Any

import redis
from jobs_core import JobQueue, Outcome, RedisBackend, Settings
from jobs_core.queue.backends.counting import CountingBackend

AUDIT = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}
NOT_BILLED = {"info", "config", "flushall", "ping", "hello", "client", "select"}


def billed(raw: redis.Redis) -> int:
    stats: dict[str, Any] = raw.info("commandstats")
    total = 0
    for name, values in stats.items():
        command = name.removeprefix("cmdstat_").split("|")[0]
        if command not in NOT_BILLED:
            total += int(values["calls"])
    return total


class Meter:
    def __init__(self, raw: redis.Redis, counter: CountingBackend) -> None:
        self.raw, self.counter = raw, counter

    def __enter__(self) -> Meter:
        self.cmds0, self.trips0, self.t0 = (
            billed(self.raw),
            self.counter.round_trips,
            time.perf_counter(),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cmds = billed(self.raw) - self.cmds0
        self.trips = self.counter.round_trips - self.trips0


def drain(queue: JobQueue, batch: int) -> int:
    done = 0
    while claimed := queue.claim(batch):
        queue.settle([Outcome(c, "done") for c in claimed])
        done += len(claimed)
    return done


def run_ours(url: str, jobs: int, *, batch: int = 100) -> dict[str, Any]:
    raw = redis.Redis.from_url(url, decode_responses=True)
    raw.flushall()
    counter = CountingBackend(RedisBackend.from_url(url, timeout_s=10))
    queue = JobQueue(counter, Settings(namespace=f"bench-{uuid.uuid4().hex[:6]}"))
    queue.get_queue_stats()
    for _ in range(2):  # load every script once, outside the measured phases
        queue.enqueue_job("audit_log_created", AUDIT, dedupe_key=uuid.uuid4().hex)
    drain(queue, batch)
    result: dict[str, Any] = {"name": "escrow-jobs", "jobs": jobs}

    with Meter(raw, counter) as m:
        for _ in range(jobs):
            queue.enqueue_job("audit_log_created", AUDIT)
    result |= {
        "enqueue_per_s": jobs / m.seconds,
        "billed_cmds_enqueue_per_job": m.cmds / jobs,
        "round_trips_enqueue": m.trips / jobs,
    }
    with Meter(raw, counter) as m:
        done = drain(queue, batch)
    assert done == jobs, (done, jobs)
    result |= {
        "drain_per_s": jobs / m.seconds,
        "billed_cmds_process_per_job": m.cmds / jobs,
        "round_trips_process_per_job": m.trips / jobs,
    }

    with Meter(raw, counter) as m:
        for i in range(jobs):
            queue.enqueue_job("audit_log_created", AUDIT, dedupe_key=f"d-{i}")
    result |= {
        "enqueue_dedupe_per_s": jobs / m.seconds,
        "billed_cmds_enqueue_dedupe_per_job": m.cmds / jobs,
    }
    with Meter(raw, counter) as m:
        done = drain(queue, 10)
    result |= {
        "billed_cmds_process_batch10_per_job": m.cmds / jobs,
        "round_trips_process_batch10_per_job": m.trips / jobs,
    }

    specs = [("audit_log_created", AUDIT)] * jobs
    with Meter(raw, counter) as m:
        for start in range(0, jobs, 1000):
            queue.enqueue_jobs(specs[start : start + 1000])
    result |= {
        "bulk_enqueue_per_s": jobs / m.seconds,
        "round_trips_bulk_per_call": m.trips / -(-jobs // 1000),
    }
    drain(queue, batch)

    three = [("audit_log_created", AUDIT)] * 3
    with Meter(raw, counter) as m:
        queue.enqueue_jobs(three)
    result["round_trips_enqueue_3_jobs"] = m.trips
    drain(queue, batch)

    with Meter(raw, counter) as m:
        for _ in range(100):
            queue.claim(batch)
    result |= {"idle_poll_billed": m.cmds / 100, "round_trips_idle_poll": m.trips / 100}
    # The scheduled processor polls once a minute when idle (one invocation, one claim that
    # also refreshes its marker): measure exactly that.
    with Meter(raw, counter) as m:
        queue.claim(batch, hold_marker_s=30)
    result["idle_cmds_per_min"] = m.cmds
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--jobs", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(run_ours(args.redis_url, args.jobs)))


if __name__ == "__main__":
    main()
