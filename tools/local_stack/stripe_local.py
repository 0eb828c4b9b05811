"""Stripe, locally: the stand-in API server, and the webhook events Stripe would send.

The API is ``tests/support/stripe_server.StripeServer`` (the one the tests use), extended
with what a buyer's browser does in real life: ``authorize`` confirms a PaymentIntent
with a card, so a manual-capture intent becomes ``requires_capture``. The stack then
sends the event Stripe sends at that moment, ``payment_intent.amount_capturable_updated``,
signed as Stripe signs (``Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of
"<t>.<payload>" keyed with the endpoint secret>``).

    >>> stripe_signature(b'{"id": "evt_1"}', "whsec_test", timestamp=1700000000)
    't=1700000000,v1=...'                                   # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import importlib
import json
import secrets
import time
from typing import Any

PAYMENT_AUTHORIZED = "payment_intent.amount_capturable_updated"
API_VERSION = "2025-03-31.basil"
_AUTHORIZABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


class PaymentSimulationError(Exception):
    """The intent cannot be authorised (unknown, cancelled, captured)."""


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


def local_stripe_server(api_key: str) -> Any:
    """A started-later ``StripeServer`` with ``authorize`` and ``find_intent`` added.

    The server class lives with the tests (``tests/support``), so the repository root
    must be importable (the local stack puts it on ``sys.path``).
    """
    base = importlib.import_module("tests.support.stripe_server").StripeServer

    class LocalStripeServer(base):  # type: ignore[misc, valid-type]
        def authorize(self, intent_id: str, payment_method: str = "pm_card_visa") -> Any:
            """Confirm ``intent_id`` with a card, as the buyer's browser would."""
            with self._lock:
                intent = self._intents.get(intent_id)
                if intent is None:
                    raise PaymentSimulationError(f"no such payment intent {intent_id!r}")
                if intent["status"] in _AUTHORIZABLE:
                    manual = intent.get("capture_method") == "manual"
                    intent.update(
                        status="requires_capture" if manual else "succeeded",
                        amount_capturable=intent["amount"] if manual else 0,
                        amount_received=0 if manual else intent["amount"],
                        payment_method=payment_method,
                        latest_charge="ch_" + secrets.token_hex(12),
                    )
                elif intent["status"] != "requires_capture":
                    raise PaymentSimulationError(
                        f"payment intent {intent_id} is {intent['status']}: nothing to authorise"
                    )
                return copy.deepcopy(intent)

        def find_intent(self, escrow_id: str) -> str | None:
            """The id of the newest intent whose metadata names ``escrow_id``."""
            with self._lock:
                found = [
                    i
                    for i in self._intents.values()
                    if (i.get("metadata") or {}).get("escrow_id") == escrow_id
                ]
            return max(found, key=lambda i: i["created"])["id"] if found else None

    return LocalStripeServer(api_key)
