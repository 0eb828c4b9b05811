"""The state machine: every allowed move, and every other move refused with the current state."""

from __future__ import annotations

import itertools

import pytest
from escrow.state import (
    CLAIMED_STATES,
    FINAL_STATES,
    TRANSITIONS,
    Action,
    EscrowState,
    IllegalTransitionError,
    StripeOp,
    plan,
)

S = EscrowState
ALLOWED = {
    (Action.FUND, S.PENDING): S.FUNDED,
    (Action.CANCEL, S.PENDING): S.CANCELLED,
    (Action.RELEASE, S.FUNDED): S.RELEASED,
    (Action.REFUND, S.FUNDED): S.REFUNDED,
    (Action.DISPUTE, S.FUNDED): S.DISPUTED,
    (Action.CHARGEBACK, S.FUNDED): S.DISPUTED,
    (Action.EXPIRE, S.FUNDED): S.EXPIRED,
    (Action.EXPIRE, S.DISPUTED): S.EXPIRED,
    (Action.RESOLVE_RELEASE, S.DISPUTED): S.RELEASED,
    (Action.RESOLVE_REFUND, S.DISPUTED): S.REFUNDED,
}


@pytest.mark.parametrize(("action", "state"), list(itertools.product(TRANSITIONS, S)))
def test_plan_allows_exactly_the_documented_moves(action: Action, state: EscrowState) -> None:
    expected = ALLOWED.get((action, state))
    if expected is None:
        with pytest.raises(IllegalTransitionError) as info:
            plan(action, state)
        assert info.value.current is state
        assert state.value in str(info.value)
    else:
        assert plan(action, state).target is expected


def test_final_and_claimed_states_allow_nothing() -> None:
    for state in FINAL_STATES | CLAIMED_STATES:
        assert not any(state in t.sources for t in TRANSITIONS.values())


def test_money_moving_actions_go_through_an_intermediate_state() -> None:
    for transition in TRANSITIONS.values():
        if transition.target is S.RELEASED:
            assert (transition.via, transition.stripe_op) == (S.RELEASING, StripeOp.CAPTURE)
        elif transition.target is S.REFUNDED:
            assert transition.via is S.REFUNDING
            assert transition.stripe_op is StripeOp.CANCEL_OR_REFUND
        else:
            assert transition.via is None and transition.stripe_op is None


def test_no_state_is_entered_twice_so_event_names_are_unique_per_escrow() -> None:
    # Walk every path from pending: a target never repeats, so dedupe keys built from
    # (escrow, event, job type) name one effect for good.
    def paths(state: EscrowState, seen: tuple[EscrowState, ...]) -> list[tuple[EscrowState, ...]]:
        nexts = [t.target for t in TRANSITIONS.values() if state in t.sources]
        if not nexts:
            return [seen]
        return [p for n in nexts for p in paths(n, (*seen, n))]

    for path in paths(S.PENDING, (S.PENDING,)):
        assert len(path) == len(set(path)), path


def test_resolve_actions_share_the_event_name_resolved() -> None:
    assert TRANSITIONS[Action.RESOLVE_RELEASE].event == "resolved"
    assert TRANSITIONS[Action.RELEASE].event == "released"
