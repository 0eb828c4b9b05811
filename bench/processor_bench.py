"""Processor drain benchmark (issue 3): prints a table; not a test.

    python -m bench.processor_bench                     # 5000 jobs, 3 rounds, saq + dramatiq
    python -m bench.processor_bench --jobs 2000 --repeat 1 --peers none

Against a dedicated redis-server it starts itself (``bench.redis_env``: Redis pinned to
CPU 0, this process and its threads to CPU 1), it measures:

- no-op drain in one process: ``Processor.drain`` over N queued no-op jobs (pool 8),
  for a few batch sizes: jobs/s, round trips per job (counted at the backend) and billed
  commands per job (``INFO commandstats`` deltas, which count every ``redis.call`` inside
  a script as Upstash bills it); and the whole life (``enqueue_jobs`` + drain) per job;
- an idle invocation: a drain on an empty queue (what a scheduled minute costs when
  there is nothing to do);
- I/O-bound throughput: each handler makes a 200 ms HTTP call to a local server, with
  a pool of 1 and of 8;
- the fastest peers (saq, dramatiq by shared/PEERS.md) draining the same number of
  no-op jobs on the same Redis in the same run (their drivers from ``bench/peers``, run
  in their own venvs by ``bench.peers_runner``), and our ratio to the fastest.

Rounds are interleaved (ours, then each peer) and each figure is the median.
Per-job INFO log lines are switched off (WARNING level) for the no-op figures: they
measure the queue and the pool, not stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jobs_core import Job, JobQueue, JobType, RedisBackend, Settings
from jobs_core.logging import logger
from jobs_core.processor import Processor, ProcessorConfig
from jobs_core.queue.backends.counting import CountingBackend

from bench.redis_env import billed_delta, command_stats, pin_client_process, redis_server

AUDIT = JobType.AUDIT_LOG_CREATED
PAYLOAD = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}
IO_DELAY_S = 0.2
DEFAULT_PEERS = ("saq", "dramatiq")


# -- measuring one drain -------------------------------------------------------------------


@dataclass
class Run:
    jobs: int
    seconds: float
    round_trips: int
    billed: int
    enqueue_billed: int = 0

    @property
    def per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds else float("inf")

    @property
    def trips_per_job(self) -> float:
        return self.round_trips / self.jobs

    @property
    def billed_per_job(self) -> float:
        return self.billed / self.jobs

    @property
    def lifecycle_per_job(self) -> float:
        return (self.enqueue_billed + self.billed) / self.jobs


def make_queue(url: str) -> tuple[JobQueue, CountingBackend]:
    backend = RedisBackend.from_url(url, timeout_s=10)
    backend.client.ping()  # connect now: the handshake's CLIENT SETINFO is not the drain's
    counter = CountingBackend(backend)
    return JobQueue(counter, Settings(namespace=f"b-{uuid.uuid4().hex[:8]}")), counter


def fill(url: str, queue: JobQueue, jobs: int, *, one_by_one: bool = False) -> int:
    """Queue ``jobs`` no-op jobs; the billed commands it took. In bulk (``enqueue_jobs``,
    1000 a call), or as the API does it: one ``enqueue_job`` per job with a dedupe key."""
    before = command_stats(url)
    if one_by_one:
        for i in range(jobs):
            queue.enqueue_job(AUDIT, PAYLOAD, dedupe_key=f"bench-{uuid.uuid4().hex}-{i}")
    else:
        for start in range(0, jobs, 1000):
            queue.enqueue_jobs([(AUDIT, PAYLOAD)] * min(1000, jobs - start))
    return billed_delta(before, command_stats(url))


def measure_drain(
    url: str,
    jobs: int,
    handler: Callable[[Job], None],
    *,
    concurrency: int,
    batch_size: int,
    one_by_one: bool = False,
) -> Run:
    queue, counter = make_queue(url)
    enqueue_billed = fill(url, queue, jobs, one_by_one=one_by_one) if jobs else 0
    config = ProcessorConfig(
        concurrency=concurrency, batch_size=batch_size, idle_exit_s=0, job_timeout_s=30
    )
    processor = Processor(queue, {AUDIT: handler}, config=config)
    trips0, before, t0 = counter.round_trips, command_stats(url), time.perf_counter()
    report = processor.drain(3600)
    seconds = time.perf_counter() - t0
    billed = billed_delta(before, command_stats(url))
    processor.close()
    if report.total.succeeded != jobs:
        raise RuntimeError(f"drained {report.total.succeeded} of {jobs}: {report.to_dict()}")
    return Run(max(jobs, 1), seconds, counter.round_trips - trips0, billed, enqueue_billed)


def noop(job: Job) -> None:
    return None


# -- the I/O-bound handler -----------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops a burst's SYNs (1 s client retransmits)


@contextmanager
def slow_http_server(delay_s: float) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            return

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def http_handler(base: str) -> Callable[[Job], None]:
    def call(job: Job) -> None:
        with urllib.request.urlopen(f"{base}/hook/{job.id}", timeout=10) as response:
            response.read()

    return call


# -- peers ---------------------------------------------------------------------------------


def run_peer(name: str, url: str, jobs: int) -> dict[str, Any]:
    from bench import peers_runner

    # a row name ("rq SimpleWorker") or a venv name ("taskiq": its first row)
    by_name = [d for d in peers_runner.DRIVERS if d.name == name]
    driver = (by_name or [d for d in peers_runner.DRIVERS if d.peer == name])[0]
    return peers_runner.run_driver(driver, url, jobs, idle_seconds=0)


# -- the run -------------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    runs: list[Run]

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000, help="no-op jobs per drain")
    parser.add_argument("--batches", default="16,50,100", help="batch sizes to drain with")
    parser.add_argument("--io-jobs", type=int, default=80, help="I/O jobs at pool 8 (pool 1: /4)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--peers", default=",".join(DEFAULT_PEERS), help="peer drivers to compare, or 'none'"
    )
    args = parser.parse_args(argv)
    batches = [int(b) for b in args.batches.split(",")]
    peers = [] if args.peers == "none" else [p for p in args.peers.split(",") if p]
    pinned = pin_client_process()
    logger.setLevel("WARNING")

    noop_rows = {b: Row(f"no-op drain, batch {b}, pool 8", []) for b in batches}
    life = Row("enqueue_job (dedupe key) + drain, b16", [])
    idle = Row("idle invocation (empty queue)", [])
    io_rows = [
        Row(f"I/O {IO_DELAY_S * 1000:.0f} ms HTTP, pool 1, batch 16", []),
        Row(f"I/O {IO_DELAY_S * 1000:.0f} ms HTTP, pool 8, batch 16", []),
    ]
    peer_rows: dict[str, list[dict[str, Any]]] = {p: [] for p in peers}

    with redis_server() as url, slow_http_server(IO_DELAY_S) as http:
        measure_drain(url, 500, noop, concurrency=8, batch_size=16)  # warm up: scripts, pool
        for round_no in range(args.repeat):
            print(f"round {round_no + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            for b in batches:
                noop_rows[b].runs.append(
                    measure_drain(url, args.jobs, noop, concurrency=8, batch_size=b)
                )
            life.runs.append(
                measure_drain(url, 1000, noop, concurrency=8, batch_size=16, one_by_one=True)
            )
            idle.runs.append(measure_drain(url, 0, noop, concurrency=8, batch_size=16))
            handler = http_handler(http)
            io_rows[0].runs.append(
                measure_drain(url, max(args.io_jobs // 4, 1), handler, concurrency=1, batch_size=16)
            )
            io_rows[1].runs.append(
                measure_drain(url, args.io_jobs, handler, concurrency=8, batch_size=16)
            )
            for peer in peers:
                peer_rows[peer].append(run_peer(peer, url, args.jobs))

    print_table(args, pinned, noop_rows, life, idle, io_rows, peer_rows)
    return 0


def print_table(
    args: argparse.Namespace,
    pinned: bool,
    noop_rows: dict[int, Row],
    life: Row,
    idle: Row,
    io_rows: list[Row],
    peer_rows: dict[str, list[dict[str, Any]]],
) -> None:
    where = "Redis on CPU 0, clients on CPU 1" if pinned else "unpinned"
    print(
        f"\nprocessor drain benchmark: {args.jobs} no-op jobs per drain, median of "
        f"{args.repeat} round(s), {where}\n"
    )
    head = f"{'scenario':<40} {'jobs/s':>9} {'trips/job':>10} {'billed/job':>11} {'life/job':>9}"
    print(head)
    print("-" * len(head))
    for row in [*noop_rows.values(), life]:
        print(
            f"{row.label:<40} {row.median('per_s'):>9,.0f} {row.median('trips_per_job'):>10.3f}"
            f" {row.median('billed_per_job'):>11.2f} {row.median('lifecycle_per_job'):>9.2f}"
        )
    print(
        f"{idle.label:<40} {'—':>9} {idle.median('round_trips'):>10.0f}"
        f" {idle.median('billed'):>11.0f} {'':>9}   (totals, not per job)"
    )
    for row in io_rows:
        print(
            f"{row.label:<40} {row.median('per_s'):>9,.1f} {row.median('trips_per_job'):>10.3f}"
            f" {row.median('billed_per_job'):>11.2f} {'':>9}"
        )
    fastest: tuple[str, float] | None = None
    for peer, results in peer_rows.items():
        good = [r for r in results if "error" not in r and r.get("drain_per_s")]
        if not good:
            errors = "; ".join(str(r.get("error")) for r in results)
            print(f"{peer + ' (peer) drain':<40} {'—':>9}   {errors}")
            continue
        rate = statistics.median(float(r["drain_per_s"]) for r in good)
        cmds = statistics.median(float(r["billed_cmds_process_per_job"]) for r in good)
        label = f"{peer} {good[0].get('version', '')} (peer) drain"
        print(f"{label:<40} {rate:>9,.0f} {'':>10} {cmds:>11.2f} {'':>9}")
        if fastest is None or rate > fastest[1]:
            fastest = (peer, rate)
    if fastest is not None:
        default = noop_rows.get(16) or next(iter(noop_rows.values()))
        ratio = default.median("per_s") / fastest[1]
        print(f"\nours ({default.label}) / fastest peer ({fastest[0]}): {ratio:.1f}x")
    pool1, pool8 = (r.median("per_s") for r in io_rows)
    print(f"I/O pool 8 / pool 1: {pool8 / pool1:.1f}x (ideal 8x; 1 / {IO_DELAY_S} s = 5 jobs/s)")
    print(
        "trips/job: Redis requests per job while draining (claim + settle per batch, plus\n"
        "  the final empty poll); billed/job: commands Redis ran per job while draining\n"
        "  (EVALSHA and every call inside a script); life/job: enqueue + drain, billed, per\n"
        "  job (bulk enqueue_jobs of 1000 in the no-op rows; one enqueue_job with a dedupe\n"
        "  key per job, as the API enqueues, in the enqueue_job row)."
    )


if __name__ == "__main__":
    sys.exit(main())
