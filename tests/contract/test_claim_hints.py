"""Claim hints: a kick carries the records its enqueue wrote, and the drain's first claim
leases a job found as enqueued without reading its record. Anything else about the job
(claimed, retried, reaped) makes the claim read the record, as without hints."""

from __future__ import annotations

import pytest
from jobs_core import ClaimHint, Job, JobState, JobType
from jobs_core.queue.hints import carries_personal_data, hints_for, parse_hints

from tests.contract.conftest import QueueRig
from tests.contract.test_claim_scan import commands

AUDIT = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}
RELEASE = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 10000}


def enqueue_hinted(rig: QueueRig, count: int = 1, **options: object) -> list[ClaimHint]:
    specs = [(JobType.AUDIT_LOG_CREATED, AUDIT, options or None)] * count
    result = rig.queue.enqueue_batch(specs, read_marker=True)
    hints = hints_for(result.queued)
    assert [h.member.split("|")[1] for h in hints] == result.ids
    return hints


def test_a_hinted_job_is_leased_without_its_record_being_read(rig: QueueRig) -> None:
    rig.queue.enqueue_job("audit_log_created", AUDIT)  # scripts loaded
    rig.queue.complete(rig.queue.claim(1)[0])
    [hint] = enqueue_hinted(rig, dedupe_key="release-esc-1")
    before = commands(rig)
    [claimed] = rig.queue.claim_batch(16, hints=[hint]).jobs
    after = commands(rig)
    stored = rig.raw.get(rig.queue.keys.job(claimed.id))
    assert stored == hint.record  # what the claim returned is what Redis holds
    assert claimed.job == Job.from_record(hint.record, state=JobState.RUNNING)
    assert claimed.attempt == 1 and claimed.job.payload["actor"] == "buyer-1"
    if before is not None and after is not None:
        assert after - before == 4  # EVALSHA, ZRANGEBYSCORE, ZREM, ZADD: no MGET
    rig.queue.complete(claimed)
    done = rig.queue.get_job_status(claimed.id)
    assert done is not None and done.state is JobState.SUCCEEDED


def test_a_hint_for_a_job_another_claim_took_takes_nothing(rig: QueueRig) -> None:
    [hint] = enqueue_hinted(rig)
    [taken] = rig.queue.claim(1)
    assert rig.queue.claim_batch(16, hints=[hint]).jobs == []  # a second copy of the kick
    rig.queue.complete(taken)


def test_a_stale_hint_gives_way_to_the_record_of_a_retried_job(rig: QueueRig) -> None:
    """The job ran, failed and is due again: its record has changed (one attempt, the
    error), so the kick's copy must not be used; the claim reads the record."""
    [hint] = enqueue_hinted(rig)
    [first] = rig.queue.claim(1)
    rig.queue.fail(first, RuntimeError("SMTP timeout"), delay_s=1)
    rig.clock.advance(2)
    [again] = rig.queue.claim_batch(16, hints=[hint]).jobs
    assert again.id == first.id and again.attempt == 2
    assert again.job.attempts == 1 and again.job.last_error is not None


def test_a_stale_hint_gives_way_to_the_record_of_a_reaped_job(rig: QueueRig) -> None:
    [hint] = enqueue_hinted(rig)
    rig.queue.claim(1, lease_s=5)  # its holder dies
    rig.clock.advance(6)
    [again] = rig.queue.claim_batch(16, hints=[hint]).jobs
    assert again.attempt == 2 and again.job.history[-1].kind.value == "lease_expired"


def test_a_hinted_claim_still_reaps_first_and_sweeps_other_due_work(rig: QueueRig) -> None:
    """Hints only spare reads: the claim's one scan still leases expired leases first and
    takes the other due jobs too."""
    [victim] = rig.queue.enqueue_jobs([("send_release_email", RELEASE)])
    rig.queue.claim(1, lease_s=5)
    rig.clock.advance(6)
    other = rig.queue.enqueue_job("send_release_email", RELEASE)
    hints = enqueue_hinted(rig, 2)
    claimed = rig.queue.claim_batch(16, hints=hints).jobs
    assert [c.id for c in claimed][:1] == [victim] and claimed[0].attempt == 2
    assert {c.id for c in claimed[1:]} == {other, *(h.member.split("|")[1] for h in hints)}
    stats = rig.queue.get_queue_stats()
    assert (stats.running, stats.ready) == (4, 0)


def test_hints_of_a_paused_type_lease_nothing(rig: QueueRig) -> None:
    hints = enqueue_hinted(rig)
    rig.queue.pause_type("audit_log_created", actor="carol")
    assert rig.queue.claim_batch(16, hints=hints).jobs == []
    rig.queue.resume_type("audit_log_created", actor="carol")
    assert len(rig.queue.claim_batch(16, hints=hints).jobs) == 1


def test_a_delayed_hinted_job_is_leased_when_due(rig: QueueRig) -> None:
    [hint] = enqueue_hinted(rig, delay_s=5)
    early = rig.queue.claim_batch(16, hints=[hint])
    assert early.jobs == [] and early.due_in_s() == 5.0
    rig.clock.advance(5)
    assert len(rig.queue.claim_batch(16, hints=[hint]).jobs) == 1


def test_jobs_with_personal_data_are_never_hinted(rig: QueueRig) -> None:
    result = rig.queue.enqueue_batch(
        [("send_release_email", RELEASE), ("audit_log_created", AUDIT)], read_marker=True
    )
    [hint] = hints_for(result.queued)
    assert hint.member.startswith("audit_log_created|")
    personal = {t for t in JobType if carries_personal_data(t)}
    assert personal == {t for t in JobType if t.value.startswith("send_")} | {
        JobType.NOTIFY_DISPUTE_RESOLVED
    }


def test_a_duplicate_enqueue_carries_no_hint(rig: QueueRig) -> None:
    enqueue_hinted(rig, dedupe_key="once")
    rig.clock.advance(1)  # a twin request: its record differs (created a second later)
    again = rig.queue.enqueue_batch(
        [(JobType.AUDIT_LOG_CREATED, AUDIT, {"dedupe_key": "once"})], read_marker=True
    )
    assert again.duplicates == [True] and hints_for(again.queued) == []


@pytest.mark.parametrize(
    "raw",
    [
        "not a list",
        [{"member": "audit_log_created|x", "score": "12", "record": "{}"}],  # whole ms
        [{"member": "Audit|1", "score": "1.75", "record": "{}"}],
        [{"member": "audit_log_created|1", "score": "1.75", "record": "{}", "extra": 1}],
        [{"member": "audit_log_created|1", "score": "1.75", "record": "{}"}] * 101,
    ],
)
def test_malformed_hints_are_ignored(raw: object) -> None:
    assert parse_hints(raw) == []


def test_well_formed_hints_round_trip_through_a_kick_event(rig: QueueRig) -> None:
    hints = enqueue_hinted(rig, 3)
    assert parse_hints([h.model_dump() for h in hints]) == hints
