"""What happens at Stripe outside its API: the buyer pays, an authorisation expires, a
chargeback opens and closes, someone refunds in the dashboard.

Each records the webhook event Stripe sends for it (``events``), so a test or the local
stack can deliver them, signed, once, twice or out of order (``events.deliver``).

    >>> server.authorize(intent_id)                    # doctest: +SKIP
    >>> server.expire_authorization(intent_id)         # payment_intent.canceled, automatic
    >>> dispute = server.open_dispute(captured_id)     # charge.dispute.created
    >>> server.close_dispute(dispute["id"], "lost")    # charge.dispute.closed
"""

from __future__ import annotations

import copy
import secrets
from typing import Any, Literal

from .api import _AUTHORIZABLE, ApiError, PaymentSimulationError, StripeApi

# Test cards whose issuer grants an extended authorisation when the intent asks for one.
EXTENDED_AUTHORIZATION_CARDS = frozenset({"pm_card_visa", "pm_card_mastercard"})

DisputeOutcome = Literal["won", "lost", "warning_closed"]


class StripeOutside(StripeApi):
    """The API's objects plus the events that happen to them outside the API."""

    # --- seeding and reading ----------------------------------------------------------

    def create_payment_intent(
        self, amount: int, currency: str = "usd", *, status: str = "requires_capture", **fields: Any
    ) -> dict[str, Any]:
        """Seed an intent directly (no HTTP, not recorded, no event); returns a copy."""
        with self._lock:
            intent = self._new_intent(amount, currency.lower(), "manual", status, fields)
            return copy.deepcopy(intent)

    def payment_intent(self, intent_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._intents[intent_id])

    def charge(self, intent_id: str) -> dict[str, Any] | None:
        """The intent's latest charge (a copy), or None before authorisation."""
        with self._lock:
            charge = self._charge_of(self._intents[intent_id])
            return copy.deepcopy(charge)

    @property
    def refunds(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._refunds)

    def refunds_of(self, intent_id: str) -> list[dict[str, Any]]:
        return [r for r in self.refunds if r["payment_intent"] == intent_id]

    @property
    def intents(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._intents.values()))

    def find_intent(self, escrow_id: str) -> str | None:
        """The id of the newest intent whose metadata names ``escrow_id``."""
        with self._lock:
            found = [
                i
                for i in self._intents.values()
                if (i.get("metadata") or {}).get("escrow_id") == escrow_id
            ]
        return max(found, key=lambda i: i["created"])["id"] if found else None

    # --- events -----------------------------------------------------------------------

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every webhook event so far, oldest first (copies)."""
        with self._lock:
            return copy.deepcopy(self._events)

    def take_events(self) -> list[dict[str, Any]]:
        """The events since the last ``take_events`` (and forget them)."""
        with self._lock:
            taken, self._events = self._events, []
            return taken

    # --- the buyer ----------------------------------------------------------------------

    def authorize(self, intent_id: str, payment_method: str = "pm_card_visa") -> Any:
        """Confirm ``intent_id`` with a card, as the buyer's browser would.

        An intent created with ``payment_method_options[card][request_extended_authorization]
        =if_available`` gets a 30-day window on the cards that allow it.
        """
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
                )
                card_options = (intent.get("payment_method_options") or {}).get("card") or {}
                asked = card_options.get("request_extended_authorization") == "if_available"
                extended = asked and payment_method in EXTENDED_AUTHORIZATION_CARDS
                self._new_charge(intent, extended=manual and extended)
                self._emit(
                    "payment_intent.amount_capturable_updated"
                    if manual
                    else "payment_intent.succeeded",
                    intent,
                )
            elif intent["status"] != "requires_capture":
                raise PaymentSimulationError(
                    f"payment intent {intent_id} is {intent['status']}: nothing to authorise"
                )
            return copy.deepcopy(intent)

    # --- Stripe itself ----------------------------------------------------------------

    def expire_authorization(self, intent_id: str) -> dict[str, Any]:
        """The uncaptured authorisation lapses: Stripe cancels it (``automatic``)."""
        return self.cancel_authorization(intent_id, reason="automatic")

    def cancel_authorization(self, intent_id: str, *, reason: str = "abandoned") -> dict[str, Any]:
        """The intent is cancelled at Stripe (the dashboard, or ``automatic`` on expiry)."""
        with self._lock:
            intent = self._intent(intent_id)
            try:
                return copy.deepcopy(self._cancel(intent, {"cancellation_reason": reason}))
            except ApiError as exc:
                raise PaymentSimulationError(exc.message) from None

    def dashboard_refund(self, intent_id: str, amount: int | None = None) -> dict[str, Any]:
        """A refund made in Stripe's dashboard: no metadata, no idempotency key."""
        with self._lock:
            params: dict[str, Any] = {"payment_intent": intent_id}
            if amount is not None:
                params["amount"] = str(amount)
            try:
                return copy.deepcopy(self._create_refund(params))
            except ApiError as exc:
                raise PaymentSimulationError(exc.message) from None

    def open_dispute(
        self, intent_id: str, *, amount: int | None = None, reason: str = "fraudulent"
    ) -> dict[str, Any]:
        """The cardholder disputes the captured charge (a chargeback)."""
        with self._lock:
            intent = self._intent(intent_id)
            charge = self._charge_of(intent)
            if charge is None or not charge["captured"] or charge["disputed"]:
                raise PaymentSimulationError(f"payment intent {intent_id} has no charge to dispute")
            dispute = {
                "id": "dp_" + secrets.token_hex(12),
                "object": "dispute",
                "amount": amount or charge["amount_captured"] - charge["amount_refunded"],
                "currency": charge["currency"],
                "charge": charge["id"],
                "payment_intent": intent_id,
                "reason": reason,
                "status": "needs_response",
                "created": self._now(),
                "livemode": False,
                "metadata": {},
            }
            charge["disputed"] = True
            self._disputes[dispute["id"]] = dispute
            self._emit("charge.dispute.created", dispute)
            return copy.deepcopy(dispute)

    def close_dispute(self, dispute_id: str, status: DisputeOutcome) -> dict[str, Any]:
        """The card network decides: ``won`` (the money stays) or ``lost`` (it is taken)."""
        with self._lock:
            dispute = self._disputes.get(dispute_id)
            if dispute is None or dispute["status"] in ("won", "lost", "warning_closed"):
                raise PaymentSimulationError(f"dispute {dispute_id} is not open")
            dispute["status"] = status
            self._emit("charge.dispute.closed", dispute)
            return copy.deepcopy(dispute)

    def dispute(self, dispute_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._disputes[dispute_id])
