"""Settings, frozen; the only module that reads ``os.environ``.

``Settings.from_env()`` is called by the functions' cached factories, never at
import time, so tests pass their own mapping instead of patching the process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

from .backoff import DEFAULT_RETRY_POLICIES, RetryPolicy
from .errors import ConfigurationError

BackendName = Literal["upstash", "redis", "memory"]

# Environment variable names, kept as constants so docs and tests spell them once.
ENV_BACKEND = "JOBS_BACKEND"
ENV_NAMESPACE = "JOBS_NAMESPACE"
ENV_REDIS_URL = "REDIS_URL"
ENV_REDIS_CLUSTER = "JOBS_REDIS_CLUSTER"
ENV_UPSTASH_URL = "UPSTASH_REDIS_REST_URL"
ENV_UPSTASH_TOKEN = "UPSTASH_REDIS_REST_TOKEN"  # noqa: S105
ENV_UPSTASH_TOKEN_PARAM = "UPSTASH_TOKEN_PARAM"  # noqa: S105 (names the secret holding it)
ENV_KV_URL = "KV_REST_API_URL"  # the original system's names
ENV_KV_TOKEN = "KV_REST_API_TOKEN"  # noqa: S105
ENV_DEDUPE_WINDOW = "JOBS_DEDUPE_WINDOW_S"
ENV_LEGACY_DEDUPE = "JOBS_LEGACY_DEDUPE"
ENV_RETENTION = "JOBS_RETENTION_S"
ENV_MAX_PAYLOAD = "JOBS_MAX_PAYLOAD_BYTES"
ENV_MAX_ATTEMPTS = "JOBS_MAX_ATTEMPTS"
ENV_BACKOFF_BASE = "JOBS_BACKOFF_BASE_S"
ENV_BACKOFF_CAP = "JOBS_BACKOFF_CAP_S"
ENV_LEASE = "JOBS_LEASE_S"
ENV_HTTP_TIMEOUT = "JOBS_REDIS_TIMEOUT_S"
ENV_HTTP_RETRIES = "JOBS_REDIS_RETRIES"
ENV_RETRY_POLICIES = "JOBS_RETRY_POLICIES"
ENV_PARTNER_RATE = "JOBS_PARTNER_RATE_PER_S"
ENV_PARTNER_CONCURRENCY = "JOBS_PARTNER_CONCURRENCY"
ENV_CIRCUIT_FAILURES = "JOBS_CIRCUIT_FAILURES"
ENV_CIRCUIT_OPEN = "JOBS_CIRCUIT_OPEN_S"
ENV_CIRCUIT_OPEN_CAP = "JOBS_CIRCUIT_OPEN_CAP_S"
ENV_LAMBDA = "AWS_LAMBDA_FUNCTION_NAME"
ENV_LOG_STREAM = "AWS_LAMBDA_LOG_STREAM_NAME"  # names the execution environment in Lambda


def default_processor_id() -> str:
    """What a job's history names as the processor that ran an attempt: the Lambda
    execution environment's log stream (where its log lines are), else host:pid."""
    import socket

    return os.environ.get(ENV_LOG_STREAM) or f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the queue needs to know; defaults suit a local run."""

    backend: BackendName = "memory"
    namespace: str = "escrow-jobs"
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    # None: ask the server at connect (INFO cluster); True/False: JOBS_REDIS_CLUSTER says.
    redis_cluster: bool | None = None
    upstash_url: str | None = None
    upstash_token: str | None = field(default=None, repr=False)
    # A job's dedupe key is its record (its id derives from the key): it holds while the
    # job waits, runs or is dead, and as long as its finished record is kept after that.
    dedupe_window_s: int = 3600  # the least time a finished record is kept
    # Also honour the dedupe keys (``{ns}:dedupe:<k>``) of versions before dedupe became the
    # record: on for one dedupe window after upgrading a running queue (one GET a job).
    legacy_dedupe_keys: bool = False
    retention_s: int = 86_400
    max_payload_bytes: int = 65_536
    max_attempts: int = 3
    backoff_base_s: float = 2.0
    backoff_cap_s: float = 300.0
    lease_s: float = 60.0
    # Redis sits on the API's request path: a slow Redis must fail fast, not hang the request.
    request_timeout_s: float = 3.0
    request_retries: int = 2
    # Per job type, over the defaults (webhooks: the Standard Webhooks schedule).
    retry_policies: Mapping[str, RetryPolicy] = field(default_factory=dict)
    # Flow control and health per partner (webhooks), held by the queue's scripts.
    partner_rate_per_s: float = 10.0
    partner_concurrency: int = 4
    circuit_failures: int = 5  # consecutive failed deliveries that open a partner's circuit
    circuit_open_s: float = 30.0  # first open period; doubles while probes fail
    circuit_open_cap_s: float = 900.0
    # Named in each attempt's history; "" means default_processor_id() when the queue starts.
    processor_id: str = ""

    @property
    def finished_ttl_s(self) -> int:
        """How long a finished job's record (and so its dedupe key) is kept."""
        return max(self.retention_s, self.dedupe_window_s)

    def retry_policy(self, job_type: str) -> RetryPolicy:
        """The policy of ``job_type``: configured, else its default, else the queue-wide one."""
        policy = self.retry_policies.get(job_type) or DEFAULT_RETRY_POLICIES.get(job_type)
        if policy is not None:
            return policy
        return _queue_wide_policy(self.max_attempts, self.backoff_base_s, self.backoff_cap_s)

    def __post_init__(self) -> None:
        if self.backend == "upstash" and not (self.upstash_url and self.upstash_token):
            raise ConfigurationError("the upstash backend needs a REST URL and a token")
        if self.backend == "redis" and not self.redis_url:
            raise ConfigurationError("the redis backend needs REDIS_URL")
        if self.backend == "redis" and self.redis_url:
            check_redis_url(self.redis_url)
        if not self.namespace or any(c in self.namespace for c in "{}| "):
            raise ConfigurationError(f"invalid namespace {self.namespace!r}")
        for name in ("dedupe_window_s", "retention_s", "max_payload_bytes", "max_attempts"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name} must be at least 1")
        if self.lease_s <= 0 or self.backoff_base_s < 0 or self.backoff_cap_s < 0:
            raise ConfigurationError("lease and backoff settings must be positive")
        if self.partner_rate_per_s <= 0 or self.partner_concurrency < 1:
            raise ConfigurationError("partner rate and concurrency must be positive")
        if self.circuit_failures < 1 or not 0 < self.circuit_open_s <= self.circuit_open_cap_s:
            raise ConfigurationError("circuit settings must be positive (open <= cap)")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        resolve_secret: Callable[[str], str] | None = None,
    ) -> Settings:
        """Read settings from the environment.

        The backend is ``JOBS_BACKEND`` when set; otherwise Upstash when its
        URL and token are present, then ``REDIS_URL``; outside Lambda the
        embedded in-memory Redis. Inside Lambda with no Redis configured this
        raises ``ConfigurationError``: a silent in-memory queue would lose jobs.

        In AWS the Upstash token is not an environment value: ``UPSTASH_TOKEN_PARAM``
        names its secret, read through ``resolve_secret`` (default: Secrets Manager or
        SSM via Powertools inside Lambda, the environment elsewhere; see ``secret_refs``).
        """
        env = os.environ if environ is None else environ
        upstash_url = env.get(ENV_UPSTASH_URL) or env.get(ENV_KV_URL)
        upstash_token = env.get(ENV_UPSTASH_TOKEN) or env.get(ENV_KV_TOKEN)
        token_ref = env.get(ENV_UPSTASH_TOKEN_PARAM)
        explicit = env.get(ENV_BACKEND, "").strip().lower()
        # A deploy on another Redis (JOBS_BACKEND=redis) never reads the Upstash secret.
        if upstash_url and token_ref and not upstash_token and explicit in ("", "upstash"):
            if resolve_secret is None:
                from .secret_refs import resolver_from_env

                resolve_secret = resolver_from_env(env).get
            upstash_token = resolve_secret(token_ref).strip()
        redis_url = env.get(ENV_REDIS_URL)
        redis_cluster = _tristate(ENV_REDIS_CLUSTER, env.get(ENV_REDIS_CLUSTER, ""))
        backend: BackendName
        if explicit in ("upstash", "redis", "memory"):
            backend = explicit  # type: ignore[assignment]
        elif explicit:
            raise ConfigurationError(
                f"{ENV_BACKEND} must be upstash, redis or memory, not {explicit!r}"
            )
        elif upstash_url and upstash_token:
            backend = "upstash"
        elif redis_url:
            backend = "redis"
        else:
            backend = "memory"
        if backend == "memory" and env.get(ENV_LAMBDA):
            raise ConfigurationError(
                "no Redis configured inside Lambda: set UPSTASH_REDIS_REST_URL/"
                "UPSTASH_REDIS_REST_TOKEN or REDIS_URL"
            )
        d = cls()  # the defaults (slotted dataclasses keep none on the class)
        try:
            return cls(
                backend=backend,
                namespace=env.get(ENV_NAMESPACE, d.namespace),
                redis_url=redis_url,
                redis_cluster=redis_cluster,
                upstash_url=upstash_url,
                upstash_token=upstash_token,
                dedupe_window_s=int(env.get(ENV_DEDUPE_WINDOW, d.dedupe_window_s)),
                legacy_dedupe_keys=bool(
                    _tristate(ENV_LEGACY_DEDUPE, env.get(ENV_LEGACY_DEDUPE, "false"))
                ),
                retention_s=int(env.get(ENV_RETENTION, d.retention_s)),
                max_payload_bytes=int(env.get(ENV_MAX_PAYLOAD, d.max_payload_bytes)),
                max_attempts=int(env.get(ENV_MAX_ATTEMPTS, d.max_attempts)),
                backoff_base_s=float(env.get(ENV_BACKOFF_BASE, d.backoff_base_s)),
                backoff_cap_s=float(env.get(ENV_BACKOFF_CAP, d.backoff_cap_s)),
                lease_s=float(env.get(ENV_LEASE, d.lease_s)),
                request_timeout_s=float(env.get(ENV_HTTP_TIMEOUT, d.request_timeout_s)),
                request_retries=int(env.get(ENV_HTTP_RETRIES, d.request_retries)),
                retry_policies=parse_retry_policies(env.get(ENV_RETRY_POLICIES, "")),
                partner_rate_per_s=float(env.get(ENV_PARTNER_RATE, d.partner_rate_per_s)),
                partner_concurrency=int(env.get(ENV_PARTNER_CONCURRENCY, d.partner_concurrency)),
                circuit_failures=int(env.get(ENV_CIRCUIT_FAILURES, d.circuit_failures)),
                circuit_open_s=float(env.get(ENV_CIRCUIT_OPEN, d.circuit_open_s)),
                circuit_open_cap_s=float(env.get(ENV_CIRCUIT_OPEN_CAP, d.circuit_open_cap_s)),
                processor_id=env.get(ENV_LOG_STREAM, ""),
            )
        except ValueError as exc:
            raise ConfigurationError(f"invalid numeric setting: {exc}") from exc


@cache
def _queue_wide_policy(max_attempts: int, base_s: float, cap_s: float) -> RetryPolicy:
    return RetryPolicy(max_attempts, base_s=base_s, cap_s=cap_s)  # once, not per enqueue


def parse_retry_policies(raw: str) -> dict[str, RetryPolicy]:
    """``JOBS_RETRY_POLICIES``: a JSON object of job type -> policy fields, e.g.
    ``{"stripe_capture_payment": {"max_attempts": 5, "base_s": 1, "cap_s": 60},
    "webhook_escrow_status_changed": {"max_attempts": 4, "schedule_s": [5, 60, 600]}}``.
    """
    if not raw.strip():
        return {}
    from .models import JobType

    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{ENV_RETRY_POLICIES} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{ENV_RETRY_POLICIES} must be a JSON object")
    known = {t.value for t in JobType}
    policies: dict[str, RetryPolicy] = {}
    for job_type, fields in data.items():
        if job_type not in known:
            raise ConfigurationError(f"{ENV_RETRY_POLICIES}: unknown job type {job_type!r}")
        policies[job_type] = _policy(job_type, fields)
    return policies


def _policy(job_type: str, fields: Any) -> RetryPolicy:
    allowed = {"max_attempts", "base_s", "cap_s", "schedule_s", "jitter"}
    if not isinstance(fields, dict) or "max_attempts" not in fields or set(fields) - allowed:
        raise ConfigurationError(
            f"{ENV_RETRY_POLICIES}.{job_type}: an object with max_attempts and any of "
            "base_s, cap_s, schedule_s, jitter"
        )
    try:
        values = {**fields, "schedule_s": tuple(float(d) for d in fields.get("schedule_s", ()))}
        return RetryPolicy(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{ENV_RETRY_POLICIES}.{job_type}: {exc}") from None


_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _tristate(name: str, raw: str) -> bool | None:
    """``true``/``false`` (and 1/0, yes/no, on/off); empty or ``auto`` is None."""
    value = raw.strip().lower()
    if value in ("", "auto"):
        return None
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise ConfigurationError(f"{name} must be true, false or auto, not {raw!r}")


REDIS_SCHEMES = ("redis", "rediss", "unix")


def check_redis_url(url: str) -> None:
    """``ConfigurationError`` unless ``url`` is a Redis URL redis-py can connect with.

    The message never repeats the URL: it may carry a password.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in REDIS_SCHEMES:
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise ConfigurationError(
            f"REDIS_URL must start with redis://, rediss:// or unix:// (it has {shown})"
        )
    try:
        parts.port  # noqa: B018 (raises for a port that is not a number in range)
    except ValueError as exc:
        raise ConfigurationError(f"REDIS_URL has an invalid port: {exc}") from None
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigurationError("REDIS_URL names no host, e.g. redis://localhost:6379/0")
    if parts.scheme == "unix" and not parts.path:
        raise ConfigurationError("REDIS_URL names no socket path, e.g. unix:///run/redis.sock")


def tracing_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """X-Ray tracing is on inside Lambda (``LAMBDA_TASK_ROOT``), unless disabled by
    ``POWERTOOLS_TRACE_DISABLED`` or under ``sam local`` (Powertools' own rules)."""
    env = os.environ if environ is None else environ
    disabled = env.get("POWERTOOLS_TRACE_DISABLED", "").strip().lower() in (
        "1",
        "true",
        "yes",
        "on",
    )
    return bool(env.get("LAMBDA_TASK_ROOT")) and not env.get("AWS_SAM_LOCAL") and not disabled
