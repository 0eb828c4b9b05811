"""The (state x action) matrix through the real routes: what moves an escrow, and what not.

A disputed escrow is frozen: release and refund are refused (the buyer's, the seller's
and the admin's alike); only an admin's resolve moves it. Terminal states stay
terminal. A refused action changes nothing in the table and asks Stripe nothing.
"""

from __future__ import annotations

import pytest
from escrow.service import EscrowService
from escrow.state import TRANSITIONS, Action, EscrowState
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import call, seed_escrow
from tests.integration.escrow_api.test_routes import table_items

S = EscrowState
# The sample event of each route and who sends it.
ROUTES = {
    "release": "release",  # buyer
    "refund": "refund",  # seller
    "refund_by_admin": "refund_by_admin",
    "dispute": "dispute",  # buyer
    "resolve_release": "resolve_release",  # admin
    "resolve_refund": "resolve_refund",  # admin
}
ALLOWED: dict[tuple[S, str], S] = {
    (S.FUNDED, "release"): S.RELEASED,
    (S.FUNDED, "refund"): S.REFUNDED,
    (S.FUNDED, "refund_by_admin"): S.REFUNDED,
    (S.FUNDED, "dispute"): S.DISPUTED,
    (S.DISPUTED, "resolve_release"): S.RELEASED,
    (S.DISPUTED, "resolve_refund"): S.REFUNDED,
}
RESTING = [S.PENDING, S.FUNDED, S.DISPUTED, S.RELEASED, S.REFUNDED, S.CANCELLED, S.EXPIRED]
# What Stripe holds for an escrow in each state.
INTENT_STATUS = {
    S.PENDING: "requires_payment_method",
    S.FUNDED: "requires_capture",
    S.DISPUTED: "requires_capture",
    S.RELEASED: "succeeded",
}


def seed(service: EscrowService, stripe_api: StripeServer, state: EscrowState) -> str:
    escrow_id, _ = seed_escrow(
        service, stripe_api, state.value,
        intent_status=INTENT_STATUS.get(state, "canceled"),
        captured_amount=10000 if state is S.RELEASED else 0,
    )  # fmt: skip
    return escrow_id


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("state", RESTING, ids=str)
def test_state_x_action(
    service: EscrowService, stripe_api: StripeServer, state: EscrowState, route: str
) -> None:
    escrow_id = seed(service, stripe_api, state)
    before, stripe_before = table_items(), len(stripe_api.requests)
    reply = call(ROUTES[route], escrow_id=escrow_id)
    expected = ALLOWED.get((state, route))
    if expected is None:
        assert reply.status == 409, reply.body
        assert reply.error["currentState"] == state.value
        assert table_items() == before
        assert len(stripe_api.requests) == stripe_before
    else:
        assert reply.status == 200, reply.body
        assert reply.body["escrow"]["state"] == expected.value


def test_only_resolve_moves_a_disputed_escrow_in_the_machine() -> None:
    # Besides resolve, only Stripe ending the authorisation (the money is gone) does.
    moves = {action for action, t in TRANSITIONS.items() if S.DISPUTED in t.sources}
    assert moves == {Action.RESOLVE_RELEASE, Action.RESOLVE_REFUND, Action.EXPIRE}
