"""The escrow API's settings and the factory that builds its service from them.

The handler calls ``build_service(os.environ)`` once, lazily, through a cached factory;
tests pass their own mapping. Queue settings (``REDIS_URL``, ``UPSTASH_REDIS_REST_*``,
``JOBS_*``) are read by ``jobs_core.Settings.from_env`` from the same mapping.

=============================  =========================================================
variable                       meaning
=============================  =========================================================
``ESCROW_TABLE_NAME``          the DynamoDB table (pk, sk, TTL ``expires_at``); required
``STRIPE_API_KEY``             Stripe secret key (local work)
``STRIPE_API_KEY_REF``         or its Secrets Manager / SSM name (AWS)
``STRIPE_WEBHOOK_SECRET``      the webhook endpoint's signing secret (local work)
``STRIPE_WEBHOOK_SECRET_REF``  or its Secrets Manager / SSM name (AWS)
``STRIPE_API_BASE``            Stripe API base URL (the local Stripe server); default Stripe
``STRIPE_TIMEOUT_S``           read timeout of one Stripe call (default 4; one retry)
``UPSTASH_TOKEN_PARAM``        Secrets Manager name of the Upstash token (AWS)
``JOB_PROCESSOR_FUNCTION_NAME``  the processor to kick (``jobs_core.kick``)
``ESCROW_LOCAL_MODE``          ``1``: allow ``http://localhost`` partner webhook URLs
``ESCROW_ROLES_CLAIM``         the one JWT claim roles are read from (``cognito:groups``)
``ESCROW_ADMIN_EMAIL``         who hears of chargebacks and capture deadlines (optional)
``ESCROW_AUTH_WARNING_S``      how long before the capture deadline the buyer and the
                               admin are warned (default 172800: two days)
``ESCROW_RECONCILE_DAYS``      the reconciler also checks escrows closed this many days
                               ago or less (default 3)
``AWS_ENDPOINT_URL_DYNAMODB``  (boto3's own) a local DynamoDB
=============================  =========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .auth import DEFAULT_ROLES_CLAIM

ENV_TABLE = "ESCROW_TABLE_NAME"
ENV_STRIPE_KEY = "STRIPE_API_KEY"
ENV_STRIPE_KEY_REF = "STRIPE_API_KEY_REF"
ENV_WEBHOOK_SECRET = "STRIPE_WEBHOOK_SECRET"  # noqa: S105 (a variable name)
ENV_WEBHOOK_SECRET_REF = "STRIPE_WEBHOOK_SECRET_REF"  # noqa: S105
ENV_STRIPE_BASE = "STRIPE_API_BASE"
ENV_STRIPE_TIMEOUT = "STRIPE_TIMEOUT_S"
ENV_LOCAL_MODE = "ESCROW_LOCAL_MODE"
ENV_ROLES_CLAIM = "ESCROW_ROLES_CLAIM"
ENV_ADMIN_EMAIL = "ESCROW_ADMIN_EMAIL"
ENV_AUTH_WARNING = "ESCROW_AUTH_WARNING_S"
ENV_RECONCILE_DAYS = "ESCROW_RECONCILE_DAYS"

_TRUE = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True, slots=True)
class ApiConfig:
    table_name: str
    stripe_api_key: str | None = field(default=None, repr=False)
    stripe_api_key_ref: str | None = None
    stripe_webhook_secret: str | None = field(default=None, repr=False)
    stripe_webhook_secret_ref: str | None = None
    stripe_api_base: str | None = None
    stripe_timeout_s: float = 4.0
    local_mode: bool = False
    roles_claim: str = DEFAULT_ROLES_CLAIM
    admin_email: str | None = None
    authorization_warning_s: float = 48 * 3600.0
    reconcile_days: float = 3.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ApiConfig:
        from jobs_core import ConfigurationError

        table = environ.get(ENV_TABLE, "").strip()
        if not table:
            raise ConfigurationError(f"{ENV_TABLE} is not set")

        def number(name: str, default: float) -> float:
            try:
                value = float(environ.get(name) or default)
            except ValueError as exc:
                raise ConfigurationError(f"{name}: {exc}") from exc
            if value < 0:
                raise ConfigurationError(f"{name} must not be negative")
            return value

        timeout = number(ENV_STRIPE_TIMEOUT, 4.0)
        return cls(
            table_name=table,
            stripe_api_key=environ.get(ENV_STRIPE_KEY) or None,
            stripe_api_key_ref=environ.get(ENV_STRIPE_KEY_REF) or None,
            stripe_webhook_secret=environ.get(ENV_WEBHOOK_SECRET) or None,
            stripe_webhook_secret_ref=environ.get(ENV_WEBHOOK_SECRET_REF) or None,
            stripe_api_base=environ.get(ENV_STRIPE_BASE) or None,
            stripe_timeout_s=timeout,
            local_mode=environ.get(ENV_LOCAL_MODE, "").strip().lower() in _TRUE,
            roles_claim=environ.get(ENV_ROLES_CLAIM, "").strip() or DEFAULT_ROLES_CLAIM,
            admin_email=environ.get(ENV_ADMIN_EMAIL, "").strip() or None,
            authorization_warning_s=number(ENV_AUTH_WARNING, 48 * 3600.0),
            reconcile_days=number(ENV_RECONCILE_DAYS, 3.0),
        )
