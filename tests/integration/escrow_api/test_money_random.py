"""A seeded random run of a few hundred escrows: afterwards the table's money is Stripe's.

Each escrow is created, maybe paid, then released, refunded, disputed and resolved, left
to expire, cancelled or refunded in Stripe's dashboard, charged back; Stripe's events
are delivered in random batches, shuffled, some twice, some late. The service is driven
in-process (``EscrowService`` methods, the real store on moto, the local Stripe over
HTTP, the session's Redis), not through the HTTP stack, so the run takes seconds.

At the end, escrow by escrow, the captured and refunded amounts in the table equal the
local Stripe's, and the reconciler finds nothing. The seed is printed; set
``ESCROW_RANDOM_SEED`` to replay a run.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from typing import Any

import boto3
import pytest
from escrow.messages import ApiRequest, ApiResponse
from escrow.reconcile import reconcile
from escrow.service import EscrowService
from escrow.store import EscrowStore
from local_stack.stripe_server import PaymentSimulationError, StripeServer, signed_event

from tests.integration.escrow_api.conftest import create_table
from tests.integration.escrow_api.harness import WEBHOOK_SECRET

ESCROWS = 200
ROUNDS = 10
BUYER = {"sub": "user-buyer-1"}
SELLER = {"sub": "user-seller-1"}
ADMIN = {"sub": "user-admin-1", "cognito:groups": "[admin support]"}


class Run:
    def __init__(self, service: EscrowService, stripe: StripeServer, rng: random.Random) -> None:
        self.service, self.stripe, self.rng = service, stripe, rng
        self.pending_events: list[dict[str, Any]] = []
        self.answers: list[int] = []

    def call(self, route: str, claims: dict[str, str], **body: Any) -> ApiResponse:
        request = ApiRequest(
            body=json.dumps(body).encode(),
            headers={"idempotency-key": uuid.uuid4().hex},
            claims=claims,
            request_id="req-" + uuid.uuid4().hex[:8],
        )
        try:
            reply: ApiResponse = getattr(self.service, route)(request)
        except Exception as exc:  # an ApiError is an answer too (409 on a refused move)
            status = getattr(exc, "status", None)
            if status is None:
                raise
            reply = ApiResponse(int(status), {"error": str(exc)})
        self.answers.append(reply.status)
        assert reply.status < 500, (route, reply.body)
        return reply

    def events(self, *, all_of_them: bool = False) -> None:
        """Deliver a random part of the events so far (all at the end), shuffled, some twice."""
        self.pending_events += self.stripe.take_events()
        self.rng.shuffle(self.pending_events)
        cut = (
            len(self.pending_events)
            if all_of_them
            else self.rng.randint(0, len(self.pending_events))
        )
        now, self.pending_events = self.pending_events[:cut], self.pending_events[cut:]
        for event in now + self.rng.sample(now, k=len(now) // 3):
            body, headers = signed_event(event, WEBHOOK_SECRET)
            request = ApiRequest(
                body=body, headers={"stripe-signature": headers["Stripe-Signature"]}
            )
            assert self.service.stripe_webhook(request).status == 200

    def stripe_side(self, action: str, intent_id: str) -> None:
        try:
            if action == "expire":
                self.stripe.expire_authorization(intent_id)
            elif action == "dashboard_refund":
                self.stripe.dashboard_refund(intent_id, self.rng.choice([None, 100, 2500]))
            elif action == "chargeback":
                dispute = self.stripe.open_dispute(intent_id)
                if self.rng.random() < 0.7:
                    self.stripe.close_dispute(dispute["id"], self.rng.choice(["won", "lost"]))
        except PaymentSimulationError:
            pass  # not possible in that state (nothing captured, a dispute open...)

    def one_escrow(self) -> None:
        rng = self.rng
        created = self.call(
            "create", BUYER,
            amount=rng.randint(500, 50_000), currency="USD",
            buyer={"id": "user-buyer-1", "email": "buyer@example.com"},
            seller={"id": "user-seller-1", "email": "seller@example.com"},
        )  # fmt: skip
        assert created.status == 201
        escrow_id = created.body["escrow"]["id"]
        intent_id = created.body["paymentIntentId"]
        if rng.random() < 0.1:
            self.stripe.cancel_authorization(intent_id, reason="abandoned")
            return
        self.stripe.authorize(intent_id, rng.choice(["pm_card_visa", "pm_card_amex"]))
        if rng.random() < 0.8:
            self.events()  # the funding event arrives now, or later
        path = rng.choice(["release", "refund", "dispute", "expire", "stay", "stripe_cancel"])
        if path == "release":
            self.call("release", BUYER, escrowId=escrow_id)
        elif path == "refund":
            self.call("refund", rng.choice([SELLER, ADMIN]), escrowId=escrow_id)
        elif path == "dispute":
            self.call("dispute", BUYER, escrowId=escrow_id, reason="not as described")
            self.call("refund", ADMIN, escrowId=escrow_id)  # frozen: refused unless resolved
            outcome = rng.choice(["released", "refunded"])
            self.call("resolve", ADMIN, escrowId=escrow_id, outcome=outcome)
        elif path in ("expire", "stripe_cancel"):
            self.stripe_side("expire", intent_id)
            self.call("release", BUYER, escrowId=escrow_id)  # 409: expired, never a 502
        for after in rng.sample(["dashboard_refund", "chargeback", "none"], k=2):
            self.stripe_side(after, intent_id)
        if rng.random() < 0.3:
            self.events()


@pytest.mark.slow  # about 10 s on an idle machine: 200 escrows, ~2000 moto requests
def test_a_random_run_leaves_the_table_equal_to_stripe(
    service: EscrowService, stripe_api: StripeServer
) -> None:
    seed = int(os.environ.get("ESCROW_RANDOM_SEED") or random.randrange(2**32))
    print(f"ESCROW_RANDOM_SEED={seed}")
    rng = random.Random(seed)
    answers: list[int] = []
    # Rounds on fresh tables: moto copies the whole table for every transaction, so one
    # table of every escrow would make the run quadratic, not the service.
    for round_ in range(ROUNDS):
        store = EscrowStore(boto3.client("dynamodb"), create_table(f"escrow-random-{round_}"))
        svc = EscrowService(store, service.gateway, service.queue, notices=service.notices)
        run = Run(svc, stripe_api, rng)
        for _ in range(ESCROWS // ROUNDS):
            run.one_escrow()
        run.events(all_of_them=True)
        answers += run.answers

        escrows = list(store.escrows_to_reconcile(closed_since_ms=0))
        assert len(escrows) == ESCROWS // ROUNDS
        for escrow in escrows:
            charge = stripe_api.charge(escrow.payment_intent_id) or {}
            at_stripe = (charge.get("amount_captured", 0), charge.get("amount_refunded", 0))
            assert (escrow.captured_amount, escrow.refunded_amount) == at_stripe, (seed, escrow)
            assert escrow.refunded_amount <= escrow.captured_amount <= escrow.amount
        report = reconcile(store, svc.gateway, now_ms=svc.now_ms(), closed_within_days=1)
        assert (report.checked, report.drifts) == (len(escrows), []), seed
    assert 409 in answers  # the run did meet refusals (frozen, expired)
