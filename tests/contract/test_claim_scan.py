"""What one claim finds in the timeline: expired leases ahead of any backlog, reaped in a
bounded number of calls, and when the next job is due."""

from __future__ import annotations

import redis
from jobs_core import JobState

from tests.contract.conftest import QueueRig

AUDIT = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}
RELEASE = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 10000}


def test_expired_leases_are_claimed_before_a_backlog_queued_ahead_of_them(
    rig: QueueRig,
) -> None:
    """A crashed holder's jobs do not wait behind 2000 jobs that were due earlier than
    their lease deadline: the very next claim reaps them and leases them first."""
    victims = rig.queue.enqueue_jobs([("send_release_email", RELEASE)] * 5)
    rig.queue.claim(5, lease_s=10)  # the holder dies with these
    rig.clock.advance(1)
    rig.queue.enqueue_jobs([("audit_log_created", AUDIT)] * 2000)
    rig.clock.advance(10)
    before = rig.counter.round_trips
    claimed = rig.queue.claim(16)
    assert rig.counter.round_trips - before == 1
    assert {c.id for c in claimed[:5]} == set(victims)
    assert all(c.attempt == 2 for c in claimed[:5])
    assert {c.job.type.value for c in claimed[5:]} == {"audit_log_created"}
    assert len(claimed) == 16


def test_reaping_many_leases_is_a_bounded_number_of_calls(rig: QueueRig) -> None:
    rig.queue.enqueue_jobs([("audit_log_created", AUDIT)] * 20)
    rig.queue.claim(20, lease_s=5)
    rig.clock.advance(6)
    calls = commands(rig)
    claimed = rig.queue.claim(20)
    after = commands(rig)
    assert len(claimed) == 20 and all(c.attempt == 2 for c in claimed)
    if calls is not None and after is not None:
        # EVALSHA, ZRANGEBYSCORE, ZREM, MGET, MSET, ZADD: the same for 2 leases or 2000.
        assert after - calls <= 7


def test_reaped_jobs_of_other_types_are_due_again_ahead_of_the_backlog(rig: QueueRig) -> None:
    [victim] = rig.queue.enqueue_jobs([("send_release_email", RELEASE)])
    rig.queue.claim(1, lease_s=5)
    rig.clock.advance(1)
    rig.queue.enqueue_jobs([("audit_log_created", AUDIT)] * 50)
    rig.clock.advance(5)
    assert [c.job.type.value for c in rig.queue.claim(3, types=["audit_log_created"])] == [
        "audit_log_created"
    ] * 3
    job = rig.queue.get_job_status(victim)
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 1
    [first] = rig.queue.claim(1)
    assert first.id == victim


def test_a_claim_says_when_the_next_job_is_due(rig: QueueRig) -> None:
    rig.queue.enqueue_job("audit_log_created", AUDIT)
    rig.queue.enqueue_job("audit_log_created", AUDIT, delay_s=5)
    first = rig.queue.claim_batch(1)
    assert len(first.jobs) == 1 and first.due_in_s() == 5.0
    empty = rig.queue.claim_batch(4)
    assert empty.jobs == [] and empty.due_in_s() == 5.0
    rig.clock.advance(5)
    second = rig.queue.claim_batch(4)
    assert len(second.jobs) == 1 and second.due_in_s() is None  # only live leases are left


def test_a_full_batch_says_more_is_due_now(rig: QueueRig) -> None:
    rig.queue.enqueue_jobs([("audit_log_created", AUDIT)] * 5)
    result = rig.queue.claim_batch(3)
    assert len(result.jobs) == 3 and result.due_in_s() == 0.0


def commands(rig: QueueRig) -> int | None:
    """Commands the server ran (INFO commandstats), where the backend is one real server
    (a cluster's nodes are shared with other tests' clients and their topology reads)."""
    if isinstance(rig.raw, redis.RedisCluster):
        return None
    try:
        stats = rig.raw.info("commandstats")
    except redis.ResponseError:
        return None  # fakeredis keeps no command statistics
    # The queue's own commands: not the statistics reads, nor a cluster client's topology
    # and connection traffic (CLUSTER SLOTS, READONLY, CLIENT SETINFO, HELLO).
    own = ("info", "ping", "cluster", "readonly", "client", "hello", "command")
    return sum(
        int(v["calls"]) for k, v in stats.items() if not k.removeprefix("cmdstat_").startswith(own)
    )


def test_a_paused_types_expired_lease_is_reaped_but_not_leased(rig: QueueRig) -> None:
    [victim] = rig.queue.enqueue_jobs([("audit_log_created", AUDIT)])
    rig.queue.claim(1, lease_s=5)
    rig.queue.pause_type("audit_log_created", actor="carol")
    rig.clock.advance(6)
    assert rig.queue.claim(4) == []
    job = rig.queue.get_job_status(victim)
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 1
    assert [e.kind.value for e in job.history][-1] == "lease_expired"
    running = rig.queue.list_jobs("running")
    assert running.jobs == []
    rig.queue.resume_type("audit_log_created", actor="carol")
    [again] = rig.queue.claim(4)
    assert again.id == victim
    [listed] = rig.queue.list_jobs("running").jobs
    assert listed.id == victim


def test_an_idle_minute_costs_an_idle_poll_and_a_stats_read(rig: QueueRig) -> None:
    """What the scheduled processor and the monitor send in an idle minute: one claim
    (EVALSHA + ZRANGEBYSCORE) and one stats read (EVALSHA + ZRANGE + ZCARD of the dead),
    with a type paused, a partner disabled and a processor's marker in the timeline: the
    stats read counts them from its one ZRANGE."""
    rig.queue.pause_type("send_refund_email", actor="carol")
    rig.queue.claim(1, hold_marker_s=0.05)
    rig.queue.claim(16)
    rig.queue.get_queue_stats()  # scripts loaded
    before = commands(rig)
    rig.queue.claim(16)
    rig.queue.get_queue_stats()
    after = commands(rig)
    if before is not None and after is not None:
        assert after - before == 5
