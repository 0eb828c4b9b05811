"""The processor-active marker lives in the timeline (``~active|``, scored by minus its
expiry): a processor sets it in its claim, an enqueuer reads it in the ZADD that queues
its jobs, and it is never taken for a job."""

from __future__ import annotations

from jobs_core import JobType

from tests.contract.conftest import QueueRig
from tests.contract.test_claim_scan import commands

AUDIT = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}


def enqueue(rig: QueueRig, dedupe_key: str | None = None) -> bool:
    options = {"dedupe_key": dedupe_key} if dedupe_key else {}
    spec = (JobType.AUDIT_LOG_CREATED, AUDIT, options)
    return rig.queue.enqueue_batch([spec], read_marker=True).processor_active


def test_the_marker_is_seen_while_a_processor_holds_it_and_not_after(rig: QueueRig) -> None:
    assert not enqueue(rig)  # no processor yet
    rig.clock.advance(0.001)
    assert not enqueue(rig)  # an enqueuer's read does not make one appear
    rig.queue.claim(10, hold_marker_s=30)
    assert enqueue(rig)
    rig.clock.advance(10)
    assert enqueue(rig, dedupe_key="one")
    assert enqueue(rig, dedupe_key="one")  # nothing new: the marker is still read
    rig.clock.advance(21)
    assert not enqueue(rig)  # expired
    rig.queue.claim(10, hold_marker_s=30)
    assert enqueue(rig)
    rig.queue.claim(1, hold_marker_s=0.001)  # a drain lets go of it
    rig.clock.advance(0.01)
    assert not enqueue(rig)


def test_the_marker_is_not_a_job(rig: QueueRig) -> None:
    rig.queue.claim(1, hold_marker_s=0.001)
    rig.clock.advance(1)  # an expired marker sits in the claim's range, before any job
    ids = rig.queue.enqueue_jobs([(JobType.AUDIT_LOG_CREATED, AUDIT)] * 3)
    assert not enqueue(rig)
    claimed = rig.queue.claim(10, hold_marker_s=30)
    assert len(claimed) == 4 and set(ids) <= {c.id for c in claimed}
    stats = rig.queue.get_queue_stats()
    assert set(stats.by_type) == set(JobType)
    assert stats.by_type[JobType.AUDIT_LOG_CREATED].running == 4
    assert sum(s.ready + s.scheduled + s.running for s in stats.by_type.values()) == 4
    assert len(rig.queue.list_jobs("running").jobs) == 4
    assert rig.queue.list_jobs("ready").jobs == []
    assert rig.queue.claim(10) == []


def test_reading_the_marker_costs_no_command_of_its_own(rig: QueueRig) -> None:
    """An API request's enqueue with a dedupe key and the marker read: EVALSHA, MSETNX (the
    record, which is the dedupe key too), ZADD (the job, and the marker read)."""
    enqueue(rig, dedupe_key="warm")  # the script loaded
    before = commands(rig)
    enqueue(rig, dedupe_key="lone")
    after = commands(rig)
    if before is not None and after is not None:
        assert after - before == 3
