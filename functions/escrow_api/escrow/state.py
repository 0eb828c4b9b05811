"""The escrow state machine: which action moves which state where, and through what.

Final and resting states::

    pending ──fund──▶ funded ──release──▶ released
       │                │ ╲──refund───▶ refunded
       cancel           dispute / chargeback
       ▼                ▼
    cancelled        disputed ──resolve_release──▶ released
                        ╲──────resolve_refund──▶ refunded
    funded, disputed ──expire (Stripe cancelled the authorisation)──▶ expired

``fund``, ``cancel``, ``expire`` and ``chargeback`` come from Stripe's verified webhook
events, applied as Stripe's current state says (``stripe_events``); the rest are API
routes. A disputed escrow is frozen: only an admin's ``resolve_*`` moves it (or Stripe
ending the authorisation, since the held money is then gone whatever we decide).
Released, refunded, cancelled and expired are terminal. Facts that do not move the
state (a refund made in Stripe's dashboard, a chargeback on a captured payment and its
outcome) are recorded on the escrow with their own history rows (``FACTS``).

An action that moves money at Stripe first *claims* the escrow by moving it to an
intermediate state (``releasing`` or ``refunding``) with a version check, then calls
Stripe, then writes the final state; a Stripe failure puts the escrow back. The claim
is what makes two concurrent requests (release and refund at once) safe: exactly one
claim succeeds, so Stripe is asked once.

>>> plan(Action.RELEASE, EscrowState.FUNDED).target
<EscrowState.RELEASED: 'released'>
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class EscrowState(StrEnum):
    PENDING = "pending"  # created; the buyer has not authorised the payment yet
    FUNDED = "funded"  # payment authorised and held (PaymentIntent requires_capture)
    RELEASING = "releasing"  # claimed: a capture at Stripe is in flight
    REFUNDING = "refunding"  # claimed: a cancel/refund at Stripe is in flight
    RELEASED = "released"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # Stripe cancelled the uncaptured authorisation (expiry, dashboard)


class Action(StrEnum):
    CREATE = "create"
    FUND = "fund"  # Stripe webhook: the payment was authorised
    CANCEL = "cancel"  # Stripe webhook: the PaymentIntent was cancelled before funding
    RELEASE = "release"  # buyer
    REFUND = "refund"  # seller or admin
    DISPUTE = "dispute"  # buyer
    RESOLVE_RELEASE = "resolve_release"  # admin
    RESOLVE_REFUND = "resolve_refund"  # admin
    EXPIRE = "expire"  # Stripe webhook: the authorisation of a funded escrow was cancelled
    CHARGEBACK = "chargeback"  # Stripe webhook: the cardholder disputed the charge
    # Facts from Stripe that do not move the state (history rows only):
    STRIPE_REFUND = "stripe_refund"  # a refund made outside the API (dashboard, operator job)
    STRIPE_CAPTURE = "stripe_capture"  # a capture made outside the API
    CHARGEBACK_CLOSED = "chargeback_closed"  # the chargeback's outcome (won, lost)
    AUTHORIZATION = "authorization"  # the capture deadline learnt after funding


FACTS = frozenset(
    {Action.STRIPE_REFUND, Action.STRIPE_CAPTURE, Action.CHARGEBACK_CLOSED, Action.AUTHORIZATION}
)


class StripeOp(StrEnum):
    CAPTURE = "capture"  # capture the authorised amount: the seller is paid
    CANCEL_OR_REFUND = "cancel_or_refund"  # release the hold (or refund if already captured)


@dataclass(frozen=True, slots=True)
class Transition:
    action: Action
    sources: frozenset[EscrowState]
    target: EscrowState
    via: EscrowState | None = None  # the intermediate state held while Stripe is called
    stripe_op: StripeOp | None = None

    @property
    def event(self) -> str:
        """The name of what happened, used in dedupe keys and history (``released``...)."""
        return "resolved" if self.action.startswith("resolve") else self.target.value


def _t(
    action: Action,
    sources: set[EscrowState],
    target: EscrowState,
    via: EscrowState | None = None,
    op: StripeOp | None = None,
) -> Transition:
    return Transition(action, frozenset(sources), target, via, op)


S = EscrowState
TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        _t(Action.FUND, {S.PENDING}, S.FUNDED),
        _t(Action.CANCEL, {S.PENDING}, S.CANCELLED),
        _t(Action.RELEASE, {S.FUNDED}, S.RELEASED, S.RELEASING, StripeOp.CAPTURE),
        # A disputed escrow is frozen: refunds go through resolve_refund (an admin).
        _t(Action.REFUND, {S.FUNDED}, S.REFUNDED, S.REFUNDING, StripeOp.CANCEL_OR_REFUND),
        _t(Action.DISPUTE, {S.FUNDED}, S.DISPUTED),
        _t(Action.CHARGEBACK, {S.FUNDED}, S.DISPUTED),
        _t(Action.EXPIRE, {S.FUNDED, S.DISPUTED}, S.EXPIRED),
        _t(Action.RESOLVE_RELEASE, {S.DISPUTED}, S.RELEASED, S.RELEASING, StripeOp.CAPTURE),
        _t(
            Action.RESOLVE_REFUND,
            {S.DISPUTED},
            S.REFUNDED,
            S.REFUNDING,
            StripeOp.CANCEL_OR_REFUND,
        ),
    )
}

FINAL_STATES = frozenset({S.RELEASED, S.REFUNDED, S.CANCELLED, S.EXPIRED})
CLAIMED_STATES = frozenset({S.RELEASING, S.REFUNDING})


class IllegalTransitionError(Exception):
    """The action is not allowed from the escrow's current state."""

    def __init__(self, action: Action, current: EscrowState) -> None:
        self.action = action
        self.current = current
        super().__init__(f"cannot {action.value.replace('_', ' ')} an escrow that is {current}")


def plan(action: Action, current: EscrowState) -> Transition:
    """The transition ``action`` takes from ``current``, or ``IllegalTransitionError``."""
    transition = TRANSITIONS[action]
    if current not in transition.sources:
        raise IllegalTransitionError(action, current)
    return transition
