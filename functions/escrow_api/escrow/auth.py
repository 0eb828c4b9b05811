"""Who is calling, from the JWT claims API Gateway has already verified, and what they may do.

API Gateway's JWT authorizer checks signature, issuer, audience and expiry; the handler
reads the claims from ``requestContext.authorizer.jwt.claims`` and authorises per escrow:

- only the buyer releases or disputes;
- the seller or an admin refunds;
- only an admin resolves a dispute;
- only the parties and admins see an escrow: anyone else gets 404, not 403, so escrow
  ids cannot be probed.

Roles come from ONE claim, named by ``ESCROW_ROLES_CLAIM`` (the template parameter
``RolesClaim``; default ``cognito:groups``, which only a Cognito administrator can change).
Never name a claim that users can edit themselves (a ``custom:`` attribute that is
writable by the app client): whoever can write it can make themselves admin. HTTP APIs
flatten array claims into a string (``"[admin user]"``), so roles are parsed from both
shapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ForbiddenError, NotFoundError, UnauthorizedError
from .models import Escrow
from .state import Action

ADMIN_ROLE = "admin"
DEFAULT_ROLES_CLAIM = "cognito:groups"


@dataclass(frozen=True, slots=True)
class Caller:
    sub: str
    email: str | None
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def role_in(self, escrow: Escrow) -> str | None:
        """``buyer``, ``seller``, ``admin`` or None (a stranger to this escrow)."""
        if self.sub == escrow.buyer.id:
            return "buyer"
        if self.sub == escrow.seller.id:
            return "seller"
        return "admin" if self.is_admin else None


def claims_from_event(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``requestContext.authorizer.jwt.claims`` of an HTTP API v2 event, if any."""
    node: Any = event
    for key in ("requestContext", "authorizer", "jwt", "claims"):
        if not isinstance(node, Mapping):
            return None
        node = node.get(key)
    return node if isinstance(node, Mapping) else None


def caller_from_claims(
    claims: Mapping[str, Any] | None, *, roles_claim: str = DEFAULT_ROLES_CLAIM
) -> Caller:
    """Build the caller, its roles read from ``roles_claim`` only; 401 without a subject."""
    if not claims:
        raise UnauthorizedError("authentication required")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub.strip():
        raise UnauthorizedError("the token has no subject")
    email = claims.get("email")
    roles = frozenset(parse_roles(claims.get(roles_claim)))
    return Caller(sub.strip(), email if isinstance(email, str) else None, roles)


def parse_roles(value: Any) -> set[str]:
    """Roles from a list, a JSON array string, or API Gateway's ``"[a b]"`` / ``"a,b"``."""
    if value is None:
        return set()
    if isinstance(value, list | tuple | set | frozenset):
        return {str(v).strip() for v in value if str(v).strip()}
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            text = text[1:-1]
        else:
            if isinstance(parsed, list):
                return {str(v).strip() for v in parsed if str(v).strip()}
    return {part for part in re.split(r"[\s,]+", text) if part}


# Which party may take which action (admins also see every escrow).
ALLOWED_ROLES: dict[Action, frozenset[str]] = {
    Action.RELEASE: frozenset({"buyer"}),
    Action.DISPUTE: frozenset({"buyer"}),
    Action.REFUND: frozenset({"seller", "admin"}),
    Action.RESOLVE_RELEASE: frozenset({"admin"}),
    Action.RESOLVE_REFUND: frozenset({"admin"}),
}


def authorize_view(caller: Caller, escrow: Escrow) -> str:
    """The caller's role in the escrow; 404 for strangers (not 403: ids are not probed)."""
    role = caller.role_in(escrow)
    if role is None:
        raise NotFoundError(f"escrow {escrow.escrow_id} not found", field="escrowId")
    return role


def authorize_action(caller: Caller, escrow: Escrow, action: Action) -> str:
    """The role under which the caller may act; 404 for strangers, 403 for a wrong role."""
    role = authorize_view(caller, escrow)
    allowed = ALLOWED_ROLES[action]
    if role in allowed:
        return role
    # A party who is also an admin acts as admin where only admins may act.
    if caller.is_admin and "admin" in allowed:
        return "admin"
    who = " or ".join(sorted(allowed))
    raise ForbiddenError(f"only the {who} may {action.value.replace('_', ' ')} this escrow")
