"""Refund jobs replayed from the DLQ after Stripe forgot their keys move no money twice.

A partial and a full ``stripe_refund_payment`` job run against the local Stripe; Stripe
acts on each but its answer is lost, so both end in the dead-letter queue. Days later
(Stripe has forgotten the idempotency keys) an operator replays both, and both are
delivered twice more. Each reads the intent's refunds first and finds its own
operation id: Stripe shows one refund each, and Stripe's ``charge.refunded`` events,
delivered to the webhook, leave the escrow's refunded amount equal to Stripe's.
"""

from __future__ import annotations

from escrow.service import EscrowService
from jobs_core import JobQueue, JobType, Processor
from jobs_core.workers import WorkerDeps, build_handlers
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import (
    deliver_events,
    escrow_and_history,
    released_escrow,
)


def test_partial_and_full_refund_jobs_replayed_after_the_key_window_refund_once(
    service: EscrowService, stripe_api: StripeServer, queue: JobQueue
) -> None:
    escrow_id, intent_id = released_escrow(stripe_api, queue)
    handlers = build_handlers(
        WorkerDeps(
            stripe_api_key=stripe_api.api_key,
            stripe_api_base=stripe_api.url,
            stripe_max_network_retries=0,
        )
    )
    processor = Processor(queue, handlers)
    refund = {"transactionId": escrow_id, "paymentIntentId": intent_id}
    ids: list[str] = []
    for amount in (4000, None):  # the partial one first, then the rest
        payload = refund if amount is None else {**refund, "amount": amount}
        spec = (JobType.STRIPE_REFUND_PAYMENT, payload, {"max_attempts": 1})
        ids += queue.enqueue_batch([spec]).ids
        stripe_api.fail_next(1, "lost_response", method="POST")  # Stripe acts; no answer
        assert processor.process_batch([JobType.STRIPE_REFUND_PAYMENT], 10).tally.dead_lettered == 1
    assert [r["amount"] for r in stripe_api.refunds] == [4000, 6000]

    stripe_api.forget_idempotency_keys()  # 24 hours later
    assert sorted(queue.replay_dead_letter(ids)) == sorted(ids)
    replayed = processor.process_batch([JobType.STRIPE_REFUND_PAYMENT], 10)
    assert replayed.tally.succeeded == 2
    for job_id in ids * 2:  # delivered twice more (a lease ran out, a second processor)
        job = queue.get_job_status(job_id)
        assert job is not None
        handlers[JobType.STRIPE_REFUND_PAYMENT](job)

    refunds = stripe_api.refunds_of(intent_id)
    assert sorted(r["amount"] for r in refunds) == [4000, 6000]
    assert sorted(r["metadata"]["operation_id"] for r in refunds) == sorted(ids)
    assert len(stripe_api.requests_to("/v1/refunds")) == 2  # every later delivery only read
    charge = stripe_api.charge(intent_id)
    assert charge is not None and charge["amount_refunded"] == 10000

    deliver_events(stripe_api, times=2, reverse=True)
    escrow, history = escrow_and_history(escrow_id)
    assert (escrow["capturedAmount"], escrow["refundedAmount"]) == (
        charge["amount_captured"], charge["amount_refunded"],
    )  # fmt: skip
    assert [h["action"] for h in history].count("stripe_refund") == 1
