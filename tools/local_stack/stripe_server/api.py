"""The Stripe objects the local server keeps, and what each endpoint does to them.

Endpoints (parameters already parsed from the SDK's form encoding):

* ``POST /v1/payment_intents``: ``amount``, ``currency``, ``capture_method``
  (``manual`` or ``automatic``), ``confirm``, ``payment_method``, ``metadata[...]``.
  Confirmed with a card it is ``requires_capture`` (manual) or ``succeeded``;
  the test card ``pm_card_chargeDeclined`` answers 402 ``card_declined``.
* ``GET /v1/payment_intents/{id}``
* ``POST /v1/payment_intents/{id}/capture``: ``amount_to_capture``, ``metadata``;
  only from ``requires_capture``, else 400 ``payment_intent_unexpected_state``.
* ``POST /v1/payment_intents/{id}/cancel``: from any state but ``succeeded``/``canceled``.
* ``POST /v1/refunds``: ``payment_intent``, ``amount``, ``reason``, ``metadata``;
  of a ``succeeded`` intent, at most what is left (else 400
  ``charge_already_refunded`` / ``amount_too_large``).

Besides the API, what happens outside it: ``create_payment_intent`` seeds an intent
directly, and ``authorize`` does what a buyer's browser does in real life (confirms an
intent with a card, so a manual-capture intent becomes ``requires_capture``).
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
from typing import Any

_CANCELABLE = {
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
    "processing",
}
_AUTHORIZABLE = ("requires_payment_method", "requires_confirmation", "requires_action")


class PaymentSimulationError(Exception):
    """The intent cannot be authorised (unknown, cancelled, captured)."""


class ApiError(Exception):
    """An error answer of the API: HTTP status, and the ``error`` object's fields."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.type, self.code, self.param, self.message = (
            status,
            type_,
            code,
            param,
            message,
        )


def _int(params: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    raw = params.get(name)
    if raw is None:
        if required:
            raise ApiError(
                400,
                "invalid_request_error",
                f"Missing required param: {name}.",
                "parameter_missing",
                name,
            )
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400,
            "invalid_request_error",
            f"Invalid integer: {raw}",
            "parameter_invalid_integer",
            name,
        ) from None
    if value <= 0:
        raise ApiError(
            400,
            "invalid_request_error",
            f"Invalid positive integer: {name}",
            "parameter_invalid_integer",
            name,
        )
    return value


class StripeApi:
    """Payment intents and refunds in memory; every method takes ``_lock`` or runs under it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._intents: dict[str, dict[str, Any]] = {}
        self._refunds: list[dict[str, Any]] = []

    # --- outside the API ------------------------------------------------------------

    def create_payment_intent(
        self, amount: int, currency: str = "usd", *, status: str = "requires_capture", **fields: Any
    ) -> dict[str, Any]:
        """Seed an intent directly (no HTTP, not recorded); returns a copy."""
        with self._lock:
            intent = self._new_intent(amount, currency.lower(), "manual", status, fields)
            return copy.deepcopy(intent)

    def payment_intent(self, intent_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._intents[intent_id])

    @property
    def refunds(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._refunds)

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

    # --- the API (called under _lock) -----------------------------------------------

    def _new_intent(
        self, amount: int, currency: str, capture_method: str, status: str, extra: dict[str, Any]
    ) -> dict[str, Any]:
        intent_id = "pi_" + secrets.token_hex(12)
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount,
            "amount_capturable": amount if status == "requires_capture" else 0,
            "amount_received": amount if status == "succeeded" else 0,
            "amount_refunded": 0,
            "currency": currency,
            "capture_method": capture_method,
            "status": status,
            "metadata": {},
            "latest_charge": "ch_" + secrets.token_hex(12)
            if status in ("requires_capture", "succeeded")
            else None,
            "created": int(time.time()),
            "livemode": False,
            **extra,
        }
        self._intents[intent_id] = intent
        return intent

    def _intent(self, intent_id: str) -> dict[str, Any]:
        intent = self._intents.get(intent_id)
        if intent is None:
            raise ApiError(
                404,
                "invalid_request_error",
                f"No such payment_intent: '{intent_id}'",
                "resource_missing",
                "intent",
            )
        return intent

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "POST" and path == "/v1/payment_intents":
            return self._create_intent(params)
        if method == "POST" and path == "/v1/refunds":
            return self._create_refund(params)
        match = re.fullmatch(r"/v1/payment_intents/([^/]+)(/capture|/cancel)?", path)
        if match:
            intent = self._intent(match.group(1))
            action = match.group(2)
            if method == "GET" and action is None:
                return intent
            if method == "POST" and action == "/capture":
                return self._capture(intent, params)
            if method == "POST" and action == "/cancel":
                return self._cancel(intent, params)
        raise ApiError(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."
        )

    def _create_intent(self, params: dict[str, Any]) -> dict[str, Any]:
        amount = _int(params, "amount", required=True)
        assert amount is not None
        currency = str(params.get("currency") or "")
        if not re.fullmatch(r"[a-zA-Z]{3}", currency):
            raise ApiError(
                400,
                "invalid_request_error",
                "Missing required param: currency.",
                "parameter_missing",
                "currency",
            )
        capture_method = str(params.get("capture_method", "automatic"))
        payment_method = params.get("payment_method")
        confirm = str(params.get("confirm", "false")).lower() == "true"
        if confirm and payment_method == "pm_card_chargeDeclined":
            raise ApiError(402, "card_error", "Your card was declined.", "card_declined")
        if confirm and payment_method:
            status = "requires_capture" if capture_method == "manual" else "succeeded"
        elif payment_method:
            status = "requires_confirmation"
        else:
            status = "requires_payment_method"
        intent = self._new_intent(amount, currency.lower(), capture_method, status, {})
        intent["metadata"] = dict(params.get("metadata") or {})
        if payment_method:
            intent["payment_method"] = payment_method
        return intent

    def _capture(self, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if intent["status"] != "requires_capture":
            raise ApiError(
                400,
                "invalid_request_error",
                "This PaymentIntent could not be captured because it has a status of "
                f"{intent['status']}. Only a PaymentIntent with one of the following statuses "
                "may be captured: requires_capture.",
                "payment_intent_unexpected_state",
            )
        amount = _int(params, "amount_to_capture") or intent["amount_capturable"]
        if amount > intent["amount_capturable"]:
            raise ApiError(
                400,
                "invalid_request_error",
                "The amount to capture exceeds the amount capturable.",
                "amount_too_large",
                "amount_to_capture",
            )
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        intent["metadata"].update(params.get("metadata") or {})
        return intent

    def _cancel(self, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        if intent["status"] not in _CANCELABLE:
            raise ApiError(
                400,
                "invalid_request_error",
                "You cannot cancel this PaymentIntent because it has a status of "
                f"{intent['status']}.",
                "payment_intent_unexpected_state",
            )
        intent.update(
            status="canceled",
            amount_capturable=0,
            cancellation_reason=params.get("cancellation_reason"),
        )
        return intent

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent_id = params.get("payment_intent")
        if not intent_id:
            raise ApiError(
                400,
                "invalid_request_error",
                "One of charge or payment_intent is required.",
                "parameter_missing",
                "payment_intent",
            )
        intent = self._intent(str(intent_id))
        if intent["status"] != "succeeded":
            raise ApiError(
                400,
                "invalid_request_error",
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                "charge_not_refundable"
                if intent["status"] != "canceled"
                else "payment_intent_unexpected_state",
            )
        left = intent["amount_received"] - intent["amount_refunded"]
        if left <= 0:
            raise ApiError(
                400,
                "invalid_request_error",
                f"Charge {intent['latest_charge']} has already been refunded.",
                "charge_already_refunded",
            )
        amount = _int(params, "amount") or left
        if amount > left:
            raise ApiError(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                "amount_too_large",
                "amount",
            )
        intent["amount_refunded"] += amount
        refund = {
            "id": "re_" + secrets.token_hex(12),
            "object": "refund",
            "amount": amount,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "charge": intent["latest_charge"],
            "status": "succeeded",
            "reason": params.get("reason"),
            "metadata": dict(params.get("metadata") or {}),
            "created": int(time.time()),
        }
        self._refunds.append(refund)
        return refund
