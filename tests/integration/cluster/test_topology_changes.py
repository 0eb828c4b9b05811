"""The queue's slot moves to another master, and its master fails over to its replica,
while jobs are enqueued and drained: every job completes, none is lost, none runs twice
(beyond what an expired lease explains), and the processor is never restarted.

The API enqueues as it does in production: a batch that fails stays in its outbox and is
enqueued again under the same dedupe keys. The processor is one ``Processor`` object for
the whole test: a drain that a backend error ends is followed by the next drain, as the
next scheduled invocation of a warm Lambda would."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from jobs_core import BackendError, Job, JobState
from jobs_core.processor import Processor, ProcessorConfig
from jobs_core.queue.keys import QueueKeys

from tests.support.redis_cluster import RedisClusterServers
from tests.unit.processor.support import AUDIT, payload

from .conftest import cluster_queue

BATCHES, PER_BATCH = 30, 10
CONFIG = ProcessorConfig(
    concurrency=4, batch_size=8, idle_exit_s=1.0, idle_poll_min_s=0.02, idle_poll_max_s=0.1
)


@dataclass
class Run:
    ids: list[str] = field(default_factory=list)
    runs: Counter[str] = field(default_factory=Counter)
    enqueue_errors: list[BackendError] = field(default_factory=list)
    drain_errors: list[BaseException] = field(default_factory=list)
    drains: int = 0


def run_while_changing(
    url: str, namespace: str, change: Callable[[], int], config: ProcessorConfig = CONFIG
) -> Run:
    """An enqueuer and a processor (separate clients, as the API and the processor Lambda
    are) work while ``change`` runs once, a third of the way through the enqueues;
    ``change`` returns the port of the slot's new owner."""
    api = cluster_queue(url, namespace)
    worker = cluster_queue(url, namespace)
    run = Run()
    lock = threading.Lock()
    enqueued_first, enqueued_some, enqueued_all = (threading.Event() for _ in range(3))

    def handler(job: Job) -> None:
        with lock:
            run.runs[job.id] += 1
        time.sleep(0.002)

    def enqueue() -> None:
        for b in range(BATCHES):
            specs = [
                (AUDIT, payload(AUDIT, n), {"dedupe_key": f"intent-{n}"})
                for n in range(b * PER_BATCH, (b + 1) * PER_BATCH)
            ]
            while True:
                try:
                    run.ids.extend(api.enqueue_jobs(specs))
                    break
                except BackendError as exc:  # kept in the outbox, enqueued again
                    run.enqueue_errors.append(exc)
                    time.sleep(0.1)
            enqueued_first.set()
            if b == BATCHES // 3:
                enqueued_some.set()
            time.sleep(0.01)
        enqueued_all.set()

    processor = Processor(worker, {AUDIT: handler}, config=config)

    def settled() -> bool:  # nothing ready, scheduled or leased (a lease may still expire)
        stats = worker.get_queue_stats()
        return stats.ready + stats.scheduled + stats.running == 0

    def drain() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            report = processor.drain(60)
            run.drains += 1
            if report.error is not None:
                run.drain_errors.append(report.error)
            elif enqueued_all.is_set() and settled():
                return
            time.sleep(0.05)

    producer = threading.Thread(target=enqueue)
    drainer = threading.Thread(target=drain)
    producer.start()
    assert enqueued_first.wait(30)
    drainer.start()
    assert enqueued_some.wait(30)
    deadline = time.monotonic() + 10
    while not run.runs and time.monotonic() < deadline:
        time.sleep(0.005)
    with lock:
        ran_before = len(run.runs)
    new_owner = change()
    producer.join(60)
    drainer.join(60)
    assert not drainer.is_alive()
    assert 0 < ran_before < len(run.ids)  # the change came mid-drain
    # The processor's client followed the slot to its new owner (MOVED), no restart.
    slot = RedisClusterServers.slot_of(QueueKeys(namespace).timeline)
    client = worker.backend.client  # type: ignore[attr-defined]
    assert client.nodes_manager.get_node_from_slot(slot).port == new_owner
    return run


def assert_every_job_done_once(url: str, namespace: str, run: Run) -> None:
    queue = cluster_queue(url, namespace)
    assert len(set(run.ids)) == BATCHES * PER_BATCH  # a resent batch found its own jobs
    states = {i: queue.get_job_status(i) for i in set(run.ids)}
    assert None not in states.values()
    assert {s.state for s in states.values() if s} == {JobState.SUCCEEDED}
    assert set(run.runs) == set(run.ids)
    # A second run is only allowed where a lease expired (the record says so).
    twice = {i for i, n in run.runs.items() if n > 1}
    assert all("LeaseExpired" in (states[i].last_error or "") for i in twice)  # type: ignore[union-attr]
    stats = queue.get_queue_stats()
    assert (stats.ready, stats.scheduled, stats.running, stats.dead_letter) == (0, 0, 0, 0)


def test_slot_moves_to_another_master_while_draining(
    redis_cluster: RedisClusterServers,
    url: str,
    namespace: str,
    keys: QueueKeys,
) -> None:
    slot = redis_cluster.slot_of(keys.timeline)
    before = redis_cluster.owner(slot)

    def reshard() -> int:
        # Every key of the slot in one MIGRATE (as `redis-cli --cluster reshard` does with a
        # --cluster-pipeline above the slot's key count): no script sees half a queue.
        return redis_cluster.move_slot(slot).port

    run = run_while_changing(url, namespace, reshard)
    assert redis_cluster.owner(slot).port != before.port
    assert run.enqueue_errors == [] and run.drain_errors == []  # the resends covered it
    assert_every_job_done_once(url, namespace, run)


def test_master_fails_over_to_its_replica_mid_drain(
    redis_cluster: RedisClusterServers, url: str, namespace: str, keys: QueueKeys
) -> None:
    slot = redis_cluster.slot_of(keys.timeline)
    before = redis_cluster.owner(slot)

    def failover() -> int:
        return redis_cluster.failover(before).port

    run = run_while_changing(url, namespace, failover)
    assert redis_cluster.owner(slot).port != before.port
    assert run.enqueue_errors == [] and run.drain_errors == []
    assert_every_job_done_once(url, namespace, run)


@pytest.mark.slow  # its own cluster, an election (about 15 s)
def test_master_stops_mid_drain_the_replica_takes_over(namespace: str, keys: QueueKeys) -> None:
    """A master that is gone (not a coordinated CLUSTER FAILOVER): connections drop until
    its replica is elected (cluster-node-timeout 2 s). Those errors are transient: the
    resends and the next drain of the same processor, and the API's outbox for enqueues,
    carry on; every job still runs once."""
    with RedisClusterServers(masters=3, replicas=1) as cluster:  # its own: one node dies
        url = cluster.url_not_owning(keys.timeline)
        slot = cluster.slot_of(keys.timeline)
        before = cluster.owner(slot)

        def stop() -> int:
            return cluster.stop_master(before).port

        # Short leases: a batch whose settle was lost with the master runs again soon.
        short = ProcessorConfig(
            concurrency=4, batch_size=8, idle_exit_s=1.0, idle_poll_min_s=0.02,
            idle_poll_max_s=0.1, job_timeout_s=1.0, lease_margin_s=1.0,
        )  # fmt: skip
        run = run_while_changing(url, namespace, stop, short)
        assert cluster.owner(slot).port != before.port
        errors = [*run.enqueue_errors, *run.drain_errors]
        assert errors  # the election outlasts the resends: the errors reached the callers
        assert all(e.transient for e in errors)  # type: ignore[attr-defined]
        assert run.drains > len(run.drain_errors)  # and the same processor drained on
        assert_every_job_done_once(url, namespace, run)
