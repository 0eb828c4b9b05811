"""Dev tokens for local work: HS256 JWTs with the claims API Gateway would pass on.

In AWS, API Gateway's JWT authorizer verifies real tokens and the handler reads their
claims. Locally the stack verifies a dev token with ``verify`` and injects the same
claims into ``requestContext.authorizer.jwt.claims``; ``mint`` makes one, ``dev_users``
the stack's buyer, seller and admin::

    >>> secret = "local-dev-secret-at-least-32-bytes!!"
    >>> token = mint("user-1", "buyer@example.com", ["admin"], secret)
    >>> verify(token, secret)["roles"]
    ['admin']

Never use these outside local work: the secret is shared and nothing rotates it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

ISSUER = "escrow-jobs-local"
AUDIENCE = "escrow-api"
ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key is at least the hash size


def _check_secret(secret: str) -> None:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(f"the dev token secret must be at least {MIN_SECRET_BYTES} bytes")


def mint(
    sub: str,
    email: str | None,
    roles: Iterable[str],
    secret: str,
    *,
    ttl_s: int = 3600,
    now: int | None = None,
) -> str:
    """An HS256 token for ``sub`` with ``email`` and ``roles`` (also as ``cognito:groups``)."""
    _check_secret(secret)
    issued = int(time.time()) if now is None else now
    role_list = sorted(set(roles))
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + ttl_s,
        "roles": role_list,
        "cognito:groups": role_list,
    }
    if email:
        claims["email"] = email
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(token: str, secret: str) -> dict[str, Any]:
    """The token's claims after checking signature, expiry, issuer and audience.

    Raises ``jwt.InvalidTokenError`` (a subclass for each reason) when the token fails.
    """
    _check_secret(secret)
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["sub", "exp", "iat"]},
    )
    return claims


@dataclass(frozen=True)
class DevUser:
    role: str
    sub: str
    email: str
    roles: tuple[str, ...]
    token: str


def dev_users(secret: str, *, ttl_s: int) -> dict[str, DevUser]:
    """A buyer, a seller and an admin (role -> user), each with a token signed with ``secret``."""
    users = {}
    for role, sub, roles in (
        ("buyer", "buyer-1", ()),
        ("seller", "seller-1", ()),
        ("admin", "admin-1", ("admin",)),
    ):
        email = f"{role}@example.com"
        token = mint(sub, email, roles, secret, ttl_s=ttl_s)
        users[role] = DevUser(role, sub, email, tuple(roles), token)
    return users
