"""What operators do, on every backend: job history, listings, search, cancel, run now,
pause and resume, the audit; and what none of it costs the enqueue, claim and settle paths."""

from __future__ import annotations

from typing import Any

import pytest
from jobs_core import (
    EventKind,
    InvalidArgumentError,
    JobNotFoundError,
    JobState,
    JobStateError,
    JobType,
    Outcome,
    UnknownJobTypeError,
)
from jobs_core.models import HISTORY_LIMIT

from tests.contract.conftest import QueueRig

AUDIT = JobType.AUDIT_LOG_CREATED
EMAIL = JobType.SEND_RELEASE_EMAIL


def audit_payload(escrow: str = "esc-1") -> dict[str, Any]:
    return {"transactionId": escrow, "action": "released", "actor": "buyer-1"}


def email_payload(escrow: str = "esc-1") -> dict[str, Any]:
    return {"transactionId": escrow, "recipientEmail": "user@example.com", "amount": 10000}


def test_history_records_every_attempt_and_the_replay(rig: QueueRig) -> None:
    q, clock = rig.queue, rig.clock
    job_id = q.enqueue_job(EMAIL, email_payload(), max_attempts=2)
    [first] = q.claim(1)
    started = clock.now_ms()
    clock.advance(1)
    q.settle(
        [Outcome(first, "retry", error="RuntimeError: smtp down", delay_s=30, started_ms=started)]
    )
    clock.advance(31)
    [second] = q.claim(1)
    clock.advance(2)
    q.fail(second, RuntimeError("still down"))
    clock.advance(5)
    assert q.replay_dead_letter([job_id], actor="ops@example.com") == [job_id]
    [third] = q.claim(1)
    q.complete(third, started_ms=clock.now_ms())

    job = q.get_job_status(job_id)
    assert job is not None and job.state is JobState.SUCCEEDED
    kinds = [e.kind for e in job.history]
    assert kinds == [EventKind.RETRIED, EventKind.DEAD, EventKind.REPLAYED, EventKind.SUCCEEDED]
    retried, dead, replayed, done = job.history
    assert (retried.attempt, dead.attempt, done.attempt) == (1, 2, 1)
    assert retried.error == "RuntimeError: smtp down" and dead.error == "RuntimeError: still down"
    assert retried.next_run_at is not None
    assert retried.next_run_at.timestamp() == pytest.approx(retried.at.timestamp() + 30)
    assert retried.started_at is not None
    assert (retried.at - retried.started_at).total_seconds() == pytest.approx(1.0)
    assert retried.processor == q.processor_id and done.processor == q.processor_id
    assert replayed.actor == "ops@example.com" and replayed.attempt is None


def test_an_expired_lease_is_in_the_history(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job(EMAIL, email_payload())
    rig.queue.claim(1, lease_s=5)
    rig.clock.advance(6)
    [again] = rig.queue.claim(1)
    rig.queue.complete(again)
    job = rig.queue.get_job_status(job_id)
    assert job is not None
    assert [e.kind for e in job.history] == [EventKind.LEASE_EXPIRED, EventKind.SUCCEEDED]
    assert job.history[0].attempt == 1 and job.history[1].attempt == 2
    assert job.history[0].error is not None and "LeaseExpired" in job.history[0].error


def test_history_is_bounded_in_python_and_in_the_scripts_alike(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job(EMAIL, email_payload(), max_attempts=1)
    for _ in range(HISTORY_LIMIT):  # each round: a dead attempt (Python) and a replay (Lua)
        [claimed] = rig.queue.claim(1)
        rig.queue.fail(claimed, "x" * 2000)
        rig.queue.replay_dead_letter([job_id], actor="ops")
    job = rig.queue.get_job_status(job_id)
    assert job is not None and len(job.history) == HISTORY_LIMIT
    assert job.history[-1].kind is EventKind.REPLAYED
    assert all(e.error is None or len(e.error) <= 500 for e in job.history)


def test_list_by_state_and_type_with_paging_and_order(rig: QueueRig) -> None:
    q, clock = rig.queue, rig.clock
    ready = []
    for _ in range(5):
        ready.append(q.enqueue_job(AUDIT, audit_payload()))
        clock.advance(1)
    email = q.enqueue_job(EMAIL, email_payload())
    later = q.enqueue_job(AUDIT, audit_payload(), delay_s=600)
    clock.advance(1)
    [running] = q.claim(1)  # the oldest audit job
    dead = q.enqueue_job(EMAIL, email_payload(), max_attempts=1)
    [to_kill] = q.claim(1, types=[EMAIL])  # the first email
    q.fail(to_kill, "boom", permanent=True)

    page = q.list_jobs("ready", job_type=AUDIT, limit=2)
    assert [j.id for j in page.jobs] == ready[1:3] and page.total == 4 and page.complete
    page = q.list_jobs("ready", job_type=AUDIT, limit=2, offset=2)
    assert [j.id for j in page.jobs] == ready[3:5]
    newest = q.list_jobs("ready", newest_first=True, limit=10)
    assert [j.id for j in newest.jobs] == [dead, *reversed(ready[1:])]
    assert all(j.state is JobState.QUEUED for j in newest.jobs)
    assert to_kill.id == email
    scheduled = q.list_jobs("scheduled")
    assert [j.id for j in scheduled.jobs] == [later]
    assert scheduled.jobs[0].state is JobState.SCHEDULED
    assert [j.id for j in q.list_jobs("running").jobs] == [running.id]
    assert q.list_jobs("running").jobs[0].state is JobState.RUNNING
    assert [j.id for j in q.list_jobs("dead", job_type=EMAIL).jobs] == [email]
    assert q.list_jobs("dead", job_type=AUDIT).total == 0
    with pytest.raises(InvalidArgumentError) as bad:
        q.list_jobs("finished")  # type: ignore[arg-type]
    assert bad.value.field == "state"
    with pytest.raises(UnknownJobTypeError):
        q.list_jobs("ready", job_type="nope")


def test_find_the_jobs_of_one_escrow(rig: QueueRig) -> None:
    q = rig.queue
    mine = [
        q.enqueue_job(EMAIL, email_payload("esc-42")),
        q.enqueue_job(AUDIT, audit_payload("esc-42")),
    ]
    q.enqueue_job(AUDIT, audit_payload("esc-420"))  # a longer id that starts the same
    [claimed] = q.claim(1, types=[EMAIL])
    q.fail(claimed, "boom", permanent=True)  # esc-42's email is dead
    found, complete = q.find_jobs("esc-42")
    assert complete
    assert {j.id: j.state for j in found} == {mine[0]: JobState.DEAD, mine[1]: JobState.QUEUED}
    assert q.find_jobs("esc-nothing") == ([], True)
    with pytest.raises(InvalidArgumentError):
        q.find_jobs('esc"1')


def test_cancel_a_waiting_job(rig: QueueRig) -> None:
    q = rig.queue
    job_id = q.enqueue_job(EMAIL, email_payload(), delay_s=60)
    q.cancel_job(job_id, actor="alice")
    job = q.get_job_status(job_id)
    assert job is not None and job.state is JobState.CANCELLED
    assert job.history[-1].kind is EventKind.CANCELLED and job.history[-1].actor == "alice"
    assert 0 < rig.raw.ttl(q.keys.job(job_id)) <= q.settings.retention_s
    rig.clock.advance(61)
    assert q.claim(10) == []
    with pytest.raises(JobStateError) as again:
        q.cancel_job(job_id, actor="alice")
    assert again.value.state == "cancelled"
    with pytest.raises(JobNotFoundError):
        q.cancel_job("no-such-job", actor="alice")


def test_a_running_job_cannot_be_cancelled_or_run_now(rig: QueueRig) -> None:
    q = rig.queue
    job_id = q.enqueue_job(EMAIL, email_payload())
    [claimed] = q.claim(1)
    for action in (q.cancel_job, q.run_job_now):
        with pytest.raises(JobStateError) as refused:
            action(job_id, actor="alice")
        assert refused.value.state == "running"
    q.complete(claimed)
    assert q.get_job_status(job_id).state is JobState.SUCCEEDED  # type: ignore[union-attr]


def test_run_now_makes_a_backing_off_job_due(rig: QueueRig) -> None:
    q = rig.queue
    job_id = q.enqueue_job(EMAIL, email_payload())
    [claimed] = q.claim(1)
    q.fail(claimed, "flaky", delay_s=3600)
    assert q.claim(1) == []
    q.run_job_now(job_id, actor="bob")
    job = q.get_job_status(job_id)
    assert job is not None and job.state is JobState.QUEUED
    assert job.history[-1].kind is EventKind.RUN_NOW and job.history[-1].actor == "bob"
    [again] = q.claim(1)
    assert again.id == job_id and again.attempt == 2


def test_a_paused_type_waits_counted_while_others_run(rig: QueueRig) -> None:
    q = rig.queue
    for _ in range(60):  # a backlog of the paused type ahead of the other type's job
        q.enqueue_job(AUDIT, audit_payload())
    rig.clock.advance(1)
    email = q.enqueue_job(EMAIL, email_payload())
    assert q.pause_type(AUDIT, actor="carol") is True
    assert q.pause_type(AUDIT, actor="carol") is False
    [claimed] = q.claim(10)
    assert claimed.id == email
    assert q.claim(10) == []
    stats = q.get_queue_stats()
    assert stats.by_type[AUDIT].ready == 60 and stats.by_type[AUDIT].paused
    assert stats.paused_types == [AUDIT]
    assert stats.by_type[AUDIT].oldest_ready_age_s == pytest.approx(1.0)
    assert stats.oldest_ready_age_s == 0.0  # paused types do not count as "nothing drains"
    assert q.list_jobs("ready").total == 60  # the pause member is no job
    assert q.resume_type(AUDIT, actor="carol") is True
    assert not q.get_queue_stats().by_type[AUDIT].paused
    assert len(q.claim(100)) == 60


def test_a_paused_types_expired_lease_is_reaped_but_not_claimed(rig: QueueRig) -> None:
    q = rig.queue
    job_id = q.enqueue_job(AUDIT, audit_payload())
    q.claim(1, lease_s=5)
    q.pause_type(AUDIT, actor="carol")
    rig.clock.advance(6)
    assert q.claim(10) == []
    job = q.get_job_status(job_id)
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 1


def test_every_action_is_audited_with_who_and_when(rig: QueueRig) -> None:
    q = rig.queue
    dead = q.enqueue_job(EMAIL, email_payload())
    q.fail(q.claim(1)[0], "boom", permanent=True)
    waiting = q.enqueue_job(AUDIT, audit_payload(), delay_s=60)
    q.replay_dead_letter([dead], actor="a1")
    q.fail(q.claim(1)[0], "boom", permanent=True)
    q.purge_dead_letter([dead], actor="a2")
    q.run_job_now(waiting, actor="a3")
    q.cancel_job(waiting, actor="a4")
    q.pause_type(EMAIL, actor="a5")
    rig.clock.advance(1)
    q.resume_type(EMAIL, actor="a6")
    log = q.audit_log()
    assert [(e.actor, e.action) for e in log] == [
        ("a6", "resume"),
        ("a5", "pause"),
        ("a4", "cancel"),
        ("a3", "run-now"),
        ("a2", "purge"),
        ("a1", "replay"),
    ]
    assert log[0].at.timestamp() * 1000 == rig.clock.now_ms() and log[0].type == EMAIL.value
    assert log[4].ids == [dead] and log[4].count == 1
    with pytest.raises(InvalidArgumentError) as bad:
        q.pause_type(EMAIL, actor="")
    assert bad.value.field == "actor"


def test_pause_adds_no_command_to_the_idle_poll_and_history_none_to_the_lifecycle(
    rig: QueueRig,
) -> None:
    q = rig.queue
    q.enqueue_job(AUDIT, audit_payload())
    q.complete(q.claim(1)[0])  # scripts loaded
    q.pause_type(EMAIL, actor="ops")
    before = rig.counter.round_trips
    assert q.claim(10) == []
    assert rig.counter.round_trips - before == 1
    q.enqueue_job(AUDIT, audit_payload())
    [claimed] = q.claim(1)
    q.complete(claimed)
    assert rig.counter.round_trips - before == 4


def test_a_replay_request_resent_after_the_job_died_again_replays_it_once(
    rig: QueueRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every copy of one replay request carries the same token (a resend, or a late
    original): a copy that arrives after the replayed job ran and died again leaves it in
    the dead-letter queue, and adds no second audit entry."""
    from jobs_core.queue import operations

    job_id = rig.queue.enqueue_job(AUDIT, audit_payload(), max_attempts=1)
    rig.queue.fail(rig.queue.claim(1)[0], "boom")
    monkeypatch.setattr(operations, "request_token", lambda: "request-1")
    assert rig.queue.replay_dead_letter([job_id], actor="ops") == [job_id]
    rig.queue.fail(rig.queue.claim(1)[0], "boom again")  # its history is re-encoded here
    assert rig.queue.replay_dead_letter([job_id], actor="ops") == []  # the late copy
    assert rig.queue.get_queue_stats().dead_letter == 1
    assert [e.action for e in rig.queue.audit_log()].count("replay") == 1

    monkeypatch.setattr(operations, "request_token", lambda: "request-2")
    assert rig.queue.replay_dead_letter([job_id], actor="ops") == [job_id]  # a new request


def test_a_late_copy_of_a_pause_cannot_undo_a_later_resume(
    rig: QueueRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pause request resent (or its original arriving late) after an operator resumed
    the type: the copy finds its request in the audit and changes nothing."""
    from jobs_core.queue import operations

    monkeypatch.setattr(operations, "request_token", lambda: "pause-1")
    assert rig.queue.pause_type(AUDIT, actor="alice") is True
    monkeypatch.setattr(operations, "request_token", lambda: "resume-1")
    assert rig.queue.resume_type(AUDIT, actor="bob") is True
    monkeypatch.setattr(operations, "request_token", lambda: "pause-1")
    assert rig.queue.pause_type(AUDIT, actor="alice") is True  # what the first copy did
    assert rig.queue.get_queue_stats().by_type[AUDIT].paused_since is None
    assert [e.action for e in rig.queue.audit_log()] == ["resume", "pause"]
    monkeypatch.setattr(operations, "request_token", lambda: "pause-2")
    assert rig.queue.pause_type(AUDIT, actor="alice") is True  # a new request does pause
    assert rig.queue.get_queue_stats().by_type[AUDIT].paused_since is not None
