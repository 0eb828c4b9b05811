"""Idempotency-Key: a retried request gets the first answer and moves no money twice.

Also: a key reused for another request is 422; keys belong to their caller; a request
that is still running makes its retry wait (409); and a request that died between
Stripe and its final write is finished by a later retry, Stripe replaying the capture.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from escrow.api import build_app
from escrow.service import EscrowService
from jobs_core import JobQueue
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import (
    call,
    funded_escrow,
    invoke,
    job_counts,
    load_event,
)


def count_items(kind: str) -> int:
    items = boto3.client("dynamodb").scan(TableName="escrow-test")["Items"]
    return sum(1 for i in items if i["kind"]["S"] == kind)


def test_a_retried_release_replays_the_first_answer(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, _ = funded_escrow(stripe_api)
    job_counts(queue)
    first = call("release", escrow_id=escrow_id)
    second = call("release", escrow_id=escrow_id)
    assert first.status == second.status == 200
    assert second.body == first.body
    assert second.headers.get("idempotent-replayed") == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(stripe_api.requests_to("/capture")) == 1
    assert len(job_counts(queue)) == 3
    history = call("get_escrow", escrow_id=escrow_id).body["history"]
    assert [h["action"] for h in history].count("release") == 1


def test_a_retried_create_makes_one_escrow_and_one_payment_intent(
    service: EscrowService, stripe_api: StripeServer
) -> None:
    first = call("create")
    second = call("create")
    assert first.status == second.status == 201
    assert second.body == first.body
    assert len(stripe_api.requests_to("/v1/payment_intents")) == 1
    assert count_items("escrow") == 1


def test_the_same_key_for_a_different_request_is_422_and_changes_nothing(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_a, _ = funded_escrow(stripe_api)
    escrow_b, intent_b = funded_escrow(stripe_api)
    job_counts(queue)
    assert call("release", escrow_id=escrow_a).status == 200
    reused = call("release", escrow_id=escrow_b)  # release.json's key, another escrow
    assert reused.status == 422
    assert reused.error["code"] == "idempotency_key_reused"
    assert reused.error["field"] == "Idempotency-Key"
    assert stripe_api.payment_intent(intent_b)["status"] == "requires_capture"
    b = call("get_escrow", escrow_id=escrow_b).body["escrow"]
    assert b["state"] == "funded"
    creates = len(stripe_api.requests_to("/v1/payment_intents"))
    body = json.loads(load_event("create")["body"])
    assert call("create", body=body).status == 201
    changed = call("create", body={**body, "amount": 30000})
    assert changed.status == 422 and changed.error["code"] == "idempotency_key_reused"
    assert len(stripe_api.requests_to("/v1/payment_intents")) == creates + 1


def test_keys_belong_to_their_caller(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_a, _ = funded_escrow(stripe_api)
    escrow_b, _ = funded_escrow(stripe_api)
    key = {"idempotency-key": "shared-key-1"}
    released = call("release", escrow_id=escrow_a, headers=key)
    refunded = call("refund", escrow_id=escrow_b, headers=key)  # the seller, same key
    assert released.status == refunded.status == 200
    assert refunded.body["escrow"]["state"] == "refunded"
    assert "idempotent-replayed" not in refunded.headers


@pytest.mark.parametrize("header", ["", " " * 3, "k" * 256, "caf\u00e9"])
def test_bad_keys_are_400(service: EscrowService, stripe_api: StripeServer, header: str) -> None:
    escrow_id, _ = funded_escrow(stripe_api)
    reply = call("release", escrow_id=escrow_id, headers={"idempotency-key": header})
    assert reply.status == 400 and reply.error["field"] == "Idempotency-Key"


def test_a_retry_while_the_first_request_runs_is_409_in_progress(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    escrow_id, _ = funded_escrow(stripe_api)
    job_counts(queue)
    event = load_event("release", escrow_id=escrow_id)
    seen: list[Any] = []
    capture = service.gateway.capture

    def capture_while_retried(*args: Any, **kwargs: Any) -> str:
        # The client times out and retries while Stripe is still answering the first.
        retry = load_event("release", escrow_id=escrow_id)
        seen.append(invoke(retry, build_app(lambda: service).resolve))
        return capture(*args, **kwargs)

    monkeypatch.setattr(service.gateway, "capture", capture_while_retried)
    first = invoke(event)
    assert first.status == 200
    [retry] = seen
    assert retry.status == 409
    assert retry.error["code"] == "request_in_progress"
    monkeypatch.undo()
    assert call("release", escrow_id=escrow_id).body == first.body  # now a replay
    assert len(stripe_api.requests_to("/capture")) == 1


def test_a_request_that_died_after_stripe_is_finished_by_its_retry(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    escrow_id, intent_id = funded_escrow(stripe_api)
    job_counts(queue)
    write = service.store.write

    def die_on_final_write(*args: Any, **kwargs: Any) -> None:
        if kwargs.get("history") is not None:
            raise SystemExit("the Lambda was killed")  # after Stripe captured, before T2
        write(*args, **kwargs)

    monkeypatch.setattr(service.store, "write", die_on_final_write)
    with pytest.raises(SystemExit):
        call("release", escrow_id=escrow_id)
    monkeypatch.undo()
    assert stripe_api.payment_intent(intent_id)["status"] == "succeeded"  # money moved
    state = call("get_escrow", escrow_id=escrow_id).body["escrow"]
    assert state["state"] == "releasing"
    assert job_counts(queue) == {}  # nothing was committed, so nothing queued

    # A retry at once finds the claim still held.
    soon = call("release", escrow_id=escrow_id)
    assert soon.status == 409 and soon.error["code"] == "request_in_progress"
    # After the claim timeout the retry takes it over; Stripe replays the capture.
    later = time.time_ns() // 1_000_000 + int(service.claim_timeout_s * 1000) + 1
    monkeypatch.setattr(service, "_clock", lambda: later)
    done = call("release", escrow_id=escrow_id)
    assert done.status == 200, done.body
    assert done.body["escrow"]["state"] == "released"
    captures = stripe_api.requests_to("/capture")
    assert [c.replayed for c in captures] == [False, True]
    assert len(job_counts(queue)) == 3
    history = call("get_escrow", escrow_id=escrow_id).body["history"]
    assert [h["to"] for h in history] == ["pending", "funded", "released"]
