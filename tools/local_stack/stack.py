"""The whole system on one machine, in one process: ``python -m local_stack``.

``make dev`` runs this. On embedded defaults it starts, in this process:

- Redis: a ``redis-server`` child on a free port when the binary is on PATH, else the
  embedded in-memory Redis; with ``REDIS_URL``, the Upstash variables or ``JOBS_BACKEND``
  set, that Redis instead;
- AWS from an in-process moto server (``aws``): DynamoDB, Secrets Manager, SES and
  CloudWatch, which receives the EMF metrics the processor and the monitor print;
- the local Stripe server (``stripe_server``);
- the HTTP API on http://127.0.0.1:3000 (``http_gateway``): the template's routes, the
  same handlers, HTTP API v2 events, dev tokens verified like API Gateway's JWT
  authorizer; plus the Lambda Invoke API, so the API's kick reaches the processor, and
  a few local-only routes (``local_routes``);
- the functions and their schedules (``functions``);

and sets the environment the handlers read: the functions' variables from the template,
with local values where AWS ones cannot work (mailbox email in ``.local/mailbox``, the
moto endpoint, table names, the local Stripe base). It prints a dev token for a buyer,
a seller and an admin, and ``curl`` commands for one escrow's life (``banner``);
``.local/stack.json`` holds the same for scripts. ``stop()`` stops everything: the
gateway, the schedules (their threads joined), the servers, the redis-server child.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from . import dev_tokens, emf
from .aws import LocalAws, stack_secrets
from .banner import banner_text
from .config import (
    AWS_DROPPED,
    DEMO_PARTNER_REF,
    DEV_TOKEN_TTL_S,
    NOT_SHARED,
    REPO_ROOT,
    STACK_NAME,
    STRIPE_API_KEY,
    TUNABLE,
    StackConfig,
)
from .dev_tokens import DevUser
from .emf import say
from .functions import FunctionHost
from .http_gateway import HttpGateway
from .local_routes import LocalRoutes
from .redis_process import RedisProcess, redis_server_binary
from .stripe_server import StripeServer
from .template import REGION, Template

log = logging.getLogger("local_stack.stack")


class LocalStack:
    """Start with ``start()``, stop with ``stop()``; ``info()`` says where everything is.

    ``environ`` is the mapping the handlers read (``os.environ`` when run as a program:
    the functions' cached factories read it on first use).
    """

    def __init__(
        self, config: StackConfig, environ: MutableMapping[str, str] | None = None
    ) -> None:
        self.config = config
        self.environ: MutableMapping[str, str] = os.environ if environ is None else environ
        self.template = Template.load(config.template_path, stack_name=STACK_NAME)
        self.redis: RedisProcess | None = None
        self._function_env: dict[str, str] = {}
        self.aws = LocalAws()
        self.stripe: StripeServer | None = None
        self.gateway: HttpGateway | None = None
        self.functions = FunctionHost(self.template)
        self.local_routes = LocalRoutes(self)
        self.users: dict[str, DevUser] = {}
        self.backend = "memory"
        self.redis_url: str | None = None
        self.table_names: dict[str, str] = {}
        self.secret_values: dict[str, str] = {}
        self._jwt_secret = ""
        self._lock = threading.Lock()
        self._stopped = False

    # -- start --------------------------------------------------------------------------

    def start(self) -> LocalStack:
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))  # functions.*
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self._start_redis()
        self.gateway = HttpGateway(
            self.functions.routes(),
            authorizer=self._verify_token,
            host=self.config.host,
            port=self.config.port,
            local_routes=self.local_routes.handlers(),
            lambda_invoke=self.functions.lambda_invoke,
            api_id=STACK_NAME,
        ).bind()
        self.aws.start()
        self.stripe = StripeServer(STRIPE_API_KEY).start()
        self._apply_environment()
        self.secret_values = stack_secrets(self.environ)
        self.aws.create_resources(self.template.tables(), self.table_names, self.secret_values)
        self.functions.forwarder = emf.CloudWatchForwarder(self.aws.client("cloudwatch"))
        self._mint_tokens()
        self.functions.load(self.environ)
        self.functions.start(
            process_every_s=self.config.process_every_s,
            monitor_every_s=self.config.monitor_every_s,
        )
        self.gateway.start()
        self._write_sam_env()
        self._write_info()  # last: its presence says the stack is up
        return self

    def _start_redis(self) -> None:
        env = self.environ
        if env.get("JOBS_BACKEND") or env.get("REDIS_URL") or env.get("UPSTASH_REDIS_REST_URL") \
                or env.get("KV_REST_API_URL"):  # fmt: skip
            from jobs_core import Settings

            settings = Settings.from_env(env)
            self.backend = settings.backend
            self.redis_url = settings.redis_url if settings.backend == "redis" else None
            _check_reachable(settings)
            say(f"redis: using the configured {settings.backend} backend")
            return
        if redis_server_binary():
            self.redis = RedisProcess().start()
            self.backend, self.redis_url = "redis", self.redis.url
            say(f"redis: started redis-server (pid {self.redis.pid}) at {self.redis.url}")
        else:
            self.backend = "memory"
            say("redis: no redis-server on PATH: using the embedded in-memory Redis")

    def _apply_environment(self) -> None:
        assert self.gateway is not None and self.stripe is not None
        env = self.environ
        for name in AWS_DROPPED:
            env.pop(name, None)
        user = dict(env)
        self.table_names = {
            logical: f"{STACK_NAME}-{logical}" for logical in self.template.tables()
        }
        state = self.config.state_dir.resolve()
        computed = self.template.environment(self.table_names, skip=NOT_SHARED)
        computed.update(
            {
                "AWS_ENDPOINT_URL": self.aws.endpoint,
                "AWS_ENDPOINT_URL_LAMBDA": f"http://{self.config.host}:{self.gateway.port}",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "STRIPE_API_BASE": self.stripe.url,
                "SECRETS_SOURCE": "aws",
                "EMAIL_PROVIDER": "mailbox",
                "MAILBOX_DIR": str(state / "mailbox"),
                "LOCAL_STATE_DIR": str(state),
                "WEBHOOK_ALLOW_LOCAL": "1",
                "ESCROW_LOCAL_MODE": "1",
                "JOBS_KICK_ENABLED": "true",
                "JOB_PROCESSOR_IDLE_EXIT_S": "1",
                "POWERTOOLS_LOG_LEVEL": self.config.log_level,
                "POWERTOOLS_DEV": "false",
            }
        )
        computed.pop("JOBS_BACKEND", None)
        if self.redis is not None:
            computed["REDIS_URL"] = self.redis.url
            computed["JOBS_BACKEND"] = "redis"
        elif self.backend == "memory" and not user.get("JOBS_BACKEND"):
            computed["JOBS_BACKEND"] = "memory"
        for name in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "JOB_PROCESSOR_SECRET_TOKEN"):
            env.pop(name, None)  # the stack's secrets are in (moto's) Secrets Manager
        for name, value in computed.items():
            if name in TUNABLE and user.get(name):
                continue
            env[name] = value
        self._function_env = {k: env[k] for k in computed if k in env}

    def _mint_tokens(self) -> None:
        self._jwt_secret = self.environ.get("ESCROW_DEV_JWT_SECRET") or secrets.token_urlsafe(48)
        self.users = dev_tokens.dev_users(self._jwt_secret, ttl_s=DEV_TOKEN_TTL_S)

    def _verify_token(self, token: str) -> Mapping[str, Any]:
        return dev_tokens.verify(token, self._jwt_secret)

    # -- what to tell the developer ----------------------------------------------------

    def info(self) -> dict[str, Any]:
        assert self.gateway is not None
        env = self.environ
        return {
            "pid": os.getpid(),
            "apiUrl": self.gateway.url,
            "backend": self.backend,
            "redisUrl": self.redis_url,
            "redisPid": self.redis.pid if self.redis is not None else None,
            "namespace": env.get("JOBS_NAMESPACE", "escrow-jobs"),
            "awsEndpoint": self.aws.endpoint,
            "region": REGION,
            "tables": dict(self.table_names),
            "tableEnv": {
                name: env[name]
                for name in ("ESCROW_TABLE_NAME", "AUDIT_TABLE_NAME", "EFFECTS_TABLE_NAME")
                if name in env
            },
            "stripeApiBase": self.stripe.url if self.stripe else None,
            "mailboxDir": env.get("MAILBOX_DIR"),
            "stateDir": str(self.config.state_dir.resolve()),
            "webhookSecretPrefix": env.get("WEBHOOK_SECRET_PREFIX", ""),
            "demoPartner": {
                "webhookUrl": f"{self.gateway.url}/_local/partner/webhooks",
                "webhookSecretRef": DEMO_PARTNER_REF,
            },
            "processorToken": self.secret_values.get(env.get("JOB_PROCESSOR_TOKEN_PARAM", "")),
            "users": {
                role: {"sub": u.sub, "email": u.email, "roles": list(u.roles), "token": u.token}
                for role, u in self.users.items()
            },
        }

    def _write_info(self) -> None:
        path = self.config.info_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds dev tokens
        with os.fdopen(fd, "w") as f:
            json.dump(self.info(), f, indent=2)
        os.replace(tmp, path)

    def _write_sam_env(self) -> None:
        """``.local/sam-env.json`` for ``sam local invoke --env-vars``: each function's
        variables as this stack runs it (its Redis, moto, local Stripe; reachable from the
        container with ``--docker-network host``)."""
        env = {logical: dict(self._function_env) for logical in self.template.functions()}
        path = self.config.state_dir / "sam-env.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(env, f, indent=2, sort_keys=True)

    def banner(self) -> str:
        return banner_text(self.info(), process_every_s=self.config.process_every_s)

    # -- stop ---------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop in reverse order; safe to call twice and after a failed start."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        steps: list[tuple[str, Callable[[], None]]] = []
        if self.gateway is not None:
            steps.append(("gateway", self.gateway.stop))
        steps.append(("schedules", self.functions.scheduler.stop))
        steps.append(("stdout", self.functions.restore_stdout))
        if self.stripe is not None:
            steps.append(("stripe", self.stripe.stop))
        steps.append(("moto", self.aws.stop))
        if self.redis is not None:
            steps.append(("redis-server", self.redis.stop))
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)
        with contextlib.suppress(OSError):
            self.config.info_path.unlink()


class RedisUnreachableError(RuntimeError):
    """The Redis the environment names does not answer: the stack refuses to start."""


def _check_reachable(settings: Any) -> None:
    """One read of the configured queue; refuse to start on a Redis that does not answer
    (a ``REDIS_URL`` left from a stopped stack would otherwise fail every 2 s)."""
    from jobs_core import BackendError, JobQueue

    if settings.backend == "memory":
        return
    queue = JobQueue.from_settings(settings)
    try:
        queue.get_queue_stats()
    except BackendError as exc:
        where = "REDIS_URL" if settings.backend == "redis" else "UPSTASH_REDIS_REST_URL"
        raise RedisUnreachableError(
            f"{where} ({_where(settings)}) does not answer: {exc}. Is it the Redis of a "
            f"stack that has stopped? Start that Redis, or unset {where} and let make dev "
            "start its own."
        ) from None
    finally:
        queue.backend.close()


def _where(settings: Any) -> str:
    """Host and port only: the URL may carry a password."""
    from urllib.parse import urlsplit

    parts = urlsplit(settings.redis_url or settings.upstash_url or "")
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
