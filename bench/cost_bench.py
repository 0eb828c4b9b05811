"""Costs and speed at this product's real traffic (issue 12): prints tables; not a test.

    python -m bench.cost_bench                  # peers: saq, dramatiq, huey, bullmq, taskiq
    python -m bench.cost_bench --peers none --jobs 2000

Against a dedicated redis-server (``bench.redis_env``), counting from Redis's side:
``INFO commandstats`` deltas, every command the server ran for our clients (EVALSHA and
each call inside a script, and connection traffic: HELLO, CLIENT SETINFO, PING). The
clients are connected before a scenario starts, as in a warm Lambda; the Upstash
column is the same count without connection traffic (REST has none: one HTTP request
per script call). Scenarios, each on a namespace of its own:

- a lone job: the API's enqueue (one job, a dedupe key, the marker read for the kick),
  then the drain the kick starts, a ``Processor`` with production defaults, given the
  kick's event (its hints carry the records of jobs without personal data); and the same
  for an email job, whose record the kick does not carry;
- a kicked release request: three jobs with dedupe keys in one enqueue, then its drain;
- an idle minute: the scheduled processor's drain on an empty queue, plus the monitor's
  statistics read;
- the drain at production defaults: a worker started as Lambda starts it (queue and
  ``Processor`` built inside the timing, ``ProcessorConfig()`` defaults, the per-job INFO
  line written to /dev/null) over N queued no-op jobs, beside each peer's real worker on
  the same Redis in the same run;
- 8 processor processes against one, each job a 200 ms HTTP call to a local server.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from jobs_core import Job, JobQueue, JobType, Kicker, RedisBackend, Settings, parse_hints
from jobs_core.logging import logger
from jobs_core.processor import Processor, ProcessorConfig

from bench import peers_venvs
from bench.processor_bench import http_handler, run_peer, slow_http_server
from bench.redis_env import billed_delta, command_stats, pin_client_process, redis_server

AUDIT = JobType.AUDIT_LOG_CREATED
PAYLOAD = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}
EMAIL_PAYLOAD = {"transactionId": "esc-1", "recipientEmail": "seller@example.com", "amount": 100}
CONNECTION = ("hello", "client|setinfo", "ping")  # connection traffic: none over REST
DEFAULT_PEERS = ("saq", "dramatiq", "huey", "bullmq", "taskiq")
IO_JOBS_PER_PROCESS = 48
IO_PROCESSES = 8


def new_queue(url: str) -> JobQueue:
    queue = JobQueue(
        RedisBackend.from_url(url, timeout_s=10), Settings(namespace=f"c-{uuid.uuid4().hex[:8]}")
    )
    queue.get_queue_stats()  # connected, scripts loaded: a warm Lambda
    queue.claim(1)
    return queue


def counted(url: str, work: Callable[[], object]) -> tuple[int, int]:
    """(commands over TCP, commands over Upstash REST) that ``work`` made Redis run."""
    before = command_stats(url)
    work()
    after = command_stats(url)
    tcp = billed_delta(before, after)
    return tcp, billed_delta(before, after, ignore=CONNECTION)


class KickCatcher:
    """Answers the kick's invoke as Lambda does (202) and keeps the event it carried."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, int]:
        self.events.append(json.loads(kwargs["Payload"]))
        return {"StatusCode": 202}


def kicked_request(url: str, jobs: int, job_type: JobType = AUDIT) -> tuple[int, int]:
    """The API's enqueue and kick, then the drain the kick starts, given the kick's event
    (its hints: the records of jobs without personal data) as the handler gives it."""
    queue = new_queue(url)
    processor = Processor(queue, {job_type: noop})
    payload = PAYLOAD if job_type is AUDIT else EMAIL_PAYLOAD

    def request() -> None:
        specs = [(job_type, payload, {"dedupe_key": uuid.uuid4().hex}) for _ in range(jobs)]
        result = queue.enqueue_batch(specs, read_marker=True)
        catcher = KickCatcher()
        assert Kicker("job-processor", client=catcher).kick(result)  # no processor: a kick
        report = processor.drain(60, hints=parse_hints(catcher.events[0].get("hints")))
        assert report.total.succeeded == jobs, report.to_dict()

    return counted(url, request)


def idle_minute(url: str) -> tuple[int, int]:
    queue, monitor = new_queue(url), new_queue(url)
    processor = Processor(queue, {AUDIT: noop})

    def minute() -> None:
        processor.drain(60)
        monitor.get_queue_stats()

    return counted(url, minute)


def production_drain(url: str, jobs: int) -> float:
    """Jobs/s of a worker started as Lambda starts one, production defaults."""
    namespace = f"c-{uuid.uuid4().hex[:8]}"
    filler = JobQueue(RedisBackend.from_url(url, timeout_s=10), Settings(namespace=namespace))
    for start in range(0, jobs, 1000):
        filler.enqueue_jobs([(AUDIT, PAYLOAD)] * min(1000, jobs - start))
    t0 = time.perf_counter()
    queue = JobQueue(RedisBackend.from_url(url, timeout_s=3), Settings(namespace=namespace))
    processor = Processor(queue, {AUDIT: noop}, config=ProcessorConfig())
    report = processor.drain(900)
    seconds = time.perf_counter() - t0
    processor.close()
    assert report.total.succeeded == jobs, report.to_dict()
    return jobs / seconds


def noop(job: Job) -> None:
    return None


def _io_process(url: str, namespace: str, base: str, start: Any) -> None:
    # Each processor has a CPU of its own in Lambda: here they may use both cores, not
    # only the client core the rest of the bench is pinned to (this row measures how I/O
    # waits overlap, not how eight interpreters share one core).
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    logger.setLevel("WARNING")
    queue = JobQueue(RedisBackend.from_url(url, timeout_s=10), Settings(namespace=namespace))
    processor = Processor(queue, {AUDIT: http_handler(base)}, config=ProcessorConfig())
    start.wait()
    processor.drain(600)


def io_processes(url: str, base: str, processes: int, jobs: int) -> float:
    """Jobs/s of ``processes`` processor processes draining ``jobs`` 200 ms I/O jobs."""
    namespace = f"c-{uuid.uuid4().hex[:8]}"
    queue = JobQueue(RedisBackend.from_url(url, timeout_s=10), Settings(namespace=namespace))
    queue.enqueue_jobs([(AUDIT, PAYLOAD)] * jobs)
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [
        ctx.Process(target=_io_process, args=(url, namespace, base, start))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    time.sleep(0.5)  # every process built its queue and processor
    t0 = time.perf_counter()
    start.set()
    for p in procs:
        p.join()
    seconds = time.perf_counter() - t0
    left = queue.get_queue_stats()
    assert left.ready == 0 and left.running == 0, left
    return jobs / seconds


def goal(name: str, value: float, target: float, *, at_most: bool) -> str:
    met = value <= target if at_most else value >= target
    sign = "<=" if at_most else ">="
    return f"{name:<58} {value:>8.2f}  {sign} {target:<5g} {'yes' if met else 'NO'}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000, help="no-op jobs per drain")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peers", default=",".join(DEFAULT_PEERS), help="or 'none'")
    args = parser.parse_args(argv)
    wanted = [] if args.peers == "none" else [p for p in args.peers.split(",") if p]
    peers = []
    for peer in wanted:
        try:
            peers_venvs.ensure_venv(peer)
            peers.append(peer)
        except Exception as exc:  # a peer that will not install is reported, not fatal
            print(f"{peer}: no venv ({exc})", file=sys.stderr)
    pinned = pin_client_process()
    devnull = open(os.devnull, "w")  # noqa: SIM115 (the whole run)
    handler = logger.registered_handler
    handler.setStream(devnull)  # type: ignore[attr-defined]
    logger.setLevel("INFO")  # production: one INFO line per job

    lone, lone_email, three, idle, drains = [], [], [], [], []
    peer_rates: dict[str, list[float]] = {p: [] for p in peers}
    with redis_server() as url, slow_http_server(0.2) as http:
        production_drain(url, 500)  # warm up
        for round_no in range(args.repeat):
            print(f"round {round_no + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            lone.append(kicked_request(url, 1))
            lone_email.append(kicked_request(url, 1, JobType.SEND_RELEASE_EMAIL))
            three.append(kicked_request(url, 3))
            idle.append(idle_minute(url))
            drains.append(production_drain(url, args.jobs))
            for peer in peers:
                result = run_peer(peer, url, args.jobs)
                if result.get("drain_per_s"):
                    peer_rates[peer].append(float(result["drain_per_s"]))
        logger.setLevel("WARNING")
        one = io_processes(url, http, 1, IO_JOBS_PER_PROCESS)
        eight = io_processes(url, http, IO_PROCESSES, IO_JOBS_PER_PROCESS * IO_PROCESSES)

    def med(rows: list[tuple[int, int]], i: int) -> float:
        return statistics.median(r[i] for r in rows)

    where = "Redis on CPU 0, clients on CPU 1" if pinned else "unpinned"
    print(f"\n== Costs at real traffic: median of {args.repeat} round(s), {where}")
    head = f"{'scenario':<52} {'TCP':>8} {'Upstash':>8}"
    print(head + "\n" + "-" * len(head))
    rows = (
        ("lone job: enqueue (dedupe, marker read) + kicked drain", lone, 1),
        ("lone email job (its record is not carried by the kick)", lone_email, 1),
        ("release request, 3 jobs, + kicked drain: per job", three, 3),
        ("idle minute: scheduled drain + monitor read", idle, 1),
    )
    for label, data, per in rows:
        print(f"{label:<52} {med(data, 0) / per:>8.2f} {med(data, 1) / per:>8.2f}")
    ours = statistics.median(drains)
    print(f"\n== Drain at production defaults ({args.jobs} no-op jobs, INFO line per job)")
    print(f"{'escrow-jobs Processor, ProcessorConfig() defaults':<52} {ours:>10,.0f} jobs/s")
    fastest = ("none", 0.0)
    for peer, rates in peer_rates.items():
        if rates:
            rate = statistics.median(rates)
            print(f"{peer + ' (its real worker, defaults)':<52} {rate:>10,.0f} jobs/s")
            fastest = max(fastest, (peer, rate), key=lambda x: x[1])
    print(f"\n== {IO_PROCESSES} processor processes vs one, 200 ms I/O jobs")
    print(f"{'one process (pool 8)':<52} {one:>10,.1f} jobs/s")
    print(f"{f'{IO_PROCESSES} processes (pool 8 each)':<52} {eight:>10,.1f} jobs/s")

    print("\n== Goals (issue 12), from this run")
    print(
        goal(
            "billed cmds per job, kicked request of 3 jobs (TCP)",
            med(three, 0) / 3,
            6,
            at_most=True,
        )
    )
    print(
        goal(
            "billed cmds, lone job enqueue -> claim -> complete (TCP)",
            med(lone, 0),
            10,
            at_most=True,
        )
    )
    print(goal("billed cmds, idle minute, TCP", med(idle, 0), 5, at_most=True))
    print(goal("billed cmds, idle minute, Upstash", med(idle, 1), 5, at_most=True))
    if fastest[1]:
        print(
            goal(
                f"drain at production defaults / fastest peer ({fastest[0]})",
                ours / fastest[1],
                2,
                at_most=False,
            )
        )
    print(goal(f"{IO_PROCESSES} processes / one, 200 ms I/O", eight / one, 6, at_most=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
