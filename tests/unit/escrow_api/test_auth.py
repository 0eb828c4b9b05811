"""Claims to caller, and who may do what to an escrow (404 for strangers, 403 for wrong roles)."""

from __future__ import annotations

import pytest
from escrow.auth import (
    Caller,
    authorize_action,
    authorize_view,
    caller_from_claims,
    claims_from_event,
    parse_roles,
)
from escrow.errors import ForbiddenError, NotFoundError, UnauthorizedError
from escrow.models import Escrow, Party
from escrow.state import Action, EscrowState

ESCROW = Escrow(
    escrow_id="esc_1",
    state=EscrowState.FUNDED,
    version=2,
    amount=100,
    currency="USD",
    buyer=Party("buyer", "b@example.com"),
    seller=Party("seller", "s@example.com"),
    payment_intent_id="pi_1",
    created_by="buyer",
    created_ms=0,
    updated_ms=0,
)
BUYER = Caller("buyer", None, frozenset())
SELLER = Caller("seller", None, frozenset())
ADMIN = Caller("admin-1", None, frozenset({"admin"}))
STRANGER = Caller("someone", None, frozenset())


@pytest.mark.parametrize(
    ("value", "roles"),
    [
        (None, set()),
        (["admin", "ops"], {"admin", "ops"}),
        ("[admin ops]", {"admin", "ops"}),  # how HTTP APIs flatten an array claim
        ('["admin","ops"]', {"admin", "ops"}),
        ("admin,ops", {"admin", "ops"}),
        ("admin", {"admin"}),
        ("[]", set()),
    ],
)
def test_parse_roles_accepts_every_shape(value: object, roles: set[str]) -> None:
    assert parse_roles(value) == roles


def test_roles_come_from_the_one_configured_claim_only() -> None:
    claims = {
        "sub": "u1",
        "email": "u1@example.com",
        "cognito:groups": "[support]",
        # Claims a user may be able to edit (a writable custom attribute) grant nothing.
        "roles": ["admin"],
        "groups": "admin",
        "custom:roles": "admin",
    }
    caller = caller_from_claims(claims)
    assert caller == Caller("u1", "u1@example.com", frozenset({"support"}))
    assert not caller.is_admin
    assert caller_from_claims(claims, roles_claim="custom:roles").is_admin
    assert not caller_from_claims({"sub": "u1", "roles": ["admin"]}).is_admin


def test_the_roles_claim_is_configured_by_the_environment() -> None:
    from escrow.config import ApiConfig

    assert ApiConfig.from_env({"ESCROW_TABLE_NAME": "t"}).roles_claim == "cognito:groups"
    env = {"ESCROW_TABLE_NAME": "t", "ESCROW_ROLES_CLAIM": "https://example.com/roles"}
    assert ApiConfig.from_env(env).roles_claim == "https://example.com/roles"


@pytest.mark.parametrize("claims", [None, {}, {"email": "x@example.com"}, {"sub": "  "}])
def test_no_claims_or_no_subject_is_401(claims: dict[str, str] | None) -> None:
    with pytest.raises(UnauthorizedError):
        caller_from_claims(claims)


def test_claims_from_event_follows_the_v2_path_only() -> None:
    claims = {"sub": "u"}
    event = {"requestContext": {"authorizer": {"jwt": {"claims": claims}}}}
    assert claims_from_event(event) == claims
    assert claims_from_event({"requestContext": {"authorizer": {"lambda": claims}}}) is None
    assert claims_from_event({"requestContext": {}}) is None
    assert claims_from_event({}) is None


# action -> who may take it; everyone else is refused (strangers with 404).
RULES = {
    Action.RELEASE: {"buyer"},
    Action.DISPUTE: {"buyer"},
    Action.REFUND: {"seller", "admin"},
    Action.RESOLVE_RELEASE: {"admin"},
    Action.RESOLVE_REFUND: {"admin"},
}
CALLERS = {"buyer": BUYER, "seller": SELLER, "admin": ADMIN, "stranger": STRANGER}


@pytest.mark.parametrize("action", list(RULES))
@pytest.mark.parametrize("who", list(CALLERS))
def test_authorize_action_matrix(action: Action, who: str) -> None:
    caller = CALLERS[who]
    if who == "stranger":
        with pytest.raises(NotFoundError):
            authorize_action(caller, ESCROW, action)
    elif who in RULES[action]:
        assert authorize_action(caller, ESCROW, action) == who
    else:
        with pytest.raises(ForbiddenError):
            authorize_action(caller, ESCROW, action)


def test_a_party_who_is_also_admin_may_resolve() -> None:
    seller_admin = Caller("seller", None, frozenset({"admin"}))
    assert authorize_action(seller_admin, ESCROW, Action.RESOLVE_RELEASE) == "admin"


def test_view_is_for_parties_and_admins_only() -> None:
    assert authorize_view(BUYER, ESCROW) == "buyer"
    assert authorize_view(SELLER, ESCROW) == "seller"
    assert authorize_view(ADMIN, ESCROW) == "admin"
    with pytest.raises(NotFoundError):
        authorize_view(STRANGER, ESCROW)
