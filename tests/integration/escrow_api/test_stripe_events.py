"""Stripe-side events through the real webhook route, signed by the local Stripe server.

Each case makes something happen *at Stripe* (the authorisation lapses, a dashboard
refund, a chargeback opens and closes), delivers the events Stripe would send, twice
and out of order, and checks the escrow, its history and the jobs each change causes,
once.
"""

from __future__ import annotations

import time
from collections import Counter

from escrow.service import EscrowService
from jobs_core import JobQueue
from jobs_core import JobType as J
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import (
    ADMIN_EMAIL,
    call,
    deliver_events,
    drain,
    escrow_and_history,
    paid_escrow,
    released_escrow,
)

DAY_S = 86_400


def jobs(queue: JobQueue) -> Counter[J]:
    return Counter(c.job.type for c in drain(queue))


def notices(queue: JobQueue) -> list[tuple[str, list[str]]]:
    """The ready payment notices: (kind, recipient roles); other jobs are claimed too."""
    return [
        (c.job.payload["notice"], [r["role"] for r in c.job.payload["recipients"]])
        for c in drain(queue)
        if c.job.type is J.SEND_PAYMENT_NOTICE_EMAIL
    ]


def test_funding_records_the_capture_deadline_and_schedules_the_reminder(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = paid_escrow(stripe_api)
    escrow, _ = escrow_and_history(escrow_id)
    charge = stripe_api.charge(intent_id)
    assert charge is not None
    deadline_s = charge["payment_method_details"]["card"]["capture_before"]
    assert escrow["captureBefore"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(deadline_s)))
    # We asked for an extended authorisation; the test Visa card grants it (30 days).
    [create] = stripe_api.requests_to("/v1/payment_intents")
    card_options = create.params["payment_method_options"]["card"]
    assert card_options == {"request_extended_authorization": "if_available"}
    assert escrow["extendedAuthorization"] is True
    assert deadline_s - time.time() > 29 * DAY_S
    # The reminder is queued, delayed to two days before the deadline (dedupe key = its id).
    key = f"escrow-{escrow_id}-funded-send_payment_notice_email"
    reminder = {
        "transactionId": escrow_id, "amount": 1, "notice": "authorization_expiring",
        "recipients": [{"role": "admin", "email": ADMIN_EMAIL}],
    }  # fmt: skip
    [job_id] = queue.enqueue_batch(
        [(J.SEND_PAYMENT_NOTICE_EMAIL, reminder, {"dedupe_key": key})]
    ).ids
    job = queue.get_job_status(job_id)
    assert job is not None and job.state == "scheduled"
    assert abs(job.next_run_at.timestamp() - (deadline_s - 2 * DAY_S)) < 5
    assert job.payload["recipients"] == [
        {"role": "buyer", "email": "buyer@example.com"},
        {"role": "admin", "email": ADMIN_EMAIL},
    ]
    assert job.payload["payment_intent_id"] == intent_id


def test_an_expired_authorisation_expires_the_escrow_once(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = paid_escrow(stripe_api)
    drain(queue)
    stripe_api.expire_authorization(intent_id)
    replies = deliver_events(stripe_api, times=3)  # Stripe retries; the first one applies
    assert [r.status for r in replies] == [200, 200, 200]
    assert replies[0].body["state"] == "expired"
    assert [r.body.get("ignored") for r in replies[1:]] == ["escrow is expired"] * 2
    escrow, history = escrow_and_history(escrow_id)
    assert escrow["state"] == "expired"
    assert [(h["action"], h["from"], h["to"]) for h in history][-1] == (
        "expire", "funded", "expired",
    )  # fmt: skip
    assert sum(h["action"] == "expire" for h in history) == 1
    assert history[-1]["reason"] == "automatic"
    ready = drain(queue)
    assert Counter(c.job.type for c in ready) == {
        J.SEND_PAYMENT_NOTICE_EMAIL: 1, J.WEBHOOK_ESCROW_STATUS_CHANGED: 1, J.AUDIT_LOG_CREATED: 1,
    }  # fmt: skip
    [notice] = [c.job.payload for c in ready if c.job.type is J.SEND_PAYMENT_NOTICE_EMAIL]
    assert notice["notice"] == "authorization_expired"
    assert [r["role"] for r in notice["recipients"]] == ["buyer", "seller"]
    [hook] = [c.job.payload for c in ready if c.job.type is J.WEBHOOK_ESCROW_STATUS_CHANGED]
    assert (hook["status"], hook["previous_status"]) == ("expired", "funded")
    # A release now is refused with the state, and Stripe is not asked.
    captures = len(stripe_api.requests_to("/capture"))
    reply = call("release", escrow_id=escrow_id)
    assert reply.status == 409 and reply.error["currentState"] == "expired"
    assert len(stripe_api.requests_to("/capture")) == captures


def test_release_after_the_capture_deadline_is_409_authorization_expired(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    stripe_api.clock = lambda: time.time() - 31 * DAY_S  # paid 31 days ago
    escrow_id, _ = paid_escrow(stripe_api)
    stripe_api.clock = time.time
    captures = len(stripe_api.requests_to("/capture"))
    reply = call("release", escrow_id=escrow_id)
    assert reply.status == 409, reply.body
    assert reply.error["code"] == "authorization_expired"
    assert "expired" in reply.error["message"]
    assert reply.error["currentState"] == "funded"
    assert len(stripe_api.requests_to("/capture")) == captures
    assert escrow_and_history(escrow_id)[0]["state"] == "funded"


def test_release_that_stripe_refuses_as_cancelled_is_409_not_502(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = paid_escrow(stripe_api)
    stripe_api.expire_authorization(intent_id)  # its event is not delivered yet
    reply = call("release", escrow_id=escrow_id)
    assert reply.status == 409, reply.body
    assert reply.error["code"] == "authorization_expired"
    assert escrow_and_history(escrow_id)[0]["state"] == "funded"
    deliver_events(stripe_api)
    assert escrow_and_history(escrow_id)[0]["state"] == "expired"


def test_a_dashboard_refund_is_recorded_once_whatever_the_order(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = paid_escrow(stripe_api)
    assert call("release", escrow_id=escrow_id).status == 200
    drain(queue)
    stripe_api.dashboard_refund(intent_id, 4000)
    stripe_api.dashboard_refund(intent_id, 1000)
    # Stripe's events of the capture and both refunds, newest first, each twice.
    replies = deliver_events(stripe_api, times=2, reverse=True)
    assert all(r.status == 200 for r in replies)
    assert sum("applied" in r.body for r in replies) == 1  # the first read Stripe's 5000
    escrow, history = escrow_and_history(escrow_id)
    assert (escrow["state"], escrow["capturedAmount"], escrow["refundedAmount"]) == (
        "released", 10000, 5000,
    )  # fmt: skip
    assert [h["action"] for h in history].count("stripe_refund") == 1
    assert history[-1]["reason"] == "captured 10000, refunded 5000 at Stripe"
    assert jobs(queue) == {J.AUDIT_LOG_CREATED: 1}


def test_a_chargeback_on_a_captured_escrow_notifies_the_admin_and_records_the_outcome(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = released_escrow(stripe_api, queue)
    dispute = stripe_api.open_dispute(intent_id)
    deliver_events(stripe_api, times=2)
    escrow, _ = escrow_and_history(escrow_id)
    assert escrow["state"] == "released"  # terminal stays terminal
    assert escrow["chargeback"] == {
        "id": dispute["id"], "status": "needs_response", "amount": 10000,
    }  # fmt: skip
    assert notices(queue) == [("chargeback_opened", ["admin"])]
    stripe_api.close_dispute(dispute["id"], "lost")
    deliver_events(stripe_api, times=2)
    escrow, history = escrow_and_history(escrow_id)
    assert escrow["chargeback"]["status"] == "lost"
    assert [h["action"] for h in history][-2:] == ["chargeback", "chargeback_closed"]
    assert notices(queue) == [("chargeback_closed", ["admin"])]


def test_dispute_events_out_of_order_keep_the_outcome(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = released_escrow(stripe_api, queue)
    dispute = stripe_api.open_dispute(intent_id)
    stripe_api.close_dispute(dispute["id"], "won")
    replies = deliver_events(stripe_api, reverse=True)  # closed, then created
    assert [r.body.get("applied") for r in replies] == ["chargeback_closed", None]
    escrow, history = escrow_and_history(escrow_id)
    assert escrow["chargeback"]["status"] == "won"
    assert [h["action"] for h in history].count("chargeback_closed") == 1
    assert notices(queue) == [("chargeback_closed", ["admin"])]


def test_a_chargeback_on_a_funded_escrow_freezes_it_until_an_admin_resolves(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    # Captured at Stripe but the answer was lost: the escrow still says funded.
    escrow_id, intent_id = paid_escrow(stripe_api)
    stripe_api.client().v1.payment_intents.capture(intent_id)
    stripe_api.take_events()  # that capture's event is lost too
    drain(queue)
    stripe_api.open_dispute(intent_id)
    [reply] = deliver_events(stripe_api)
    assert (reply.body["state"], reply.body["applied"]) == ("disputed", "chargeback")
    ready = Counter(c.job.type for c in drain(queue))
    assert ready == {
        J.SEND_PAYMENT_NOTICE_EMAIL: 1, J.WEBHOOK_ESCROW_STATUS_CHANGED: 1, J.AUDIT_LOG_CREATED: 1,
    }  # fmt: skip
    for route in ("release", "refund", "refund_by_admin"):
        refused = call(route, escrow_id=escrow_id)
        assert refused.status == 409, (route, refused.body)
    assert escrow_and_history(escrow_id)[0]["capturedAmount"] == 10000
