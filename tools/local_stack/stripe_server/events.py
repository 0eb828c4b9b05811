"""The webhook events Stripe sends, signed as Stripe signs them.

When a buyer authorises a payment (``StripeApi.authorize``) the local stack sends the
event Stripe sends at that moment, ``payment_intent.amount_capturable_updated``, signed
as Stripe signs (``Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of
"<t>.<payload>" keyed with the endpoint secret>``).

    >>> stripe_signature(b'{"id": "evt_1"}', "whsec_test", timestamp=1700000000)
    't=1700000000,v1=...'                                   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

R = TypeVar("R")

PAYMENT_AUTHORIZED = "payment_intent.amount_capturable_updated"
PAYMENT_CAPTURED = "payment_intent.succeeded"
PAYMENT_CANCELED = "payment_intent.canceled"
CHARGE_REFUNDED = "charge.refunded"
DISPUTE_CREATED = "charge.dispute.created"
DISPUTE_CLOSED = "charge.dispute.closed"
API_VERSION = "2025-03-31.basil"


def stripe_signature(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header value for ``payload``."""
    stamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{stamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def stripe_event(event_type: str, obj: dict[str, Any], *, now: int | None = None) -> dict[str, Any]:
    """A Stripe ``event`` object wrapping ``obj`` as Stripe delivers it to a webhook."""
    return {
        "id": "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()) if now is None else now,
        "type": event_type,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    }


def signed_event(event: dict[str, Any], secret: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of Stripe's POST of ``event`` to a webhook endpoint."""
    body = json.dumps(event, separators=(",", ":")).encode()
    return body, {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": stripe_signature(body, secret),
    }


def deliver(
    events: Sequence[dict[str, Any]],
    post: Callable[[bytes, dict[str, str]], R],
    secret: str,
    *,
    times: int = 1,
    reverse: bool = False,
) -> list[R]:
    """POST each event ``times`` times (Stripe retries), signed; ``reverse`` delivers the
    newest first (Stripe does not promise order). Returns what ``post`` answered."""
    ordered = list(reversed(events)) if reverse else list(events)
    answers: list[R] = []
    for _ in range(times):
        for event in ordered:
            body, headers = signed_event(event, secret)
            answers.append(post(body, headers))
    return answers
