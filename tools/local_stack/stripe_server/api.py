"""The Stripe objects the local server keeps, and what each endpoint does to them.

Endpoints (parameters already parsed from the SDK's form encoding):

* ``POST /v1/payment_intents``: ``amount``, ``currency``, ``capture_method``
  (``manual`` or ``automatic``), ``confirm``, ``payment_method``, ``metadata[...]``.
  Confirmed with a card it is ``requires_capture`` (manual) or ``succeeded``;
  the test card ``pm_card_chargeDeclined`` answers 402 ``card_declined``.
* ``GET /v1/payment_intents/{id}`` (``expand[]=latest_charge`` inlines the charge)
* ``GET /v1/charges/{id}``: the intent's charge: ``amount_captured``, ``amount_refunded``,
  ``disputed``, ``payment_method_details.card.capture_before`` (the capture deadline,
  7 days after authorisation, 30 with an extended authorisation) and
  ``payment_method_details.card.extended_authorization.status``.
* ``GET /v1/refunds?payment_intent=pi_...``: the intent's refunds, newest first.
* ``POST /v1/payment_intents/{id}/capture``: ``amount_to_capture``, ``metadata``;
  only from ``requires_capture``, else 400 ``payment_intent_unexpected_state``.
* ``POST /v1/payment_intents/{id}/cancel``: from any state but ``succeeded``/``canceled``.
* ``POST /v1/refunds``: ``payment_intent``, ``amount``, ``reason``, ``metadata``;
  of a ``succeeded`` intent, at most what is left (else 400
  ``charge_already_refunded`` / ``amount_too_large``; a disputed charge: 400
  ``charge_disputed``).

Every change records the webhook event Stripe would send (``events``):
``payment_intent.amount_capturable_updated``, ``payment_intent.succeeded``,
``payment_intent.canceled``, ``charge.refunded``, ``charge.dispute.created`` and
``charge.dispute.closed``. What happens outside the API (the buyer pays, an
authorisation expires, a chargeback, a refund in the dashboard) is in ``outside.py``.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from .events import stripe_event

_CANCELABLE = {
    "requires_payment_method",
    "requires_confirmation",
    "requires_action",
    "requires_capture",
    "processing",
}
_AUTHORIZABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
AUTHORIZATION_WINDOW_S = 7 * 86_400  # most cards: an uncaptured authorisation lasts 7 days
EXTENDED_WINDOW_S = 30 * 86_400  # with an extended authorisation


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
        self._charges: dict[str, dict[str, Any]] = {}
        self._disputes: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self.clock: Callable[[], float] = time.time  # Stripe's clock (unix seconds)

    def _now(self) -> int:
        return int(self.clock())

    def _emit(self, event_type: str, obj: dict[str, Any]) -> None:
        self._events.append(stripe_event(event_type, copy.deepcopy(obj), now=self._now()))

    def _new_charge(
        self, intent: dict[str, Any], *, extended: bool = False, charge_id: str | None = None
    ) -> str:
        """The charge of an authorised intent (with its capture deadline); returns its id."""
        now = self._now()
        captured = intent["status"] == "succeeded"
        charge_id = charge_id or "ch_" + secrets.token_hex(12)
        self._charges[charge_id] = {
            "id": charge_id,
            "object": "charge",
            "amount": intent["amount"],
            "amount_captured": intent["amount"] if captured else 0,
            "amount_refunded": 0,
            "captured": captured,
            "refunded": False,
            "disputed": False,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "status": "succeeded",
            "metadata": dict(intent.get("metadata") or {}),
            "created": now,
            "payment_method_details": {
                "type": "card",
                "card": {
                    "capture_before": now
                    + (EXTENDED_WINDOW_S if extended else AUTHORIZATION_WINDOW_S),
                    "extended_authorization": {"status": "enabled" if extended else "disabled"},
                },
            },
        }
        intent["latest_charge"] = charge_id
        return charge_id

    def _charge(self, charge_id: str) -> dict[str, Any]:
        charge = self._charges.get(charge_id)
        if charge is None:
            raise ApiError(
                404, "invalid_request_error", f"No such charge: '{charge_id}'",
                "resource_missing", "id",
            )  # fmt: skip
        return charge

    def _charge_of(self, intent: dict[str, Any]) -> dict[str, Any] | None:
        charge_id = intent.get("latest_charge")
        if not charge_id:
            return None
        if charge_id not in self._charges:  # an intent given a bare charge id from outside
            self._new_charge(intent, charge_id=charge_id)
        return self._charges[charge_id]

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
            "latest_charge": None,
            "cancellation_reason": None,
            "created": self._now(),
            "livemode": False,
            **extra,
        }
        self._intents[intent_id] = intent
        if status in ("requires_capture", "succeeded") and not intent["latest_charge"]:
            self._new_charge(intent)
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
        if method == "GET" and path == "/v1/refunds":
            return self._list_refunds(params)
        charge = re.fullmatch(r"/v1/charges/([^/]+)", path)
        if method == "GET" and charge:
            return self._charge(charge.group(1))
        match = re.fullmatch(r"/v1/payment_intents/([^/]+)(/capture|/cancel)?", path)
        if match:
            intent = self._intent(match.group(1))
            action = match.group(2)
            if method == "GET" and action is None:
                return self._expanded(intent, params)
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
        if params.get("payment_method_options"):
            intent["payment_method_options"] = params["payment_method_options"]
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
        charge = self._charge_of(intent)
        if charge is not None:
            charge.update(captured=True, amount_captured=amount)
        self._emit("payment_intent.succeeded", intent)
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
        self._emit("payment_intent.canceled", intent)
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
        charge = self._charge_of(intent)
        if charge is not None and self._open_dispute_on(charge["id"]):
            raise ApiError(
                400,
                "invalid_request_error",
                f"Charge {charge['id']} has been charged back; it cannot be refunded.",
                "charge_disputed",
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
            "created": self._now(),
        }
        self._refunds.append(refund)
        if charge is not None:
            charge["amount_refunded"] = intent["amount_refunded"]
            charge["refunded"] = charge["amount_refunded"] >= charge["amount_captured"]
            self._emit("charge.refunded", charge)
        return refund

    def _open_dispute_on(self, charge_id: str) -> bool:
        closed = ("won", "lost", "warning_closed")
        return any(
            d["charge"] == charge_id and d["status"] not in closed for d in self._disputes.values()
        )

    def _list_refunds(self, params: dict[str, Any]) -> dict[str, Any]:
        intent_id = params.get("payment_intent")
        data = [
            r for r in reversed(self._refunds) if not intent_id or r["payment_intent"] == intent_id
        ]
        limit = _int(params, "limit") or 10
        return {
            "object": "list",
            "data": data[:limit],
            "has_more": len(data) > limit,
            "url": "/v1/refunds",
        }

    def _expanded(self, intent: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
        expand = params.get("expand") or []
        if "latest_charge" not in expand:
            return intent
        view = copy.deepcopy(intent)
        charge = self._charge_of(intent)
        view["latest_charge"] = copy.deepcopy(charge) if charge is not None else None
        return view
