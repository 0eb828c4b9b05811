"""Dev tokens: what mint signs, verify accepts; everything else is refused."""

from __future__ import annotations

import time

import jwt
import pytest
from escrow.auth import caller_from_claims
from local_stack.dev_tokens import mint, verify

SECRET = "local-dev-secret-0123456789abcdef0123"


def test_mint_then_verify_gives_claims_the_handler_understands() -> None:
    token = mint("user-1", "user1@example.com", ["admin", "admin"], SECRET)
    claims = verify(token, SECRET)
    assert claims["sub"] == "user-1"
    assert claims["email"] == "user1@example.com"
    assert claims["roles"] == ["admin"]
    assert claims["cognito:groups"] == ["admin"]
    assert caller_from_claims(claims).is_admin


def test_wrong_secret_expired_and_tampered_tokens_are_refused() -> None:
    token = mint("user-1", None, [], SECRET)
    with pytest.raises(jwt.InvalidSignatureError):
        verify(token, SECRET + "x")
    old = mint("user-1", None, [], SECRET, ttl_s=60, now=int(time.time()) - 3600)
    with pytest.raises(jwt.ExpiredSignatureError):
        verify(old, SECRET)
    head, body, sig = token.split(".")
    with pytest.raises(jwt.InvalidTokenError):
        verify(f"{head}.{body}x.{sig}", SECRET)


def test_tokens_of_another_issuer_or_algorithm_are_refused() -> None:
    now = int(time.time())
    other = jwt.encode(
        {"sub": "u", "iss": "someone-else", "aud": "escrow-api", "iat": now, "exp": now + 60},
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(jwt.InvalidIssuerError):
        verify(other, SECRET)
    unsigned = jwt.encode({"sub": "u"}, None, algorithm="none")
    with pytest.raises(jwt.InvalidTokenError):
        verify(unsigned, SECRET)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        mint("u", None, [], "short")
