"""Secret lookup by reference: Powertools parameters in AWS (cached), the environment locally.

A *reference* names a secret; the secret itself never travels in a job payload.

In AWS (``AwsSecretResolver``):

* ``/path/name``, ``ssm:/path/name`` or an ``arn:aws:ssm:`` ARN: an SSM parameter
  (SecureString decrypted);
* anything else (a name or an ``arn:aws:secretsmanager:`` ARN): a Secrets Manager secret;
* a ``#field`` suffix picks one field of a JSON secret (``stripe#api_key``).

Values are cached by Powertools for ``max_age_s`` (default 300 s), so a warm
Lambda does not call SSM or Secrets Manager for every job, and a rotated secret
is picked up within that time.

Locally (``EnvSecretResolver``): the environment variable named by the reference,
else by the reference upper-cased with every other character than ``A-Z0-9``
turned into ``_`` (``partner/acme-webhook`` -> ``PARTNER_ACME_WEBHOOK``).

Errors: ``SecretNotFoundError`` (retrying cannot help until someone creates the
secret) or ``SecretUnavailableError`` (throttled, network: retry later).

Example::

    resolver = EnvSecretResolver({"ACME_WEBHOOK_SECRET": "whsec_..."})
    resolver.get("acme-webhook-secret")  # -> "whsec_..."
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ConfigurationError, JobsCoreError

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider, SSMProvider

__all__ = [
    "AwsSecretResolver",
    "EnvSecretResolver",
    "SecretNotFoundError",
    "SecretResolver",
    "SecretUnavailableError",
    "env_name_for",
]

# Error codes of SSM / Secrets Manager that mean "there is no such secret (for us)".
_NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "ParameterNotFound",
        "ParameterVersionNotFound",
        "AccessDeniedException",
        "AccessDenied",
        "ValidationException",
        "InvalidRequestException",
        "DecryptionFailure",
    }
)


class SecretNotFoundError(ConfigurationError):
    """The reference names no secret we can read; fix the configuration, then replay."""


class SecretUnavailableError(JobsCoreError):
    """The secret store could not answer now (throttling, network); a retry may succeed."""


class SecretResolver(Protocol):
    def get(self, ref: str) -> str:
        """The secret's value; raises ``SecretNotFoundError`` or ``SecretUnavailableError``."""
        ...


def env_name_for(ref: str) -> str:
    """The environment variable name derived from a reference: ``a/b-c`` -> ``A_B_C``."""
    return re.sub(r"[^A-Z0-9]", "_", ref.upper()).strip("_")


def _pick_field(ref: str, value: str, field: str | None) -> str:
    if field is None:
        return value
    try:
        data = json.loads(value)
        picked = data[field]
    except (ValueError, KeyError, TypeError) as exc:
        raise SecretNotFoundError(f"secret {ref!r} has no JSON field {field!r}") from exc
    if not isinstance(picked, str) or not picked:
        raise SecretNotFoundError(f"secret {ref!r} field {field!r} is not a non-empty string")
    return picked


class EnvSecretResolver:
    """Secrets from a mapping (the process environment, passed in); for local work."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)

    def __repr__(self) -> str:  # never show the values
        return f"EnvSecretResolver({len(self._environ)} variables)"

    def get(self, ref: str) -> str:
        name, _, field = ref.partition("#")
        for candidate in (name, env_name_for(name)):
            value = self._environ.get(candidate)
            if value:
                return _pick_field(ref, value, field or None)
        raise SecretNotFoundError(
            f"secret {ref!r} is not set (environment variable {name!r} or {env_name_for(name)!r})"
        )


class AwsSecretResolver:
    """Secrets from SSM Parameter Store or Secrets Manager through Powertools, cached.

    Providers are built on first use (boto3 is imported then, not at import time);
    ``ssm_provider`` / ``secrets_provider`` may be injected. Thread-safe.
    """

    def __init__(
        self,
        *,
        max_age_s: int = 300,
        ssm_provider: SSMProvider | None = None,
        secrets_provider: SecretsProvider | None = None,
    ) -> None:
        self._max_age_s = max_age_s
        self._ssm = ssm_provider
        self._secrets = secrets_provider
        self._lock = threading.Lock()

    def _providers(self) -> tuple[SSMProvider, SecretsProvider]:
        with self._lock:
            if self._ssm is None or self._secrets is None:
                from aws_lambda_powertools.utilities.parameters import (
                    SecretsProvider,
                    SSMProvider,
                )

                self._ssm = self._ssm or SSMProvider()
                self._secrets = self._secrets or SecretsProvider()
            return self._ssm, self._secrets

    def get(self, ref: str) -> str:
        name, _, field = ref.partition("#")
        ssm, secrets = self._providers()
        try:
            value: Any
            if name.startswith("ssm:"):
                value = ssm.get(name[4:], max_age=self._max_age_s, decrypt=True)
            elif name.startswith(("/", "arn:aws:ssm:")):
                value = ssm.get(name, max_age=self._max_age_s, decrypt=True)
            else:
                value = secrets.get(name, max_age=self._max_age_s)
        except Exception as exc:  # Powertools wraps every SDK error in GetParameterError
            raise _classify(ref, exc) from exc
        if isinstance(value, bytes):
            value = value.decode()
        if not isinstance(value, str) or not value:
            raise SecretNotFoundError(f"secret {ref!r} is empty or not text")
        return _pick_field(ref, value, field or None)


def resolver_from_env(environ: Mapping[str, str]) -> SecretResolver:
    """``AwsSecretResolver`` inside Lambda (or with ``SECRETS_SOURCE=aws``), else the env one."""
    source = environ.get("SECRETS_SOURCE", "").strip().lower()
    if not source:
        source = "aws" if environ.get("AWS_LAMBDA_FUNCTION_NAME") else "env"
    if source not in ("aws", "env"):
        raise ConfigurationError("SECRETS_SOURCE must be aws or env")
    return AwsSecretResolver() if source == "aws" else EnvSecretResolver(environ)


def _classify(ref: str, exc: BaseException) -> JobsCoreError:
    """Not found / denied -> ``SecretNotFoundError``; anything else is worth a retry."""
    cause: BaseException | None = exc
    while cause is not None:
        response = getattr(cause, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND_CODES:
                return SecretNotFoundError(f"secret {ref!r} cannot be read: {code}")
            return SecretUnavailableError(f"secret {ref!r} is unavailable: {code or 'error'}")
        cause = cause.__cause__ or cause.__context__
    return SecretUnavailableError(f"secret {ref!r} is unavailable: {type(exc).__name__}")
