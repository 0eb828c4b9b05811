"""What the API logs never holds: a whole email address, the Stripe key, a webhook secret,
a PaymentIntent's client secret."""

from __future__ import annotations

import io

import pytest
from escrow.service import EscrowService
from jobs_core import JobQueue, logger
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import (
    WEBHOOK_SECRET,
    authorize,
    call,
    invoke,
    signed_webhook,
)
from tests.integration.escrow_api.test_outbox import unreachable_queue


def test_logs_hold_no_addresses_and_no_secrets(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = io.StringIO()  # exactly what Lambda would print: the layer logger's JSON lines
    monkeypatch.setattr(logger.registered_handler, "stream", lines)
    created = call("create")
    escrow_id, intent_id = created.body["escrow"]["id"], created.body["paymentIntentId"]
    intent = authorize(stripe_api, intent_id)
    assert (
        invoke(signed_webhook("stripe_webhook_funded", escrow_id=escrow_id, intent=intent)).status
        == 200
    )
    stripe_api.fail_next(2, "server_error")
    assert call("release", escrow_id=escrow_id).status == 502  # logs Stripe's failure
    down, _ = unreachable_queue(queue)
    monkeypatch.setattr(service, "queue", down)
    assert call("release", escrow_id=escrow_id).status == 200  # logs the Redis outage
    logs = lines.getvalue()
    assert "escrow created" in logs and "queue unreachable" in logs and "stripe error" in logs
    for secret in (
        "buyer@example.com",
        "seller@example.com",
        stripe_api.api_key,
        WEBHOOK_SECRET,
        "partner-1-webhook-secret",
    ):
        assert secret not in logs, secret
    client_secret = created.body.get("clientSecret")
    assert not client_secret or client_secret not in logs
