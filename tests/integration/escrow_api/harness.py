"""Helpers of the escrow API tests: sample events, the handler, Stripe's side, the queue."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stripe
from jobs_core import ClaimedJob, JobQueue, JobType, Outcome
from local_stack.stripe_server import StripeServer

from functions.escrow_api import app

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events" / "escrow_api"
PLACEHOLDER = "esc_01JEXAMPLE0000000000000000"
WEBHOOK_SECRET = "whsec_local_escrow_tests"
ADMIN_EMAIL = "escrow-ops@example.com"


# -- events and calls ---------------------------------------------------------------------


@dataclass
class FakeLambdaContext:
    function_name: str = "escrow-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:escrow-api"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def error(self) -> dict[str, Any]:
        return dict(self.body.get("error") or {})


def load_event(
    name: str,
    *,
    escrow_id: str | None = None,
    body: dict[str, Any] | str | None = None,
    headers: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """A sample event with the placeholder escrow id replaced and headers changed
    (``None`` removes one); each gets a fresh request id."""
    text = (EVENTS / f"{name}.json").read_text()
    if escrow_id is not None:
        text = text.replace(PLACEHOLDER, escrow_id)
    event: dict[str, Any] = json.loads(text)
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
        event["isBase64Encoded"] = False
    for key, value in (headers or {}).items():
        if value is None:
            event["headers"].pop(key, None)
        else:
            event["headers"][key] = value
    event["requestContext"]["requestId"] = "req-" + uuid.uuid4().hex[:12]
    return event


def invoke(event: dict[str, Any], handler: Callable[..., dict[str, Any]] | None = None) -> Reply:
    result = (handler or app.lambda_handler)(event, FakeLambdaContext())
    raw = result.get("body") or "{}"
    return Reply(
        int(result["statusCode"]),
        json.loads(raw),
        {k.lower(): v for k, v in (result.get("headers") or {}).items()},
    )


def call(name: str, **kwargs: Any) -> Reply:
    return invoke(load_event(name, **kwargs))


# -- Stripe's side ------------------------------------------------------------------------


def authorize(server: StripeServer, intent_id: str) -> dict[str, Any]:
    """The buyer confirms the payment in the browser (Stripe.js): the hold is placed."""
    intent: dict[str, Any] = server.authorize(intent_id)
    return intent


def signed_webhook(
    event_name: str,
    *,
    escrow_id: str,
    intent: dict[str, Any],
    event_id: str | None = None,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
) -> dict[str, Any]:
    """A sample Stripe webhook event about ``intent``, signed as Stripe signs it."""
    event = load_event(event_name)
    payload = json.loads(event["body"])
    payload["id"] = event_id or "evt_" + uuid.uuid4().hex[:24]
    obj = payload["data"]["object"]
    obj.update(
        id=intent["id"],
        amount=intent["amount"],
        amount_capturable=intent["amount_capturable"],
        currency=intent["currency"],
        status=intent["status"],
        metadata={"escrow_id": escrow_id},
    )
    body = json.dumps(payload)
    ts = int(time.time()) if timestamp is None else timestamp
    mac = stripe.WebhookSignature._compute_signature(f"{ts}.{body}", secret)
    event["body"] = body
    event["headers"]["stripe-signature"] = f"t={ts},v1={mac}"
    return event


def create_escrow(stripe_api: StripeServer, *, webhook: bool = True) -> tuple[str, str]:
    """POST /api/escrow as the buyer; returns (escrow id, payment intent id)."""
    event = "create.json" if webhook else "create_base64.json"
    reply = call(event.removesuffix(".json"), headers={"idempotency-key": uuid.uuid4().hex})
    assert reply.status == 201, reply.body
    return reply.body["escrow"]["id"], reply.body["paymentIntentId"]


def funded_escrow(stripe_api: StripeServer, *, webhook: bool = True) -> tuple[str, str]:
    """An escrow whose payment the buyer authorised and whose webhook arrived."""
    escrow_id, intent_id = create_escrow(stripe_api, webhook=webhook)
    intent = authorize(stripe_api, intent_id)
    reply = invoke(signed_webhook("stripe_webhook_funded", escrow_id=escrow_id, intent=intent))
    assert reply.status == 200 and reply.body.get("state") == "funded", reply.body
    return escrow_id, intent_id


def drain(queue: JobQueue) -> list[ClaimedJob]:
    """Claim every ready job and complete it (so take it off the queue). Completing lets an
    escrow's next status webhook go (the queue delivers them in version order, each due
    a millisecond after the earlier one settles: hence one more look after a pause)."""
    claimed: list[ClaimedJob] = []
    while True:
        batch = queue.claim(limit=500)
        if not batch:
            time.sleep(0.005)
            batch = queue.claim(limit=500)
        if not batch:
            return claimed
        queue.settle([Outcome(c, "done") for c in batch])
        claimed += batch


def job_counts(queue: JobQueue) -> Counter[tuple[JobType, str | None]]:
    """How many ready jobs there are per (type, dedupe key); claims them."""
    return Counter((c.job.type, c.job.dedupe_key) for c in drain(queue))


def seed_funded(
    service: Any, stripe_api: StripeServer, count: int, *, webhook: bool = True
) -> list[tuple[str, str]]:
    """``count`` funded escrows written straight to the table, each with an authorised
    PaymentIntent at the Stripe server (fast set-up for tests that need many)."""
    return [seed_escrow(service, stripe_api, "funded", webhook=webhook) for _ in range(count)]


def seed_escrow(
    service: Any,
    stripe_api: StripeServer,
    state: str,
    *,
    intent_status: str = "requires_capture",
    webhook: bool = True,
    **fields: Any,
) -> tuple[str, str]:
    """One escrow in ``state`` written straight to the table, its PaymentIntent at the
    Stripe server in ``intent_status``; returns (escrow id, intent id)."""
    from escrow.models import Escrow, Party
    from escrow.state import EscrowState

    now = time.time_ns() // 1_000_000
    escrow_id = "esc_" + uuid.uuid4().hex[:26].upper()
    intent = stripe_api.create_payment_intent(
        10000, "usd", status=intent_status, metadata={"escrow_id": escrow_id}
    )
    escrow = Escrow(
        escrow_id=escrow_id,
        state=EscrowState(state),
        version=2,
        amount=10000,
        currency="USD",
        buyer=Party("user-buyer-1", "buyer@example.com"),
        seller=Party("user-seller-1", "seller@example.com"),
        payment_intent_id=intent["id"],
        created_by="user-buyer-1",
        created_ms=now,
        updated_ms=now,
        webhook_url="https://partner.example.com/hooks/escrow" if webhook else None,
        webhook_secret_ref="partner-1-webhook-secret" if webhook else None,
        **fields,
    )
    service.store.write(escrow, expected=None)
    return escrow_id, intent["id"]


def release_event(escrow_id: str) -> dict[str, Any]:
    """``release.json`` for ``escrow_id`` with a fresh Idempotency-Key."""
    return load_event("release", escrow_id=escrow_id, headers={"idempotency-key": uuid.uuid4().hex})


# -- Stripe's events, as the local Stripe server records them ------------------------------


def post_webhook(body: bytes, headers: dict[str, str]) -> Reply:
    """POST a signed Stripe event to the real webhook route (``lambda_handler``)."""
    event = load_event("stripe_webhook_funded")
    event["body"] = body.decode()
    event["isBase64Encoded"] = False
    event["headers"]["stripe-signature"] = headers["Stripe-Signature"]
    return invoke(event)


def deliver_events(server: StripeServer, *, times: int = 1, reverse: bool = False) -> list[Reply]:
    """Deliver (and forget) the events the local Stripe recorded since the last delivery."""
    from local_stack.stripe_server import deliver

    return deliver(server.take_events(), post_webhook, WEBHOOK_SECRET, times=times, reverse=reverse)


def paid_escrow(server: StripeServer, *, webhook: bool = True) -> tuple[str, str]:
    """An escrow the buyer paid, funded by Stripe's own event (delivered)."""
    escrow_id, intent_id = create_escrow(server, webhook=webhook)
    server.authorize(intent_id)
    replies = deliver_events(server)  # with any other event still undelivered
    mine = [r.body for r in replies if r.body.get("escrowId") == escrow_id]
    assert [b.get("state") for b in mine] == ["funded"], [r.body for r in replies]
    return escrow_id, intent_id


def escrow_and_history(escrow_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    reply = call("get_escrow_admin", escrow_id=escrow_id)
    assert reply.status == 200, reply.body
    return reply.body["escrow"], reply.body["history"]


def released_escrow(server: StripeServer, queue: JobQueue) -> tuple[str, str]:
    """A paid escrow the buyer released; Stripe's events delivered, its jobs claimed."""
    escrow_id, intent_id = paid_escrow(server)
    reply = invoke(release_event(escrow_id))
    assert reply.status == 200, reply.body
    deliver_events(server)
    drain(queue)
    return escrow_id, intent_id
