"""Stripe's webhook events applied to escrows: Stripe is the source of truth for money.

An event is a hint, not the fact: for every handled event the PaymentIntent and its
charge are read back from Stripe (``PaymentGateway.snapshot``), and the escrow is
brought in line with *that*. So an event that arrives late, twice or out of order is
applied once and never moves an escrow backwards:

- the state moves only along the machine (``state.TRANSITIONS``), gated by Stripe's
  status now: ``fund`` when the intent is ``requires_capture``, ``cancel``/``expire``
  when it is ``canceled``, ``chargeback`` (funded -> disputed) on an open dispute;
- amounts only grow: captured and refunded are Stripe's charge amounts, never less
  than what the escrow already records;
- a chargeback's status only moves forward (open -> won/lost), its first news notifies
  the admin;
- nothing new means no write; a write is conditional on the escrow's version and
  records the Stripe event id (``STRIPE_EVENT#``) in the same transaction.

===============================================  ==========================================
event                                            effect
===============================================  ==========================================
``payment_intent.amount_capturable_updated``     pending -> funded; capture deadline kept
``payment_intent.canceled``                      pending -> cancelled; funded/disputed ->
                                                 expired (the authorisation lapsed)
``payment_intent.succeeded``                     captured amount recorded
``charge.refunded``                              refunded amount recorded (dashboard refund,
                                                 operator refund job)
``charge.dispute.created`` / ``.closed``         chargeback recorded; funded -> disputed;
                                                 admin notified; outcome recorded
===============================================  ==========================================

An escrow with a Stripe call in flight (``releasing``/``refunding``) answers 503 so
that Stripe delivers the event again later, once our own write has landed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from jobs_core import annotate_escrow, logger

from . import history
from .effects import Notices, side_effects
from .errors import PaymentProviderError, RetryLaterError
from .messages import ApiResponse
from .models import CLOSED_CHARGEBACK, Escrow, plausible_escrow_id
from .outbox import OutboxEntry
from .state import CLAIMED_STATES, Action, EscrowState
from .store import EscrowStore, TransactionConflictError
from .stripe_gateway import PaymentGateway, PaymentGatewayError, PaymentSnapshot, WebhookEvent

HANDLED = frozenset(
    {
        "payment_intent.amount_capturable_updated",
        "payment_intent.canceled",
        "payment_intent.succeeded",
        "charge.refunded",
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
    }
)
ATTEMPTS = 4  # re-reads after a lost write race before asking Stripe to retry


class Syncer(Protocol):
    """What applying an event needs from the service (``service.EscrowService`` is one)."""

    store: EscrowStore
    gateway: PaymentGateway
    notices: Notices

    def now_ms(self) -> int: ...

    def dispatch(self, outbox: Sequence[OutboxEntry]) -> None: ...


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    escrow: Escrow  # as it is to be written (version not yet bumped)
    notices: Notices
    reason: str | None = None


def apply_event(svc: Syncer, event: WebhookEvent) -> ApiResponse:
    """Bring the event's escrow in line with Stripe; the answer Stripe gets."""
    if event.type not in HANDLED:
        return ack(event.id, ignored="event type not handled")
    obj = event.object
    is_intent = event.type.startswith("payment_intent.")
    intent_id = obj.get("id") if is_intent else obj.get("payment_intent")
    if not isinstance(intent_id, str) or not intent_id.startswith("pi_"):
        return ack(event.id, ignored="no payment intent")
    metadata = obj.get("metadata") if is_intent else None
    claimed = metadata.get("escrow_id") if isinstance(metadata, Mapping) else None
    if is_intent and (not isinstance(claimed, str) or not plausible_escrow_id(claimed)):
        return ack(event.id, ignored="not an escrow payment")
    try:
        snap = svc.gateway.snapshot(intent_id)
    except PaymentGatewayError as exc:  # non-2xx: Stripe delivers the event again
        raise PaymentProviderError(f"{exc.message}; the event was not applied") from None
    escrow_id = claimed if isinstance(claimed, str) else snap.escrow_id
    if not escrow_id or not plausible_escrow_id(escrow_id):
        return ack(event.id, ignored="not an escrow payment")
    annotate_escrow(escrow_id)
    for _ in range(ATTEMPTS):
        escrow = svc.store.get_escrow(escrow_id)
        if escrow is None or escrow.payment_intent_id != intent_id:
            logger.warning("stripe event for an unknown escrow", extra={"event_id": event.id})
            return ack(event.id, ignored="unknown escrow")
        if escrow.state in CLAIMED_STATES:
            raise RetryLaterError(f"escrow {escrow_id} is {escrow.state}; deliver the event later")
        try:
            change = plan_change(escrow, snap, event, svc.notices)
        except AmountMismatchError:
            logger.error("authorised amount differs from the escrow", extra={"event": event.id})
            return ack(event.id, ignored="amount or currency mismatch")
        if change is None:
            return ack(event.id, ignored=f"escrow is {escrow.state}")
        try:
            new = _write(svc, escrow, change, event)
        except TransactionConflictError as exc:
            if "event" in exc.failed:
                return ack(event.id, ignored="duplicate event")
            continue  # the escrow changed meanwhile: read it again
        return ApiResponse(
            200,
            {
                "received": True,
                "eventId": event.id,
                "escrowId": escrow_id,
                "state": new.state,
                "applied": change.action.value,
            },
        )
    raise RetryLaterError(f"escrow {escrow_id} keeps changing; deliver the event later")


class AmountMismatchError(Exception):
    """Stripe authorised another amount or currency than the escrow's."""


def plan_change(
    e: Escrow, snap: PaymentSnapshot, event: WebhookEvent, notices: Notices
) -> Change | None:
    """What the escrow becomes so that it agrees with Stripe, or None when it does."""
    facts: dict[str, Any] = {
        "captured_amount": max(e.captured_amount, snap.captured),
        "refunded_amount": max(e.refunded_amount, snap.refunded),
        "capture_before_ms": snap.capture_before_ms or e.capture_before_ms,
        "extended_authorization": (
            e.extended_authorization
            if snap.extended_authorization is None
            else snap.extended_authorization
        ),
        **_chargeback(e, event),
    }
    new = e.evolve(**facts)
    opened = e.chargeback_id is None and new.chargeback_open  # first news of an open one
    S = EscrowState
    action: Action | None = None
    if e.state is S.PENDING and snap.status == "requires_capture":
        if snap.amount_capturable < e.amount or snap.currency != e.currency:
            raise AmountMismatchError
        action = Action.FUND
    elif e.state is S.PENDING and snap.status == "canceled":
        action = Action.CANCEL
    elif e.state in (S.FUNDED, S.DISPUTED) and snap.status == "canceled":
        action = Action.EXPIRE
    elif e.state is S.FUNDED and new.chargeback_open:
        action = Action.CHARGEBACK
    if action is not None:
        target = {
            Action.FUND: S.FUNDED,
            Action.CANCEL: S.CANCELLED,
            Action.EXPIRE: S.EXPIRED,
            Action.CHARGEBACK: S.DISPUTED,
        }[action]
        reason = snap.cancellation_reason if action is Action.EXPIRE else None
        return Change(action, new.evolve(state=target), _notes(notices, new, opened), reason)
    if new == e:
        return None
    if opened:
        fact = Action.CHARGEBACK
    elif (
        new.chargeback_status != e.chargeback_status
        and new.chargeback_id is not None
        and (not new.chargeback_open)
    ):
        fact = Action.CHARGEBACK_CLOSED
    elif new.refunded_amount != e.refunded_amount:
        fact = Action.STRIPE_REFUND
    elif new.captured_amount != e.captured_amount:
        fact = Action.STRIPE_CAPTURE
    else:
        fact = Action.AUTHORIZATION
    reason = (
        f"captured {new.captured_amount}, refunded {new.refunded_amount} at Stripe"
        if fact in (Action.STRIPE_REFUND, Action.STRIPE_CAPTURE)
        else None
    )
    return Change(fact, new, _notes(notices, new, opened), reason)


def _chargeback(e: Escrow, event: WebhookEvent) -> dict[str, Any]:
    """The chargeback fields after a dispute event: its status only moves forward."""
    if not event.type.startswith("charge.dispute."):
        return {}
    dispute = event.object
    status = str(dispute.get("status") or "needs_response")
    if e.chargeback_id is not None and e.chargeback_id != dispute.get("id"):
        logger.warning("a second chargeback on one charge", extra={"event": event.id})
    if e.chargeback_status in CLOSED_CHARGEBACK and status not in CLOSED_CHARGEBACK:
        return {}  # a late "created" after the "closed": the outcome stands
    amount = dispute.get("amount")
    return {
        "chargeback_id": str(dispute.get("id")),
        "chargeback_status": status,
        "chargeback_amount": int(amount) if isinstance(amount, int) else e.chargeback_amount,
    }


def _notes(base: Notices, new: Escrow, opened: bool) -> Notices:
    return Notices(
        admin_email=base.admin_email,
        warn_before_ms=base.warn_before_ms,
        chargeback=opened,
        chargeback_outcome=new.chargeback_status,
    )


def _write(svc: Syncer, escrow: Escrow, change: Change, event: WebhookEvent) -> Escrow:
    now = svc.now_ms()
    new = change.escrow.evolve(version=escrow.version + 1, updated_ms=now)
    outbox = side_effects(
        change.action, escrow.state, new, actor="stripe", now_ms=now, request_id=event.id,
        reason=change.reason, notices=change.notices,
    )  # fmt: skip
    row = history.row(
        new, change.action, escrow.state, "stripe", now, event.id, change.reason,
        stripe_action=event.type,
    )  # fmt: skip
    svc.store.write(
        new,
        expected=escrow,
        history=row,
        outbox=outbox,
        stripe_event=(event.id, event.type),
        now_ms=now,
    )
    svc.dispatch(outbox)
    logger.info(
        "stripe event applied",
        extra={"escrow_id": new.escrow_id, "event": event.type, "action": change.action},
    )
    return new


def ack(event_id: str, *, ignored: str) -> ApiResponse:
    return ApiResponse(200, {"received": True, "eventId": event_id, "ignored": ignored})
