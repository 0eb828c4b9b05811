"""Moving an existing escrow: release, refund, dispute, resolve.

A move without Stripe (dispute) is one transaction. A money-moving one runs in three
writes around one Stripe call::

    T1  escrow funded -> releasing (condition: state and version as read)
        + the Idempotency-Key record "in progress"                (one transaction)
    --  Stripe capture, idempotency key escrow-<id>-capture
    T2  escrow releasing -> released + history row + outbox entries
        + the Idempotency-Key record "completed" with the answer   (one transaction)
    --  enqueue every outbox entry: one Redis round trip; delete the entries

Exactly one of two concurrent requests passes T1, so Stripe is asked once. If Stripe
fails, the escrow item is put back as it was (and the idempotency record removed):
502, state unchanged, nothing left behind. If the process dies between Stripe and T2,
the escrow stays ``releasing``; after ``claim_timeout_s`` a retry of the same action
takes the claim over, and Stripe's idempotency key makes the repeated call a replay.

A capture past the authorisation's deadline (``capture_before_ms``, Stripe's
``capture_before``), or one Stripe refuses because it cancelled the authorisation, is a
409 ``authorization_expired`` and leaves the escrow as it was; Stripe's
``payment_intent.canceled`` then moves it to ``expired``. The final write records the
money moved (captured and refunded amounts), as Stripe's events will report it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from jobs_core import annotate_escrow, logger

from . import auth, history, idempotency
from .effects import side_effects
from .errors import (
    ApiError,
    AuthorizationExpiredError,
    IdempotencyKeyReusedError,
    InvalidStateError,
    NotFoundError,
    PaymentProviderError,
    RequestInProgressError,
)
from .idempotency import IdempotencyKey, IdempotencyWrite
from .messages import ApiRequest, ApiResponse
from .models import Escrow, EscrowActionRequest, escrow_view, iso, parse_body
from .outbox import OutboxEntry
from .state import TRANSITIONS, Action, EscrowState, Transition
from .store import EscrowStore, TransactionConflictError
from .stripe_gateway import PaymentGateway, PaymentGatewayError


class Mover(Protocol):
    """What a move needs from the service (``service.EscrowService`` is one)."""

    store: EscrowStore
    gateway: PaymentGateway
    claim_timeout_s: float
    roles_claim: str

    def now_ms(self) -> int: ...

    def dispatch(self, outbox: Sequence[OutboxEntry]) -> None: ...


def act(
    svc: Mover,
    req: ApiRequest,
    model: type[EscrowActionRequest],
    route: str,
    action_of: Callable[[EscrowActionRequest], Action],
) -> ApiResponse:
    """One action route: parse, replay a retry, authorise, then move the escrow."""
    caller = auth.caller_from_claims(req.claims, roles_claim=svc.roles_claim)
    body = parse_body(req.body, model)
    annotate_escrow(body.escrow_id)
    action = action_of(body)
    idem = idempotency.key_of(caller, req, route, body)
    escrow, record = svc.store.load(body.escrow_id, idem.scope if idem else None)
    if idem is not None:
        replay = idempotency.replay(record, idem, svc.now_ms)
        if replay is not None:
            return replay
    if escrow is None:
        raise NotFoundError(f"escrow {body.escrow_id} not found", field="escrowId")
    auth.authorize_action(caller, escrow, action)
    if escrow.chargeback_open and action in (Action.RELEASE, Action.REFUND, Action.DISPUTE):
        raise InvalidStateError(
            "the escrow is frozen by a chargeback; only an admin's resolve moves it",
            current_state=escrow.state.value,
        )
    note = getattr(body, "reason", None) or getattr(body, "note", None)
    transition = TRANSITIONS[action]
    if transition.stripe_op is None:
        return move(svc, req, caller.sub, escrow, transition, idem, note)
    return move_with_stripe(svc, req, caller.sub, escrow, transition, idem, note)


def move(
    svc: Mover,
    req: ApiRequest,
    actor: str,
    escrow: Escrow,
    transition: Transition,
    idem: IdempotencyKey | None,
    note: str | None,
) -> ApiResponse:
    """A transition without Stripe: one transaction."""
    if escrow.state not in transition.sources:
        raise illegal(transition.action, escrow.state)
    now = svc.now_ms()
    new = escrow.evolve(
        state=transition.target,
        version=escrow.version + 1,
        updated_ms=now,
        **_notes(transition.action, note),
    )
    outbox = side_effects(
        transition.action, escrow.state, new,
        actor=actor, now_ms=now, request_id=req.request_id, reason=note,
    )  # fmt: skip
    response = ApiResponse(200, {"escrow": escrow_view(new)})
    try:
        svc.store.write(
            new,
            expected=escrow,
            history=history.row(
                new, transition.action, escrow.state, actor, now, req.request_id, note
            ),
            outbox=outbox,
            idem=idempotency.completed(idem, now, response),
            now_ms=now,
        )
    except TransactionConflictError as exc:
        return after_conflict(svc, exc, idem, escrow.escrow_id)
    svc.dispatch(outbox)
    return response


def move_with_stripe(
    svc: Mover,
    req: ApiRequest,
    actor: str,
    escrow: Escrow,
    transition: Transition,
    idem: IdempotencyKey | None,
    note: str | None,
) -> ApiResponse:
    """Claim (T1), Stripe, then the final transition (T2); put back on Stripe failure."""
    assert transition.via is not None and transition.stripe_op is not None
    now = svc.now_ms()
    if escrow.state in transition.sources:
        source = escrow.state
        restore = escrow  # a Stripe failure puts this very item back
    elif _abandoned_claim(escrow, transition, now, svc.claim_timeout_s):
        assert escrow.pending_from is not None
        source = escrow.pending_from
        restore = escrow.evolve(
            state=source, pending_action=None, pending_from=None, pending_since_ms=None
        )
        logger.warning("taking over an abandoned claim", extra={"escrow_id": escrow.escrow_id})
    else:
        raise illegal(transition.action, escrow.state)
    deadline = escrow.capture_before_ms
    if transition.target is EscrowState.RELEASED and deadline is not None and now >= deadline:
        raise expired(escrow, source)
    claimed = escrow.evolve(
        state=transition.via,
        version=escrow.version + 1,
        updated_ms=now,
        pending_action=transition.action,
        pending_from=source,
        pending_since_ms=now,
    )
    lock = None if idem is None else IdempotencyWrite(idem.record(now, lock_s=svc.claim_timeout_s))
    try:
        svc.store.write(claimed, expected=escrow, idem=lock, now_ms=now)  # T1
    except TransactionConflictError as exc:
        return after_conflict(svc, exc, idem, escrow.escrow_id)

    try:
        if transition.target is EscrowState.RELEASED:
            stripe_action = svc.gateway.capture(
                escrow.payment_intent_id, escrow_id=escrow.escrow_id
            )
        else:
            stripe_action = svc.gateway.cancel_or_refund(
                escrow.payment_intent_id, escrow_id=escrow.escrow_id
            )
    except PaymentGatewayError as exc:
        if restore is not escrow:
            restore = restore.evolve(version=claimed.version + 1, updated_ms=svc.now_ms())
        try:
            svc.store.write(restore, expected=claimed, idem_delete=idem.scope if idem else None)
        except TransactionConflictError:
            logger.warning("claim lost while Stripe failed", extra={"escrow": escrow.escrow_id})
        if exc.intent_status == "canceled":
            raise expired(escrow, source) from None
        raise gateway_error(exc, f"the escrow is unchanged ({source})", source) from None

    done = svc.now_ms()
    final = claimed.evolve(
        state=transition.target,
        version=claimed.version + 1,
        updated_ms=done,
        pending_action=None,
        pending_from=None,
        pending_since_ms=None,
        stripe_action=stripe_action,
        **_notes(transition.action, note),
        **_money(escrow, stripe_action),
    )
    row = history.row(
        final, transition.action, source, actor, done, req.request_id, note,
        stripe_action=stripe_action,
    )  # fmt: skip
    outbox = side_effects(
        transition.action, source, final,
        actor=actor, now_ms=done, request_id=req.request_id, reason=note,
    )  # fmt: skip
    response = ApiResponse(200, {"escrow": escrow_view(final)})
    finish = None
    if idem is not None:
        finish = IdempotencyWrite(
            idem.record(done, lock_s=0, response=response), take=False, owner_token=idem.token
        )
    try:
        svc.store.write(  # T2
            final, expected=claimed, history=row, outbox=outbox, idem=finish, now_ms=done
        )
    except TransactionConflictError as exc:
        # Taken over after our claim timed out; the new holder finishes the transition.
        return after_conflict(svc, exc, idem, escrow.escrow_id)
    svc.dispatch(outbox)
    logger.info(
        "escrow moved",
        extra={"escrow_id": escrow.escrow_id, "to": final.state, "stripe": stripe_action},
    )
    return response


def after_conflict(
    svc: Mover, exc: TransactionConflictError, idem: IdempotencyKey | None, escrow_id: str
) -> ApiResponse:
    """A lost write race: the winner's answer for the same key, else 409 with the state."""
    if idem is not None and "idem" in exc.failed:
        return idempotency.replay_after_race(svc.store, idem, svc.now_ms)
    current = svc.store.get_escrow(escrow_id)
    state = current.state if current else "unknown"
    raise InvalidStateError(
        f"the escrow changed meanwhile; it is now {state}", current_state=str(state)
    )


def illegal(action: Action, current: EscrowState) -> InvalidStateError:
    verb = action.value.replace("_", " ")
    return InvalidStateError(
        f"cannot {verb} an escrow that is {current}", current_state=current.value
    )


def gateway_error(
    exc: PaymentGatewayError, outcome: str, state: EscrowState | None = None
) -> ApiError:
    """Stripe's failure as the API's error; ``outcome`` says what became of the escrow."""
    if exc.idempotency_conflict:
        return IdempotencyKeyReusedError(
            "this Idempotency-Key was used with a different request", field="Idempotency-Key"
        )
    if exc.in_progress:
        return RequestInProgressError("the same request is in progress; retry shortly")
    extra = {"currentState": state.value} if state else None
    return PaymentProviderError(f"{exc.message}; {outcome}", extra=extra)


def expired(escrow: Escrow, state: EscrowState) -> AuthorizationExpiredError:
    when = f" at {iso(escrow.capture_before_ms)}" if escrow.capture_before_ms else ""
    return AuthorizationExpiredError(
        f"the card authorisation expired{when}: the payment can no longer be captured; "
        "the escrow is unchanged",
        current_state=state.value,
    )


def _money(escrow: Escrow, stripe_action: str) -> dict[str, Any]:
    """The amounts after our own Stripe call (never less than what is recorded)."""
    if stripe_action == "captured":
        return {"captured_amount": max(escrow.captured_amount, escrow.amount)}
    if stripe_action == "refunded":
        captured = max(escrow.captured_amount, escrow.amount)
        return {"captured_amount": captured, "refunded_amount": captured}
    return {}


def _abandoned_claim(
    escrow: Escrow, transition: Transition, now_ms: int, claim_timeout_s: float
) -> bool:
    return (
        escrow.state == transition.via
        and escrow.pending_action == transition.action
        and escrow.pending_from is not None
        and (escrow.pending_since_ms or 0) + claim_timeout_s * 1000 <= now_ms
    )


def _notes(action: Action, note: str | None) -> dict[str, Any]:
    if action is Action.DISPUTE:
        return {"dispute_reason": note}
    if action in (Action.RESOLVE_RELEASE, Action.RESOLVE_REFUND) and note:
        return {"resolution_note": note}
    return {}
