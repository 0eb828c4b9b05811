"""The operator token: ``Authorization: Bearer <token>``, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass

from jobs_core import AwsSecretResolver

TOKEN_MAX_AGE_S = 300

Fetch = Callable[[str], str]


class TokenUnavailableError(Exception):
    """The token store (SSM / Secrets Manager) could not be read."""


_AWS_SECRETS = AwsSecretResolver(max_age_s=TOKEN_MAX_AGE_S)  # builds no client until used


def fetch_parameter(name: str) -> str:
    """The token from SSM (names starting with "/", or SSM ARNs) or Secrets Manager,
    through Powertools parameters (cached ``TOKEN_MAX_AGE_S``)."""
    return _AWS_SECRETS.get(name)


@dataclass(frozen=True)
class TokenCheck:
    """Checks ``Authorization: Bearer <token>`` against the configured token."""

    param_name: str | None = None
    local_token: str | None = None
    fetch: Fetch = fetch_parameter

    def expected(self) -> str | None:
        if self.param_name:
            try:
                return self.fetch(self.param_name).strip() or None
            except Exception as exc:
                raise TokenUnavailableError(type(exc).__name__) from exc
        return (self.local_token or "").strip() or None

    def allows(self, authorization: str | None) -> bool:
        expected = self.expected()
        if not expected or not authorization:
            return False  # no token configured: every request is refused
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode(), expected.encode())
