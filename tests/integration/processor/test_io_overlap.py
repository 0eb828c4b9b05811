"""I/O-bound handlers overlap inside one invocation, and the pool bound holds: both
measured at a real local HTTP server that sleeps 200 ms per request, counting requests in
flight (not inferred from wall time; see ``SlowServer``'s gate)."""

from __future__ import annotations

import urllib.request

import pytest
from jobs_core import Job, JobQueue
from jobs_core.processor import Processor, ProcessorConfig

from tests.unit.processor.support import AUDIT, enqueue

from .conftest import SlowServer


def http_handler(server: SlowServer):  # type: ignore[no-untyped-def]
    def call(job: Job) -> None:
        with urllib.request.urlopen(f"{server.url}/hook/{job.id}", timeout=10) as response:
            assert response.status == 200

    return call


@pytest.mark.parametrize(("concurrency", "jobs"), [(1, 4), (3, 9), (8, 16)])
def test_requests_in_flight_reach_the_pool_size_and_never_exceed_it(
    queue: JobQueue, slow_server: SlowServer, concurrency: int, jobs: int
) -> None:
    ids = enqueue(queue, jobs)
    slow_server.target = concurrency
    processor = Processor(queue, {AUDIT: http_handler(slow_server)}, concurrency=concurrency)

    result = processor.process_batch(limit=jobs)

    assert result.tally.succeeded == jobs
    assert sorted(slow_server.paths) == sorted(f"/hook/{i}" for i in ids)
    assert slow_server.timeouts == 0  # every request met `concurrency` in flight
    assert slow_server.gate.max_in_flight == concurrency  # and never more


def test_a_drain_overlaps_across_batches_too(queue: JobQueue, slow_server: SlowServer) -> None:
    enqueue(queue, 24)
    slow_server.target = 8
    config = ProcessorConfig(concurrency=8, batch_size=8, idle_exit_s=0.2)
    processor = Processor(queue, {AUDIT: http_handler(slow_server)}, config=config)
    report = processor.drain(60)
    assert report.total.succeeded == 24 and report.batches == 3
    assert slow_server.timeouts == 0 and slow_server.gate.max_in_flight == 8
