"""Every route through real HTTP API v2 events: moto DynamoDB, the local Stripe server, real Redis.

Each good case checks the answer, the stored escrow and history, what Stripe was asked,
and the jobs queued; each bad case checks the status, the field at fault, and that
nothing was written anywhere (table, Stripe, queue).
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from escrow.service import EscrowService
from jobs_core import JobQueue, JobType
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import (
    authorize,
    call,
    create_escrow,
    funded_escrow,
    invoke,
    job_counts,
    load_event,
    signed_webhook,
)

J = JobType


def table_items() -> list[dict[str, Any]]:
    client = boto3.client("dynamodb")
    items = client.scan(TableName="escrow-test")["Items"]
    return sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))


def jobs_of(escrow_id: str, event: str, *types: JobType) -> dict[tuple[JobType, str], int]:
    return {(t, f"escrow-{escrow_id}-{event}-{t.value}"): 1 for t in types}


def escrow_state(escrow_id: str) -> tuple[str, int]:
    reply = call("get_escrow_admin", escrow_id=escrow_id)
    assert reply.status == 200
    return reply.body["escrow"]["state"], reply.body["escrow"]["version"]


# -- create -------------------------------------------------------------------------------


def test_create_escrow(service: EscrowService, stripe_api: StripeServer, queue: JobQueue) -> None:
    reply = call("create")
    assert reply.status == 201, reply.body
    escrow = reply.body["escrow"]
    assert escrow["state"] == "pending"
    assert (escrow["amount"], escrow["currency"]) == (10000, "USD")
    assert escrow["buyer"] == {
        "id": "user-buyer-1",
        "email": "buyer@example.com",
        "name": "Bea Buyer",
    }
    assert escrow["webhookUrl"] == "https://partner.example.com/hooks/escrow"
    assert "webhookSecretRef" not in escrow
    intent = stripe_api.payment_intent(reply.body["paymentIntentId"])
    assert reply.body["clientSecret"] == intent.get("client_secret")
    assert (intent["amount"], intent["currency"], intent["capture_method"]) == (
        10000,
        "usd",
        "manual",
    )
    assert intent["metadata"] == {"escrow_id": escrow["id"]}
    [create_request] = stripe_api.requests_to("/v1/payment_intents")
    assert create_request.idempotency_key == f"escrow-{escrow['id']}-create"
    assert job_counts(queue) == jobs_of(escrow["id"], "created", J.AUDIT_LOG_CREATED)
    kinds = [i["kind"]["S"] for i in table_items()]
    # The outbox was emptied; the reconciler's list names the escrow.
    assert sorted(kinds) == ["escrow", "history", "idempotency", "reconcile"]


def test_create_with_a_base64_body(service: EscrowService, stripe_api: StripeServer) -> None:
    reply = call("create_base64")
    assert reply.status == 201, reply.body
    assert "webhookUrl" not in reply.body["escrow"]


@pytest.mark.parametrize(
    ("event", "status", "field"),
    [
        ("create_no_claims", 401, None),
        ("create_zero_amount", 400, "amount"),
        ("create_negative_amount", 400, "amount"),
        ("create_unknown_currency", 400, "currency"),
        ("create_http_webhook_url", 400, "webhookUrl"),
        ("create_bad_email", 400, "seller.email"),
        ("create_stranger", 403, "buyer.id"),
    ],
)
def test_bad_creates_write_nothing(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    event: str,
    status: int,
    field: str | None,
) -> None:
    reply = call(event)
    assert reply.status == status, reply.body
    assert reply.error.get("field") == field
    assert reply.error["message"]
    assert table_items() == []
    assert stripe_api.requests == []
    assert job_counts(queue) == {}


def test_a_body_over_16_kib_is_413(service: EscrowService, stripe_api: StripeServer) -> None:
    body = json.loads(load_event("create")["body"])
    body["description"] = "x" * (16 * 1024)
    reply = call("create", body=body)
    assert reply.status == 413
    assert reply.error["code"] == "payload_too_large"
    assert table_items() == [] and stripe_api.requests == []


def test_stripe_down_at_create_is_502_and_writes_nothing(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    stripe_api.fail_next(2, "server_error")  # the first try and the SDK's one retry
    reply = call("create")
    assert reply.status == 502
    assert "Stripe could not create the payment" in reply.error["message"]
    assert table_items() == [] and job_counts(queue) == {}


# -- the Stripe webhook -------------------------------------------------------------------


def test_authorised_payment_funds_the_escrow(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = create_escrow(stripe_api)
    job_counts(queue)  # the create's audit job
    intent = authorize(stripe_api, intent_id)
    event = signed_webhook("stripe_webhook_funded", escrow_id=escrow_id, intent=intent)
    reply = invoke(event)
    assert reply.status == 200
    assert reply.body["state"] == "funded"
    assert escrow_state(escrow_id) == ("funded", 2)
    assert job_counts(queue) == jobs_of(
        escrow_id,
        "funded",
        J.SEND_PAYMENT_CONFIRMED_EMAIL,
        J.WEBHOOK_ESCROW_STATUS_CHANGED,
        J.AUDIT_LOG_CREATED,
    )
    # Stripe delivers events at least once: the same event again changes nothing.
    again = invoke(event)
    assert again.status == 200 and again.body["ignored"] == "escrow is funded"
    assert escrow_state(escrow_id) == ("funded", 2)
    assert job_counts(queue) == {}


@pytest.mark.parametrize("case", ["unsigned", "wrong_secret", "stale", "tampered"])
def test_unverifiable_webhooks_are_400(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue, case: str
) -> None:
    escrow_id, intent_id = create_escrow(stripe_api)
    job_counts(queue)
    before = table_items()
    intent = authorize(stripe_api, intent_id)
    if case == "unsigned":
        event = load_event("stripe_webhook_unsigned")
        event["body"] = event["body"].replace("esc_01JEXAMPLE0000000000000000", escrow_id)
    elif case == "wrong_secret":
        event = signed_webhook(
            "stripe_webhook_funded", escrow_id=escrow_id, intent=intent, secret="whsec_other"
        )
    elif case == "stale":
        event = signed_webhook(
            "stripe_webhook_funded",
            escrow_id=escrow_id,
            intent=intent,
            timestamp=int(time.time()) - 3600,
        )
    else:
        event = signed_webhook("stripe_webhook_funded", escrow_id=escrow_id, intent=intent)
        event["body"] = event["body"].replace('"amount": 10000', '"amount": 1')
    reply = invoke(event)
    assert reply.status == 400
    assert reply.error["field"] == "Stripe-Signature"
    assert table_items() == before
    assert job_counts(queue) == {}


def test_unknown_event_types_are_acknowledged_and_ignored(
    service: EscrowService, stripe_api: StripeServer
) -> None:
    escrow_id, intent_id = create_escrow(stripe_api)
    before = table_items()
    event = signed_webhook(
        "stripe_webhook_other_type",
        escrow_id=escrow_id,
        intent=stripe_api.payment_intent(intent_id),
    )
    reply = invoke(event)
    assert reply.status == 200
    assert reply.body["ignored"] == "event type not handled"
    assert table_items() == before


def test_cancelled_payment_cancels_a_pending_escrow(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = create_escrow(stripe_api)
    job_counts(queue)
    stripe_api.client().v1.payment_intents.cancel(intent_id)
    event = signed_webhook(
        "stripe_webhook_canceled", escrow_id=escrow_id, intent=stripe_api.payment_intent(intent_id)
    )
    reply = invoke(event)
    assert reply.status == 200 and reply.body["state"] == "cancelled"
    assert job_counts(queue) == jobs_of(
        escrow_id, "cancelled", J.WEBHOOK_ESCROW_STATUS_CHANGED, J.AUDIT_LOG_CREATED
    )


def test_a_webhook_for_another_payment_intent_is_ignored(
    service: EscrowService, stripe_api: StripeServer
) -> None:
    escrow_id, _ = create_escrow(stripe_api)
    stranger = stripe_api.create_payment_intent(10000)
    event = signed_webhook("stripe_webhook_funded", escrow_id=escrow_id, intent=stranger)
    reply = invoke(event)
    assert reply.status == 200 and reply.body["ignored"] == "unknown escrow"
    assert escrow_state(escrow_id) == ("pending", 1)


# -- release, refund, dispute, resolve ----------------------------------------------------


def test_release_captures_and_queues_its_effects(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = funded_escrow(stripe_api)
    job_counts(queue)
    reply = call("release", escrow_id=escrow_id)
    assert reply.status == 200, reply.body
    assert reply.body["escrow"]["state"] == "released"
    assert reply.body["escrow"]["stripeAction"] == "captured"
    assert stripe_api.payment_intent(intent_id)["status"] == "succeeded"
    [capture] = stripe_api.requests_to("/capture")
    assert capture.idempotency_key == f"escrow-{escrow_id}-capture"
    counts = job_counts(queue)
    assert counts == jobs_of(
        escrow_id,
        "released",
        J.SEND_RELEASE_EMAIL,
        J.WEBHOOK_ESCROW_STATUS_CHANGED,
        J.AUDIT_LOG_CREATED,
    )
    history = call("get_escrow", escrow_id=escrow_id).body["history"]
    assert [(h["action"], h["from"], h["to"]) for h in history] == [
        ("create", None, "pending"),
        ("fund", "pending", "funded"),
        ("release", "funded", "released"),
    ]
    assert history[-1]["actor"] == "user-buyer-1"
    assert history[-1]["stripeAction"] == "captured"


def test_release_email_goes_to_the_seller(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, _ = funded_escrow(stripe_api)
    queue_jobs = {c.job.type: c.job for c in [*_claim_after(queue, "release", escrow_id)]}
    payload = queue_jobs[J.SEND_RELEASE_EMAIL].payload
    assert payload["recipient_email"] == "seller@example.com"
    assert (payload["amount"], payload["currency"]) == (10000, "USD")
    webhook = queue_jobs[J.WEBHOOK_ESCROW_STATUS_CHANGED].payload
    assert (webhook["status"], webhook["previous_status"]) == ("released", "funded")
    assert webhook["webhook_secret_ref"] == "partner-1-webhook-secret"


def _claim_after(queue: JobQueue, event: str, escrow_id: str) -> list[Any]:
    from tests.integration.escrow_api.harness import drain

    drain(queue)
    reply = call(event, escrow_id=escrow_id)
    assert reply.status == 200, reply.body
    return drain(queue)


def test_seller_refund_cancels_the_authorisation(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = funded_escrow(stripe_api)
    job_counts(queue)
    reply = call("refund", escrow_id=escrow_id)
    assert reply.status == 200, reply.body
    assert reply.body["escrow"]["state"] == "refunded"
    assert reply.body["escrow"]["stripeAction"] == "authorization_cancelled"
    assert stripe_api.payment_intent(intent_id)["status"] == "canceled"
    [cancel] = stripe_api.requests_to("/cancel")
    assert cancel.idempotency_key == f"escrow-{escrow_id}-cancel"
    assert job_counts(queue) == jobs_of(
        escrow_id,
        "refunded",
        J.SEND_REFUND_EMAIL,
        J.WEBHOOK_ESCROW_STATUS_CHANGED,
        J.AUDIT_LOG_CREATED,
    )


def test_refund_of_an_already_captured_payment_creates_a_stripe_refund(
    service: EscrowService, stripe_api: StripeServer
) -> None:
    # The capture happened at Stripe but its answer was lost (the escrow says funded).
    escrow_id, intent_id = funded_escrow(stripe_api)
    stripe_api.client().v1.payment_intents.capture(intent_id)
    reply = call("refund_by_admin", escrow_id=escrow_id)
    assert reply.status == 200, reply.body
    assert reply.body["escrow"]["stripeAction"] == "refunded"
    [refund] = stripe_api.refunds
    assert (refund["payment_intent"], refund["amount"]) == (intent_id, 10000)
    [request] = stripe_api.requests_to("/v1/refunds")
    assert request.idempotency_key == f"escrow-{escrow_id}-refund"


def test_dispute_then_admin_resolves_in_favour_of_the_seller(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = funded_escrow(stripe_api)
    job_counts(queue)
    reply = call("dispute", escrow_id=escrow_id)
    assert reply.status == 200, reply.body
    assert reply.body["escrow"]["state"] == "disputed"
    assert reply.body["escrow"]["disputeReason"] == "Camera lens is cracked"
    assert stripe_api.requests_to("/capture") == []
    dispute_jobs = job_counts(queue)
    assert dispute_jobs == jobs_of(
        escrow_id,
        "disputed",
        J.SEND_DISPUTE_EMAIL,
        J.WEBHOOK_ESCROW_STATUS_CHANGED,
        J.AUDIT_LOG_CREATED,
    )
    # The buyer cannot release a disputed escrow any more; only an admin decides.
    blocked = call("release", escrow_id=escrow_id, headers={"idempotency-key": "other"})
    assert blocked.status == 409 and blocked.error["currentState"] == "disputed"
    resolved = call("resolve_release", escrow_id=escrow_id)
    assert resolved.status == 200, resolved.body
    assert resolved.body["escrow"]["state"] == "released"
    assert resolved.body["escrow"]["resolutionNote"] == "Seller showed proof of delivery"
    assert stripe_api.payment_intent(intent_id)["status"] == "succeeded"
    assert job_counts(queue) == jobs_of(
        escrow_id, "resolved", J.NOTIFY_DISPUTE_RESOLVED, J.AUDIT_LOG_CREATED
    )


def test_admin_refunds_a_disputed_escrow_through_resolve(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    event = "resolve_refund"  # POST /refund is refused on a disputed escrow (test_money_matrix)
    escrow_id, intent_id = funded_escrow(stripe_api)
    assert call("dispute", escrow_id=escrow_id).status == 200
    job_counts(queue)
    reply = call(event, escrow_id=escrow_id)
    assert reply.status == 200, reply.body
    assert reply.body["escrow"]["state"] == "refunded"
    assert stripe_api.payment_intent(intent_id)["status"] == "canceled"
    assert job_counts(queue) == jobs_of(
        escrow_id, "resolved", J.NOTIFY_DISPUTE_RESOLVED, J.AUDIT_LOG_CREATED
    )


def test_without_a_partner_webhook_no_webhook_job(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, _ = funded_escrow(stripe_api, webhook=False)
    job_counts(queue)
    assert call("release", escrow_id=escrow_id).status == 200
    assert job_counts(queue) == jobs_of(
        escrow_id, "released", J.SEND_RELEASE_EMAIL, J.AUDIT_LOG_CREATED
    )


# -- refusals: state, authorisation, input ------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "event", "current"),
    [
        ("pending", "release", "pending"),
        ("pending", "dispute", "pending"),
        ("pending", "resolve_release", "pending"),
        ("released", "refund", "released"),
        ("released", "dispute", "released"),
        ("refunded", "release", "refunded"),
        ("funded", "resolve_refund", "funded"),
    ],
)
def test_illegal_transitions_are_409_with_the_current_state(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    setup: str,
    event: str,
    current: str,
) -> None:
    if setup == "pending":
        escrow_id, _ = create_escrow(stripe_api)
    else:
        escrow_id, _ = funded_escrow(stripe_api)
        if setup != "funded":
            move = "release" if setup == "released" else "refund"
            assert call(move, escrow_id=escrow_id, headers={"idempotency-key": None}).status == 200
    job_counts(queue)
    before, stripe_before = table_items(), len(stripe_api.requests)
    reply = call(event, escrow_id=escrow_id)
    assert reply.status == 409, reply.body
    assert reply.error["code"] == "invalid_state"
    assert reply.error["currentState"] == current
    assert table_items() == before
    assert len(stripe_api.requests) == stripe_before
    assert job_counts(queue) == {}


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ("release_by_seller", 403),
        ("release_by_stranger", 404),  # not 403: strangers cannot probe escrow ids
        ("release_no_claims", 401),
        ("refund_by_buyer", 403),
        ("dispute_by_seller", 403),
        ("resolve_by_buyer", 403),
    ],
)
def test_authorisation_rules(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue, event: str, status: int
) -> None:
    escrow_id, _ = funded_escrow(stripe_api)
    job_counts(queue)
    before, stripe_before = table_items(), len(stripe_api.requests)
    reply = call(event, escrow_id=escrow_id)
    assert reply.status == status, reply.body
    assert table_items() == before
    assert len(stripe_api.requests) == stripe_before
    assert job_counts(queue) == {}


@pytest.mark.parametrize(
    ("event", "status", "field"),
    [
        ("release_unknown_escrow", 404, "escrowId"),
        ("release_malformed", 400, "body"),
        ("resolve_bad_outcome", 400, "outcome"),
    ],
)
def test_bad_input(
    service: EscrowService, stripe_api: StripeServer, event: str, status: int, field: str
) -> None:
    reply = call(event)
    assert reply.status == status, reply.body
    assert reply.error["field"] == field
    assert table_items() == [] and stripe_api.requests == []


def test_stripe_failure_on_release_is_502_and_leaves_the_escrow_as_it_was(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = funded_escrow(stripe_api)
    job_counts(queue)
    before = table_items()
    stripe_api.fail_next(2, "server_error")
    reply = call("release", escrow_id=escrow_id)
    assert reply.status == 502, reply.body
    assert reply.error["code"] == "payment_provider_error"
    assert "Stripe could not capture the payment" in reply.error["message"]
    assert reply.error["currentState"] == "funded"
    assert table_items() == before  # the very same items: state, version, no history row
    assert job_counts(queue) == {}
    assert stripe_api.payment_intent(intent_id)["status"] == "requires_capture"
    # Stripe is back: the same request (same Idempotency-Key) now goes through.
    again = call("release", escrow_id=escrow_id)
    assert again.status == 200 and again.body["escrow"]["state"] == "released"
    keys = {r.idempotency_key for r in stripe_api.requests_to("/capture")}
    assert keys == {f"escrow-{escrow_id}-capture"}


def test_a_declined_capture_is_502_with_stripes_message(
    service: EscrowService, stripe_api: StripeServer
) -> None:
    escrow_id, _ = funded_escrow(stripe_api)
    stripe_api.fail_next(1, "card_error")
    reply = call("release", escrow_id=escrow_id)
    assert reply.status == 502
    assert "Your card was declined." in reply.error["message"]
    assert escrow_state(escrow_id) == ("funded", 2)


# -- reading ------------------------------------------------------------------------------


def test_get_escrow_for_parties_and_admins_only(
    service: EscrowService, stripe_api: StripeServer
) -> None:
    escrow_id, _ = funded_escrow(stripe_api)
    mine = call("get_escrow", escrow_id=escrow_id)
    assert mine.status == 200
    assert mine.body["escrow"]["id"] == escrow_id
    assert [h["to"] for h in mine.body["history"]] == ["pending", "funded"]
    assert call("get_escrow_admin", escrow_id=escrow_id).status == 200
    stranger = call("get_escrow_stranger", escrow_id=escrow_id)
    assert stranger.status == 404 and stranger.error["code"] == "not_found"
    assert call("get_escrow_no_claims", escrow_id=escrow_id).status == 401
    assert call("get_escrow", escrow_id="esc_NOSUCHESCROW").status == 404


def test_unknown_routes_are_404(service: EscrowService) -> None:
    event = load_event("release")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/api/escrow/explode"
    assert invoke(event).status == 404
