"""Enqueue: ids, dedupe, batches in one round trip, and bad input that writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from jobs_core import (
    EnqueueOptions,
    JobState,
    JobType,
    PayloadTooLargeError,
    PayloadValidationError,
    Settings,
    UnknownJobTypeError,
)

from tests.contract.conftest import BACKENDS, QueueRig, make_rig

RELEASE = {"transactionId": "esc-123", "recipientEmail": "user@example.com", "amount": 10000}


def test_documented_example_enqueues_with_camel_case_payload(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job(
        "send_release_email", RELEASE, dedupe_key="escrow-esc-123-release"
    )

    job = rig.queue.get_job_status(job_id)
    assert job is not None
    assert job.state is JobState.QUEUED
    assert job.type is JobType.SEND_RELEASE_EMAIL
    assert job.payload == {
        "transaction_id": "esc-123",
        "recipient_email": "user@example.com",
        "amount": 10000,
        "currency": "USD",
    }
    assert job.attempts == 0 and job.max_attempts == 3
    assert job.dedupe_key == "escrow-esc-123-release"


def test_ids_are_time_sortable(rig: QueueRig) -> None:
    first = rig.queue.enqueue_job("send_release_email", RELEASE)
    rig.clock.advance(0.002)
    second = rig.queue.enqueue_job("send_release_email", RELEASE)
    assert uuid.UUID(first).version == 7
    assert first < second


def test_single_enqueue_is_one_round_trip(rig: QueueRig) -> None:
    rig.queue.enqueue_job("send_release_email", RELEASE)  # loads the script (NOSCRIPT + EVAL)
    before = rig.counter.round_trips
    rig.queue.enqueue_job("send_release_email", RELEASE, dedupe_key="k-1")
    assert rig.counter.round_trips - before == 1


def test_duplicate_dedupe_key_returns_existing_id_and_writes_nothing(rig: QueueRig) -> None:
    first = rig.queue.enqueue_job(
        "send_release_email", RELEASE, dedupe_key="escrow-esc-123-release"
    )
    keys_before = rig.keys_written()
    second = rig.queue.enqueue_job(
        "send_release_email", RELEASE, dedupe_key="escrow-esc-123-release"
    )

    assert second == first
    assert rig.keys_written() == keys_before
    assert rig.queue.get_queue_stats().ready == 1


def test_a_dedupe_key_holds_while_its_job_lives_and_no_longer(rig: QueueRig) -> None:
    """The id derives from the dedupe key, so the job's record is the dedupe key: waiting,
    running, dead, and for ``finished_ttl_s`` after success; no key of its own."""
    first = rig.queue.enqueue_batch([("send_release_email", RELEASE, {"dedupe_key": "k"})])
    assert not first.duplicates[0]
    assert not any(":dedupe:" in key for key in rig.keys_written())
    job_id = first.ids[0]
    [claimed] = rig.queue.claim(1)
    rig.clock.advance(0.001)  # the same bytes in the same millisecond: a resend of the first
    again = rig.queue.enqueue_batch([("send_release_email", RELEASE, {"dedupe_key": "k"})])
    assert again.ids == [job_id] and again.duplicates == [True]  # running
    rig.queue.complete(claimed)
    rig.clock.advance(rig.queue.settings.dedupe_window_s + 1)  # past the old window
    assert rig.queue.enqueue_job("send_release_email", RELEASE, dedupe_key="k") == job_id
    ttl = rig.raw.ttl(rig.queue.keys.job(job_id))
    assert rig.queue.settings.finished_ttl_s - 5 < ttl <= rig.queue.settings.finished_ttl_s
    assert rig.queue.get_queue_stats().ready == 0  # nothing new was queued

    rig.raw.delete(rig.queue.keys.job(job_id))  # what the record's TTL does in the end
    fresh = rig.queue.enqueue_batch([("send_release_email", RELEASE, {"dedupe_key": "k"})])
    assert fresh.ids == [job_id] and fresh.duplicates == [False]
    assert rig.queue.get_queue_stats().ready == 1


def test_a_dead_job_keeps_its_dedupe_key(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE, dedupe_key="dies")
    [claimed] = rig.queue.claim(1)
    rig.queue.fail(claimed, "boom", permanent=True)
    rig.clock.advance(rig.queue.settings.finished_ttl_s + 1)
    result = rig.queue.enqueue_batch([("send_release_email", RELEASE, {"dedupe_key": "dies"})])
    assert result.ids == [job_id] and result.duplicates == [True]
    assert rig.queue.get_queue_stats().dead_letter == 1
    assert rig.queue.get_queue_stats().ready == 0


def test_three_job_batch_is_one_round_trip_with_dedupe_per_job(rig: QueueRig) -> None:
    rig.queue.enqueue_jobs(
        [("audit_log_created", {"transactionId": "e", "action": "a", "actor": "x"})]
    )
    before = rig.counter.round_trips
    ids = rig.queue.enqueue_jobs(
        [
            ("send_release_email", RELEASE, {"dedupe_key": "esc-1-release-email"}),
            (
                "webhook_escrow_status_changed",
                {
                    "transactionId": "esc-1",
                    "webhookUrl": "https://partner.example.com/hooks",
                    "webhookSecretRef": "partner-1",
                    "status": "released",
                },
                EnqueueOptions(dedupe_key="esc-1-release-webhook"),
            ),
            ("send_release_email", RELEASE, {"dedupe_key": "esc-1-release-email"}),
        ]
    )
    assert rig.counter.round_trips - before == 1
    assert ids[0] == ids[2] != ids[1]
    stats = rig.queue.get_queue_stats()
    assert stats.by_type[JobType.SEND_RELEASE_EMAIL].ready == 1
    assert stats.by_type[JobType.WEBHOOK_ESCROW_STATUS_CHANGED].ready == 1


def test_delayed_job_is_scheduled_until_due(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE, delay_s=30)
    assert rig.queue.get_job_status(job_id).state is JobState.SCHEDULED  # type: ignore[union-attr]
    assert rig.queue.claim(10) == []
    assert rig.queue.get_queue_stats().scheduled == 1

    rig.clock.advance(30)
    assert rig.queue.get_job_status(job_id).state is JobState.QUEUED  # type: ignore[union-attr]
    [claimed] = rig.queue.claim(10)
    assert claimed.id == job_id


@pytest.mark.parametrize(
    ("job_type", "payload", "error", "field"),
    [
        ("send_birthday_card", RELEASE, UnknownJobTypeError, "type"),
        ("send_release_email", {**RELEASE, "amount": -5}, PayloadValidationError, "payload.amount"),
        (
            "send_release_email",
            {**RELEASE, "recipientEmail": "nope"},
            PayloadValidationError,
            "payload.recipientEmail",
        ),
        (
            "send_release_email",
            {**RELEASE, "colour": "red"},
            PayloadValidationError,
            "payload.colour",
        ),
        (
            "send_release_email",
            {"transactionId": "esc-1", "amount": 1},
            PayloadValidationError,
            "payload.recipientEmail",
        ),
        ("send_release_email", ["not", "an", "object"], PayloadValidationError, "payload"),
    ],
)
def test_bad_input_raises_typed_error_and_writes_nothing(
    rig: QueueRig, job_type: str, payload: object, error: type[Exception], field: str
) -> None:
    with pytest.raises(error) as info:
        rig.queue.enqueue_job(job_type, payload)  # type: ignore[arg-type]
    assert info.value.field == field  # type: ignore[attr-defined]
    assert rig.keys_written() == []
    assert rig.counter.round_trips == 0


def test_oversized_payload_is_refused(rig: QueueRig) -> None:
    payload = {
        "transactionId": "esc-1",
        "action": "x",
        "actor": "a" * 200,
        "requestId": "r" * 70_000,
    }
    with pytest.raises(PayloadTooLargeError):
        rig.queue.enqueue_job("audit_log_created", payload)
    assert rig.keys_written() == []


def test_one_bad_spec_refuses_the_whole_batch(rig: QueueRig) -> None:
    with pytest.raises(PayloadValidationError):
        rig.queue.enqueue_jobs(
            [("send_release_email", RELEASE), ("send_release_email", {"amount": 1})]
        )
    assert rig.keys_written() == []


def test_bad_options_are_refused(rig: QueueRig) -> None:
    with pytest.raises(PayloadValidationError) as info:
        rig.queue.enqueue_job("send_release_email", RELEASE, dedupe_key="has space")
    assert info.value.field == "options.dedupe_key"
    with pytest.raises(PayloadValidationError):
        rig.queue.enqueue_job("send_release_email", RELEASE, max_attempts=0)
    assert rig.keys_written() == []


def test_all_keys_share_one_hash_tag(rig: QueueRig) -> None:
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE, dedupe_key="d")
    [claimed] = rig.queue.claim(1)
    rig.queue.fail(claimed, "boom", permanent=True)
    assert job_id
    tag = "{" + rig.queue.settings.namespace + "}"
    keys = rig.keys_written()
    assert len(keys) >= 2  # dead, job (the timeline is empty; claim keys: resends)
    assert all(key.startswith(tag + ":") for key in keys)


@pytest.fixture(params=BACKENDS)
def upgrading(request: pytest.FixtureRequest) -> Iterator[QueueRig]:
    """A queue just upgraded from a version that kept dedupe keys of their own."""
    yield from make_rig(request.param, request, settings=Settings(legacy_dedupe_keys=True))


def test_after_an_upgrade_an_earlier_versions_dedupe_key_is_honoured(
    upgrading: QueueRig,
) -> None:
    rig = upgrading
    rig.raw.set(rig.queue.keys.prefix + "dedupe:esc-1-release", "an-earlier-id", ex=3600)
    spec = ("send_release_email", RELEASE, {"dedupe_key": "esc-1-release"})
    other = ("send_release_email", RELEASE, {"dedupe_key": "esc-2-release"})
    result = rig.queue.enqueue_batch([spec, other])
    assert result.ids[0] == "an-earlier-id" and result.duplicates == [True, False]
    job_keys = [k for k in rig.keys_written() if ":job:" in k]
    assert job_keys == [rig.queue.keys.job(result.ids[1])]  # the second job's record only
    assert rig.queue.get_queue_stats().ready == 1


def test_without_the_upgrade_setting_earlier_dedupe_keys_are_not_read(rig: QueueRig) -> None:
    rig.raw.set(rig.queue.keys.prefix + "dedupe:esc-1-release", "an-earlier-id", ex=3600)
    job_id = rig.queue.enqueue_job("send_release_email", RELEASE, dedupe_key="esc-1-release")
    assert job_id != "an-earlier-id"
