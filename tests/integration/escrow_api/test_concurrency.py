"""Concurrent requests on one escrow: exactly one moves it, and Stripe is asked once.

Each request runs on its own thread through its own resolver, into one service (as
two Lambda instances share one table and one Stripe account). A barrier inside
``store.load`` holds every request until all of them have read the escrow as
funded, so each race really is "both saw funded, both try to move it".
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from escrow.api import build_app
from escrow.service import EscrowService
from jobs_core import JobQueue
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import (
    Reply,
    funded_escrow,
    invoke,
    job_counts,
    load_event,
)

ROUNDS = 8


def fresh() -> str:
    return uuid.uuid4().hex


def race(
    service: EscrowService, monkeypatch: pytest.MonkeyPatch, events: list[dict[str, Any]]
) -> list[Reply]:
    barrier = threading.Barrier(len(events))
    original: Callable[..., Any] = service.store.load

    def load(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        barrier.wait(timeout=60)
        return result

    with monkeypatch.context() as patch:
        patch.setattr(service.store, "load", load)
        handlers = [build_app(lambda: service).resolve for _ in events]
        with ThreadPoolExecutor(len(events)) as pool:
            futures = [pool.submit(invoke, e, h) for e, h in zip(events, handlers, strict=True)]
            return [f.result(timeout=120) for f in futures]


def money_moves(stripe_api: StripeServer, intent_id: str) -> list[str]:
    """The capture/cancel/refund requests Stripe executed (not replays) for one intent."""
    moves = []
    for r in stripe_api.requests:
        if r.replayed or r.status != 200:
            continue
        if r.path.startswith(f"/v1/payment_intents/{intent_id}/"):
            moves.append(r.path.rsplit("/", 1)[1])
        elif r.path == "/v1/refunds" and r.params.get("payment_intent") == intent_id:
            moves.append("refund")
    return moves


def test_release_and_refund_at_once_exactly_one_wins(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    winners = set()
    for _ in range(ROUNDS):
        escrow_id, intent_id = funded_escrow(stripe_api)
        job_counts(queue)
        release, refund = race(
            service,
            monkeypatch,
            [
                load_event("release", escrow_id=escrow_id, headers={"idempotency-key": fresh()}),
                load_event("refund", escrow_id=escrow_id, headers={"idempotency-key": fresh()}),
            ],
        )
        assert sorted([release.status, refund.status]) == [200, 409], (release, refund)
        winner, loser = (release, refund) if release.status == 200 else (refund, release)
        final = winner.body["escrow"]["state"]
        winners.add(final)
        assert loser.error["code"] == "invalid_state"
        assert loser.error["currentState"] in ("releasing", "refunding", final)
        assert money_moves(stripe_api, intent_id) == [
            "capture" if final == "released" else "cancel"
        ]
        status = stripe_api.payment_intent(intent_id)["status"]
        assert status == ("succeeded" if final == "released" else "canceled")
        event_jobs = {key for _, key in job_counts(queue)}
        assert event_jobs and all(k.startswith(f"escrow-{escrow_id}-{final}-") for k in event_jobs)
    assert winners  # (which one wins is up to the race)


def test_a_double_clicked_release_captures_once(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    escrow_id, intent_id = funded_escrow(stripe_api)
    job_counts(queue)
    events = [
        load_event("release", escrow_id=escrow_id, headers={"idempotency-key": None})
        for _ in range(2)
    ]
    replies = race(service, monkeypatch, events)
    assert sorted(r.status for r in replies) == [200, 409]
    assert money_moves(stripe_api, intent_id) == ["capture"]
    assert len(job_counts(queue)) == 3


def test_the_same_idempotent_request_twice_at_once_captures_once(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    escrow_id, intent_id = funded_escrow(stripe_api)
    job_counts(queue)
    replies = race(service, monkeypatch, [load_event("release", escrow_id=escrow_id)] * 2)
    statuses = sorted(r.status for r in replies)
    # The second either waits its turn (409 in progress) or, if the first finished, replays.
    assert statuses in ([200, 200], [200, 409]), replies
    for reply in replies:
        if reply.status == 409:
            assert reply.error["code"] == "request_in_progress"
        else:
            assert reply.body["escrow"]["state"] == "released"
    assert money_moves(stripe_api, intent_id) == ["capture"]
    assert len(job_counts(queue)) == 3
