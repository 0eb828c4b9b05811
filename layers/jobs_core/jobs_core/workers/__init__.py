"""Side-effect workers: email, Stripe, partner webhooks, audit log; each effect once per intent.

The processor needs two names::

    from jobs_core.workers import WorkerDeps, build_handlers

    handlers = build_handlers(WorkerDeps.from_env(os.environ))
    handlers[job.type](job)  # returns, or raises RetryableJobError / PermanentJobError

Modules: ``email`` (SES, Resend, mailbox) with ``email_templates`` and ``money``;
``stripe_effects``; ``webhook`` (Standard Webhooks signing, SSRF guard);
``audit``; ``effects`` (the at-most-once ledger); ``secrets``; ``redact``.
Nothing here imports stripe or boto3 until a handler needs it.
"""

from __future__ import annotations

from ..redact import EmailRedactingFilter, redact_email, redact_text
from .deps import (
    ENV_AUDIT_TABLE_NAME,
    ENV_EFFECTS_TABLE_NAME,
    ENV_EMAIL_FROM,
    ENV_EMAIL_PROVIDER,
    ENV_LOCAL_STATE_DIR,
    ENV_MAILBOX_DIR,
    ENV_RESEND_API_KEY,
    ENV_RESEND_API_KEY_REF,
    ENV_RESEND_API_URL,
    ENV_SECRETS_SOURCE,
    ENV_STRIPE_API_BASE,
    ENV_STRIPE_API_KEY,
    ENV_STRIPE_API_KEY_REF,
    ENV_STRIPE_MAX_NETWORK_RETRIES,
    ENV_WEBHOOK_ALLOW_LOCAL,
    ENV_WEBHOOK_SECRET_PREFIX,
    WorkerDeps,
    deps_from_environ,
)
from .handlers import Handler, build_handlers, webhook_message_id
from .money import format_money
from .stripe_effects import idempotency_key as stripe_idempotency_key

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
    "EmailRedactingFilter",
    "Handler",
    "WorkerDeps",
    "build_handlers",
    "deps_from_environ",
    "format_money",
    "redact_email",
    "redact_text",
    "stripe_idempotency_key",
    "webhook_message_id",
]
