"""What the handlers need, built lazily: clients, stores, secrets, the clock.

``WorkerDeps.from_env(environ)`` reads the variables below from the mapping it
is given (never from ``os.environ`` itself). Nothing is built, imported or
looked up until a handler asks for it: a processor that only runs audit jobs
never imports stripe, and one that only sends emails never builds a Stripe
client. Every accessor is thread-safe; every field can be injected (tests).

=========================  ==============================================================
``EMAIL_PROVIDER``          ``ses`` | ``resend`` | ``mailbox`` (default ``mailbox``)
``EMAIL_FROM``              sender, e.g. ``Escrow <no-reply@example.com>`` (required in AWS)
``RESEND_API_KEY_REF``      secret reference of the Resend API key (``RESEND_API_KEY`` wins)
``RESEND_API_URL``          default ``https://api.resend.com``
``MAILBOX_DIR``             local mailbox directory (default ``.local/mailbox``)
``STRIPE_API_KEY_REF``      secret reference of the Stripe key (``STRIPE_API_KEY`` wins)
``STRIPE_API_BASE``         another Stripe API base URL (the local stand-in)
``STRIPE_MAX_NETWORK_RETRIES``  the SDK's own retries per job attempt (default 1)
``AUDIT_TABLE_NAME``        DynamoDB audit table (required in AWS; else files)
``EFFECTS_TABLE_NAME``      DynamoDB effect ledger (required in AWS; else files)
``WEBHOOK_ALLOW_LOCAL``     ``1``: http and loopback webhook URLs allowed (local work)
``WEBHOOK_SECRET_PREFIX``   prefix of partner webhook secret names (``partner-webhooks/``):
                            a payload's ``webhook_secret_ref`` is looked up under it, so a
                            payload cannot name any other secret
``SECRETS_SOURCE``          ``aws`` | ``env``; default ``aws`` inside Lambda, else ``env``
``LOCAL_STATE_DIR``         where local ledger and audit files go (default ``.local``)
``AWS_ENDPOINT_URL``        honoured by boto3 itself (moto server, LocalStack)
=========================  ==============================================================

Example::

    deps = WorkerDeps.from_env(os.environ)
    handlers = build_handlers(deps)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import httpx

from ..clock import Clock, SystemClock
from ..errors import ConfigurationError
from ..secret_refs import AwsSecretResolver, EnvSecretResolver, SecretResolver
from .audit import AuditLog, DynamoAuditLog, FileAuditLog
from .effects import DynamoEffectLedger, EffectLedger, FileEffectLedger
from .email import (
    DEFAULT_RESEND_API_URL,
    EmailProvider,
    MailboxEmailProvider,
    ResendEmailProvider,
    SesEmailProvider,
)
from .stripe_effects import build_stripe_client
from .webhook import Resolver, WebhookSender, system_resolver

if TYPE_CHECKING:
    import stripe

__all__ = [
    "ENV_AUDIT_TABLE_NAME",
    "ENV_EFFECTS_TABLE_NAME",
    "ENV_EMAIL_FROM",
    "ENV_EMAIL_PROVIDER",
    "ENV_LOCAL_STATE_DIR",
    "ENV_MAILBOX_DIR",
    "ENV_RESEND_API_KEY",
    "ENV_RESEND_API_KEY_REF",
    "ENV_RESEND_API_URL",
    "ENV_SECRETS_SOURCE",
    "ENV_STRIPE_API_BASE",
    "ENV_STRIPE_API_KEY",
    "ENV_STRIPE_API_KEY_REF",
    "ENV_STRIPE_MAX_NETWORK_RETRIES",
    "ENV_WEBHOOK_ALLOW_LOCAL",
    "ENV_WEBHOOK_SECRET_PREFIX",
    "WorkerDeps",
    "deps_from_environ",
]

ENV_EMAIL_PROVIDER = "EMAIL_PROVIDER"
ENV_EMAIL_FROM = "EMAIL_FROM"
ENV_RESEND_API_KEY_REF = "RESEND_API_KEY_REF"
ENV_RESEND_API_KEY = "RESEND_API_KEY"
ENV_RESEND_API_URL = "RESEND_API_URL"
ENV_MAILBOX_DIR = "MAILBOX_DIR"
ENV_STRIPE_API_KEY_REF = "STRIPE_API_KEY_REF"
ENV_STRIPE_API_KEY = "STRIPE_API_KEY"
ENV_STRIPE_API_BASE = "STRIPE_API_BASE"
ENV_STRIPE_MAX_NETWORK_RETRIES = "STRIPE_MAX_NETWORK_RETRIES"
ENV_AUDIT_TABLE_NAME = "AUDIT_TABLE_NAME"
ENV_EFFECTS_TABLE_NAME = "EFFECTS_TABLE_NAME"
ENV_WEBHOOK_ALLOW_LOCAL = "WEBHOOK_ALLOW_LOCAL"
ENV_WEBHOOK_SECRET_PREFIX = "WEBHOOK_SECRET_PREFIX"  # noqa: S105 (a variable name)
ENV_SECRETS_SOURCE = "SECRETS_SOURCE"
ENV_LOCAL_STATE_DIR = "LOCAL_STATE_DIR"
ENV_LAMBDA = "AWS_LAMBDA_FUNCTION_NAME"

EmailProviderName = Literal["ses", "resend", "mailbox"]
LOCAL_SENDER = "Escrow <no-reply@escrow.local>"

T = TypeVar("T")


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{name} must be 1 or 0, not {value!r}")


@dataclass(eq=False)
class WorkerDeps:
    """Configuration plus lazily built clients. See the module docstring for the variables."""

    email_provider: EmailProviderName = "mailbox"
    email_from: str | None = None
    mailbox_dir: Path = Path(".local/mailbox")
    local_state_dir: Path = Path(".local")
    resend_api_url: str = DEFAULT_RESEND_API_URL
    resend_api_key: str | None = field(default=None, repr=False)
    resend_api_key_ref: str | None = None
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_api_key_ref: str | None = None
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = 1
    audit_table_name: str | None = None
    effects_table_name: str | None = None
    webhook_allow_local: bool = False
    webhook_secret_prefix: str = ""
    in_lambda: bool = False
    secrets_source: Literal["aws", "env"] = "env"
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    clock: Clock = field(default_factory=SystemClock)
    webhook_resolver: Resolver = system_resolver

    # Injectable parts; None means "build on first use".
    ses_client: Any = field(default=None, repr=False)
    dynamodb_client: Any = field(default=None, repr=False)
    http_client: httpx.Client | None = field(default=None, repr=False)
    stripe_client: stripe.StripeClient | None = field(default=None, repr=False)
    secret_resolver: SecretResolver | None = field(default=None, repr=False)
    effect_ledger: EffectLedger | None = field(default=None, repr=False)
    audit_log: AuditLog | None = field(default=None, repr=False)
    email_backend: EmailProvider | None = field(default=None, repr=False)
    webhook_sender: WebhookSender | None = field(default=None, repr=False)

    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _boto_session: Any = field(default=None, init=False, repr=False)
    _stripe_built: tuple[str, stripe.StripeClient] | None = field(
        default=None, init=False, repr=False
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> WorkerDeps:
        """Configuration from ``environ`` (pass ``os.environ``); builds nothing."""
        env = dict(environ)
        provider = env.get(ENV_EMAIL_PROVIDER, "mailbox").strip().lower() or "mailbox"
        if provider not in ("ses", "resend", "mailbox"):
            raise ConfigurationError(f"{ENV_EMAIL_PROVIDER} must be ses, resend or mailbox")
        in_lambda = bool(env.get(ENV_LAMBDA))
        source = env.get(ENV_SECRETS_SOURCE, "").strip().lower() or ("aws" if in_lambda else "env")
        if source not in ("aws", "env"):
            raise ConfigurationError(f"{ENV_SECRETS_SOURCE} must be aws or env")
        retries = env.get(ENV_STRIPE_MAX_NETWORK_RETRIES, "1")
        if not retries.isdigit():
            raise ConfigurationError(f"{ENV_STRIPE_MAX_NETWORK_RETRIES} must be a whole number")
        state_dir = Path(env.get(ENV_LOCAL_STATE_DIR) or ".local")
        return cls(
            email_provider=cast(EmailProviderName, provider),
            email_from=env.get(ENV_EMAIL_FROM) or None,
            mailbox_dir=Path(env.get(ENV_MAILBOX_DIR) or state_dir / "mailbox"),
            local_state_dir=state_dir,
            resend_api_url=env.get(ENV_RESEND_API_URL) or DEFAULT_RESEND_API_URL,
            resend_api_key=env.get(ENV_RESEND_API_KEY) or None,
            resend_api_key_ref=env.get(ENV_RESEND_API_KEY_REF) or None,
            stripe_api_key=env.get(ENV_STRIPE_API_KEY) or None,
            stripe_api_key_ref=env.get(ENV_STRIPE_API_KEY_REF) or None,
            stripe_api_base=env.get(ENV_STRIPE_API_BASE) or None,
            stripe_max_network_retries=int(retries),
            audit_table_name=env.get(ENV_AUDIT_TABLE_NAME) or None,
            effects_table_name=env.get(ENV_EFFECTS_TABLE_NAME) or None,
            webhook_allow_local=_flag(env, ENV_WEBHOOK_ALLOW_LOCAL),
            webhook_secret_prefix=env.get(ENV_WEBHOOK_SECRET_PREFIX, ""),
            in_lambda=in_lambda,
            secrets_source=cast(Literal["aws", "env"], source),
            environ=env,
        )

    # --- lazily built parts ---------------------------------------------------------

    def _lazy(self, attr: str, build: Callable[[], T]) -> T:
        value = getattr(self, attr)
        if value is None:
            with self._lock:
                value = getattr(self, attr)
                if value is None:
                    value = build()
                    setattr(self, attr, value)
        return cast(T, value)

    def _boto_client(self, service: str) -> Any:
        with self._lock:
            if self._boto_session is None:
                import boto3

                self._boto_session = boto3.session.Session()
            from botocore.config import Config

            return self._boto_session.client(
                service,
                config=Config(
                    connect_timeout=5,
                    read_timeout=15,
                    retries={"mode": "standard", "max_attempts": 3},
                ),
            )

    def ses(self) -> Any:
        """The boto3 ``sesv2`` client."""
        return self._lazy("ses_client", lambda: self._boto_client("sesv2"))

    def dynamodb(self) -> Any:
        """The boto3 ``dynamodb`` client (low-level: thread-safe, unlike resources)."""
        return self._lazy("dynamodb_client", lambda: self._boto_client("dynamodb"))

    def http(self) -> httpx.Client:
        """The pooled httpx client for provider APIs (Resend); not used for webhooks."""
        return self._lazy(
            "http_client",
            lambda: httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0), follow_redirects=False),
        )

    def secrets(self) -> SecretResolver:
        def build() -> SecretResolver:
            if self.secrets_source == "aws":
                return AwsSecretResolver()
            return EnvSecretResolver(self.environ)

        return self._lazy("secret_resolver", build)

    def stripe(self) -> stripe.StripeClient:
        """The Stripe client; rebuilt when the key behind ``STRIPE_API_KEY_REF`` rotates."""
        if self.stripe_client is not None:
            return self.stripe_client
        key = self.stripe_api_key
        if key is None:
            if not self.stripe_api_key_ref:
                raise ConfigurationError(f"set {ENV_STRIPE_API_KEY_REF} or {ENV_STRIPE_API_KEY}")
            key = self.secrets().get(self.stripe_api_key_ref)
        with self._lock:
            if self._stripe_built is None or self._stripe_built[0] != key:
                client = build_stripe_client(
                    key,
                    api_base=self.stripe_api_base,
                    max_network_retries=self.stripe_max_network_retries,
                )
                self._stripe_built = (key, client)
            return self._stripe_built[1]

    def ledger(self) -> EffectLedger:
        def build() -> EffectLedger:
            if self.effects_table_name:
                return DynamoEffectLedger(self.dynamodb(), self.effects_table_name)
            if self.in_lambda:
                raise ConfigurationError(f"{ENV_EFFECTS_TABLE_NAME} is required in Lambda")
            return FileEffectLedger(self.local_state_dir / "effects")

        return self._lazy("effect_ledger", build)

    def audit(self) -> AuditLog:
        def build() -> AuditLog:
            if self.audit_table_name:
                return DynamoAuditLog(self.dynamodb(), self.audit_table_name)
            if self.in_lambda:
                raise ConfigurationError(f"{ENV_AUDIT_TABLE_NAME} is required in Lambda")
            return FileAuditLog(self.local_state_dir / "audit")

        return self._lazy("audit_log", build)

    def sender_address(self) -> str:
        if self.email_from:
            return self.email_from
        if self.email_provider == "mailbox":
            return LOCAL_SENDER
        raise ConfigurationError(f"{ENV_EMAIL_FROM} is required with {self.email_provider}")

    def mailer(self) -> EmailProvider:
        def build() -> EmailProvider:
            if self.email_provider == "ses":
                return SesEmailProvider(self.ses)
            if self.email_provider == "resend":
                return ResendEmailProvider(
                    self.http, api_key=self._resend_key, api_url=self.resend_api_url
                )
            if self.in_lambda:
                raise ConfigurationError("the mailbox email provider is for local work only")
            return MailboxEmailProvider(self.mailbox_dir)

        return self._lazy("email_backend", build)

    def _resend_key(self) -> str:
        if self.resend_api_key:
            return self.resend_api_key
        if not self.resend_api_key_ref:
            raise ConfigurationError(f"set {ENV_RESEND_API_KEY_REF} or {ENV_RESEND_API_KEY}")
        return self.secrets().get(self.resend_api_key_ref)

    def webhook_secret(self, ref: str) -> str:
        """A partner's signing secret; ``ref`` is looked up under ``WEBHOOK_SECRET_PREFIX``."""
        prefix = self.webhook_secret_prefix
        if prefix and (".." in ref or ref.startswith(("/", "arn:", "ssm:", "#"))):
            raise ConfigurationError(f"webhook secret reference {ref!r} must be a plain name")
        name = ref if not prefix or ref.startswith(prefix) else prefix + ref
        return self.secrets().get(name)

    def webhooks(self) -> WebhookSender:
        return self._lazy(
            "webhook_sender",
            lambda: WebhookSender(
                allow_local=self.webhook_allow_local, resolver=self.webhook_resolver
            ),
        )


def deps_from_environ(environ: Mapping[str, str] | None = None) -> WorkerDeps:
    """``WorkerDeps.from_env`` of ``environ``, or of the process environment when None.

    The processor's entry point (``processor.default_handlers``) calls this.
    """
    if environ is None:
        import os

        environ = os.environ
    return WorkerDeps.from_env(environ)
