"""Claim, complete, fail, leases and fencing, the dead-letter queue, statistics."""

from __future__ import annotations

import pytest
from jobs_core import JobState, JobType, LeaseLostError, Outcome, SettleCode

from tests.contract.conftest import QueueRig

RELEASE = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 10000}
AUDIT = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}


def test_claim_complete_marks_succeeded_with_retention(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE)
    [claimed] = rig.queue.claim(10)
    assert claimed.attempt == 1
    assert rig.queue.get_job_status(job_id).state is JobState.RUNNING  # type: ignore[union-attr]

    rig.clock.advance(1)
    rig.queue.complete(claimed)

    job = rig.queue.get_job_status(job_id)
    assert job is not None and job.state is JobState.SUCCEEDED and job.attempts == 1
    assert job.finished_at is not None
    ttl = rig.raw.ttl(rig.queue.keys.job(job_id))
    assert 0 < ttl <= rig.queue.settings.retention_s
    assert rig.queue.claim(10) == []
    stats = rig.queue.get_queue_stats()
    assert (stats.ready, stats.scheduled, stats.running, stats.dead_letter) == (0, 0, 0, 0)


def test_claim_and_complete_are_one_round_trip_each(rig: QueueRig) -> None:
    for _ in range(3):
        rig.queue.enqueue_job("send_release_email", RELEASE)
    rig.queue.complete(rig.queue.claim(1)[0])  # loads the scripts
    before = rig.counter.round_trips
    batch = rig.queue.claim(10)
    assert len(batch) == 2
    assert rig.counter.round_trips - before == 1
    rig.queue.complete(batch[0])
    assert rig.counter.round_trips - before == 2
    rig.queue.settle([Outcome(batch[1], "done")])
    assert rig.counter.round_trips - before == 3
    rig.queue.claim(10)  # idle poll
    assert rig.counter.round_trips - before == 4


def test_claim_is_fifo_by_due_time_and_respects_limit(rig: QueueRig) -> None:
    ids = []
    for _ in range(5):
        ids.append(rig.queue.enqueue_job("audit_log_created", AUDIT))
        rig.clock.advance(0.01)
    first = rig.queue.claim(3)
    second = rig.queue.claim(3)
    assert [c.id for c in first] == ids[:3]
    assert [c.id for c in second] == ids[3:]


def test_no_job_type_starves(rig: QueueRig) -> None:
    for _ in range(40):
        rig.queue.enqueue_job("audit_log_created", AUDIT)
    rig.clock.advance(0.01)
    late = rig.queue.enqueue_job("send_release_email", RELEASE)
    rig.clock.advance(0.01)
    for _ in range(40):
        rig.queue.enqueue_job("audit_log_created", AUDIT)
    seen: list[str] = []
    for _ in range(5):  # 10 per claim: the email waits only for jobs due before it
        seen += [c.id for c in rig.queue.claim(10)]
    assert late in seen


def test_claim_filters_by_type(rig: QueueRig) -> None:
    for _ in range(30):
        rig.queue.enqueue_job("audit_log_created", AUDIT)
    email = rig.queue.enqueue_job("send_release_email", RELEASE)
    [claimed] = rig.queue.claim(5, types=[JobType.SEND_RELEASE_EMAIL])
    assert claimed.id == email
    assert rig.queue.get_queue_stats().by_type[JobType.AUDIT_LOG_CREATED].ready == 30


def test_retryable_failure_backs_off_then_dead_letters(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE, max_attempts=3)
    for attempt in (1, 2):
        [claimed] = rig.queue.claim(1)
        assert claimed.attempt == attempt
        assert rig.queue.fail(claimed, RuntimeError("smtp down")) is JobState.SCHEDULED
        job = rig.queue.get_job_status(job_id)
        assert job is not None and job.state is JobState.SCHEDULED and job.attempts == attempt
        assert job.last_error == "RuntimeError: smtp down"
        cap = min(
            rig.queue.settings.backoff_cap_s, rig.queue.settings.backoff_base_s * 2 ** (attempt - 1)
        )
        wait = job.next_run_at.timestamp() * 1000 - rig.clock.now_ms()
        assert 0 <= wait <= cap * 1000 + 1
        rig.clock.advance(cap + 0.01)
    [claimed] = rig.queue.claim(1)
    assert claimed.attempt == 3
    assert rig.queue.fail(claimed, RuntimeError("still down")) is JobState.DEAD
    [dead] = rig.queue.get_dead_letter_jobs()
    assert dead.id == job_id and dead.state is JobState.DEAD and dead.attempts == 3
    assert dead.last_error == "RuntimeError: still down"
    assert rig.raw.ttl(rig.queue.keys.job(job_id)) == -1  # DLQ entries stay until replayed/purged


def test_retry_honours_explicit_delay(rig: QueueRig) -> None:
    rig.queue.enqueue_job("send_release_email", RELEASE)
    [claimed] = rig.queue.claim(1)
    rig.queue.fail(claimed, "rate limited", delay_s=120)
    rig.clock.advance(119)
    assert rig.queue.claim(1) == []
    rig.clock.advance(2)
    assert len(rig.queue.claim(1)) == 1


def test_permanent_failure_goes_straight_to_the_dlq(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE)
    [claimed] = rig.queue.claim(1)
    assert rig.queue.fail(claimed, "card declined", permanent=True) is JobState.DEAD
    assert rig.queue.get_queue_stats().dead_letter == 1
    assert rig.queue.get_job_status(job_id).attempts == 1  # type: ignore[union-attr]


def test_expired_lease_makes_job_due_again_and_fences_the_stale_holder(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE)
    [stale] = rig.queue.claim(1, lease_s=30)
    rig.clock.advance(31)
    assert rig.queue.claim(1, types=["audit_log_created"]) == []  # reaps, claims nothing
    job = rig.queue.get_job_status(job_id)
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 1
    assert job.last_error is not None and job.last_error.startswith("LeaseExpired")

    [fresh] = rig.queue.claim(1)
    assert fresh.attempt == 2 and fresh.token != stale.token
    for stale_call in (
        lambda: rig.queue.complete(stale),
        lambda: rig.queue.fail(stale, "late"),
        lambda: rig.queue.release(stale),
        lambda: rig.queue.extend_lease(stale),
    ):
        with pytest.raises(LeaseLostError):
            stale_call()
    assert rig.queue.get_job_status(job_id).state is JobState.RUNNING  # type: ignore[union-attr]
    rig.queue.complete(fresh)
    assert rig.queue.get_job_status(job_id).state is JobState.SUCCEEDED  # type: ignore[union-attr]


def test_expired_lease_on_last_attempt_dead_letters(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE, max_attempts=1)
    rig.queue.claim(1, lease_s=5)
    rig.clock.advance(6)
    rig.queue.claim(1)
    job = rig.queue.get_job_status(job_id)
    assert job is not None and job.state is JobState.DEAD
    assert rig.queue.get_queue_stats().dead_letter == 1


def test_extend_lease_keeps_a_long_job(rig: QueueRig) -> None:
    rig.queue.enqueue_job("send_release_email", RELEASE)
    [claimed] = rig.queue.claim(1, lease_s=10)
    rig.clock.advance(8)
    claimed = rig.queue.extend_lease(claimed, 10)
    rig.clock.advance(8)
    assert rig.queue.claim(1) == []
    rig.queue.complete(claimed)


def test_release_returns_job_without_counting_an_attempt(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE)
    [claimed] = rig.queue.claim(1)
    rig.queue.release(claimed)
    job = rig.queue.get_job_status(job_id)
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 0
    [again] = rig.queue.claim(1)
    assert again.attempt == 1


def test_settle_batch_of_mixed_outcomes(rig: QueueRig) -> None:
    for _ in range(4):
        rig.queue.enqueue_job("audit_log_created", AUDIT)
    batch = rig.queue.claim(4)
    ids = [c.id for c in batch]
    results = rig.queue.settle(
        [
            Outcome(batch[0], "done"),
            Outcome(batch[1], "retry", error="flaky", delay_s=10),
            Outcome(batch[2], "dead", error="bad"),
            Outcome(batch[3], "release"),
        ]
    )
    assert [code for _, code in results] == [SettleCode.SETTLED] * 4
    states = [rig.queue.get_job_status(i).state for i in ids]  # type: ignore[union-attr]
    assert states == [JobState.SUCCEEDED, JobState.SCHEDULED, JobState.DEAD, JobState.QUEUED]


def test_settle_reports_lost_leases_per_job(rig: QueueRig) -> None:
    for _ in range(2):
        rig.queue.enqueue_job("audit_log_created", AUDIT)
    batch = rig.queue.claim(2, lease_s=5)
    rig.clock.advance(6)
    rig.queue.claim(10)  # reaps both, claims them again under a new token
    results = rig.queue.settle([Outcome(c, "done") for c in batch])
    assert [code for _, code in results] == [SettleCode.LEASE_LOST] * 2
    assert rig.queue.get_queue_stats().running == 2


def test_queue_stats_counts_and_oldest_age(rig: QueueRig) -> None:
    rig.queue.enqueue_job("audit_log_created", AUDIT)
    rig.clock.advance(90)
    rig.queue.enqueue_job("audit_log_created", AUDIT)
    rig.queue.enqueue_job("send_release_email", RELEASE, delay_s=60)
    rig.queue.enqueue_job("send_release_email", RELEASE)
    claimed = rig.queue.claim(1)
    assert claimed[0].job.type is JobType.AUDIT_LOG_CREATED
    rig.clock.advance(10)

    stats = rig.queue.get_queue_stats()
    assert stats.by_type[JobType.AUDIT_LOG_CREATED].model_dump() == {
        "ready": 1,
        "scheduled": 0,
        "running": 1,
        "oldest_ready_age_s": pytest.approx(10.0),
        "paused_since": None,
    }
    assert stats.by_type[JobType.SEND_RELEASE_EMAIL].model_dump() == {
        "ready": 1,
        "scheduled": 1,
        "running": 0,
        "oldest_ready_age_s": pytest.approx(10.0),
        "paused_since": None,
    }
    assert stats.dead_letter == 0
    assert stats.oldest_ready_age_s == pytest.approx(10.0)


def test_stats_is_one_round_trip(rig: QueueRig) -> None:
    rig.queue.get_queue_stats()
    before = rig.counter.round_trips
    rig.queue.get_queue_stats()
    assert rig.counter.round_trips - before == 1


def test_replay_and_purge_dead_letter(rig: QueueRig) -> None:
    ids = [rig.queue.enqueue_job("audit_log_created", AUDIT) for _ in range(3)]
    for claimed in rig.queue.claim(3):
        rig.queue.fail(claimed, "bad", permanent=True)
    assert {j.id for j in rig.queue.get_dead_letter_jobs()} == set(ids)

    assert rig.queue.replay_dead_letter([ids[0], "no-such-id"]) == [ids[0]]
    job = rig.queue.get_job_status(ids[0])
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 0
    assert [c.id for c in rig.queue.claim(5)] == [ids[0]]

    assert rig.queue.purge_dead_letter([ids[1]]) == 1
    assert rig.queue.get_job_status(ids[1]) is None
    assert rig.queue.replay_dead_letter() == [ids[2]]
    assert rig.queue.get_queue_stats().dead_letter == 0


def test_unknown_job_id_has_no_status(rig: QueueRig) -> None:
    assert rig.queue.get_job_status("01NOPE") is None


def test_a_settle_writes_the_payload_back_as_it_was_stored(rig: QueueRig) -> None:
    """The settle rewrites the record's header only: the payload's text (here with a
    character outside ASCII) comes back byte for byte, not encoded again."""
    payload = {"transactionId": "esc-1", "action": "released", "actor": "Zoë"}
    job_id = rig.queue.enqueue_job("audit_log_created", payload)
    stored = rig.raw.get(rig.queue.keys.job(job_id)).partition("\n")[2]
    [claimed] = rig.queue.claim(1)
    rig.queue.fail(claimed, "boom", delay_s=0)  # a retry rewrites the record
    [again] = rig.queue.claim(1)
    rig.queue.complete(again)
    assert rig.raw.get(rig.queue.keys.job(job_id)).partition("\n")[2] == stored
    done = rig.queue.get_job_status(job_id)
    assert done is not None and done.payload["actor"] == "Zoë" and done.attempts == 2
