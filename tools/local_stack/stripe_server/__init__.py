"""Stripe, locally: the API server the SDK talks to, and the webhook events Stripe sends.

The local stack runs ``StripeServer`` (``STRIPE_API_BASE`` points at it) and, when the
buyer pays, posts ``signed_event(stripe_event(PAYMENT_AUTHORIZED, intent), secret)`` to
the escrow API's webhook; the tests use the same server.

- ``server``: ``StripeServer``, the HTTP protocol (auth, idempotency keys, fault
  injection, recorded requests);
- ``api``: the intents, charges and refunds it keeps and what each endpoint does to them;
- ``outside``: what happens outside the API (the buyer pays, an authorisation expires,
  a chargeback, a dashboard refund);
- ``events``: webhook events and their ``Stripe-Signature``.
"""

from .api import PaymentSimulationError
from .events import (
    CHARGE_REFUNDED,
    DISPUTE_CLOSED,
    DISPUTE_CREATED,
    PAYMENT_AUTHORIZED,
    PAYMENT_CANCELED,
    PAYMENT_CAPTURED,
    deliver,
    signed_event,
    stripe_event,
    stripe_signature,
)
from .server import FaultKind, RecordedRequest, StripeServer

__all__ = [
    "CHARGE_REFUNDED",
    "DISPUTE_CLOSED",
    "DISPUTE_CREATED",
    "PAYMENT_AUTHORIZED",
    "PAYMENT_CANCELED",
    "PAYMENT_CAPTURED",
    "FaultKind",
    "PaymentSimulationError",
    "RecordedRequest",
    "StripeServer",
    "deliver",
    "signed_event",
    "stripe_event",
    "stripe_signature",
]
