"""The whole system on one machine, in one process: ``python -m local_stack``.

``make dev`` runs this. On embedded defaults it starts, in this process:

- Redis: a ``redis-server`` child on a free port when the binary is on PATH, else the
  embedded in-memory Redis; with ``REDIS_URL``, the Upstash variables or ``JOBS_BACKEND``
  set, that Redis instead;
- AWS from an in-process moto server (``ThreadedMotoServer``): DynamoDB with the tables
  of ``template.yaml`` (their key schemas and TTLs read from the template), Secrets
  Manager with the secrets the functions read (Stripe key and webhook secret, the
  processor's operator token, a demo partner's webhook secret), SES, and CloudWatch,
  which receives the EMF metrics the processor and the monitor print;
- the local Stripe server (``stripe_server``);
- the HTTP API on http://127.0.0.1:3000 (``http_gateway``): the template's routes, the
  same handlers, HTTP API v2 events, dev tokens verified like API Gateway's JWT
  authorizer; plus the Lambda Invoke API, so the API's kick reaches the processor;
- the schedules (``scheduler``): the processor every 2 s (and at once when kicked), the
  monitor at the template's rate (every minute);

and sets the environment the handlers read: the functions' variables from the template,
with local values where AWS ones cannot work (mailbox email in ``.local/mailbox``, the
moto endpoint, table names, the local Stripe base). It prints a dev token for a buyer,
a seller and an admin, and ``curl`` commands for one escrow's life; ``.local/stack.json``
holds the same for scripts. Ctrl-C (SIGINT) or SIGTERM stops everything: the gateway,
the schedules (their threads joined), the servers, the redis-server child.

Local-only routes on the gateway:

- ``POST /_local/stripe/pay`` ``{"escrowId": ...}`` or ``{"paymentIntentId": ...}``:
  the buyer pays: the intent is authorised at the local Stripe server, and a signed
  ``payment_intent.amount_capturable_updated`` event is posted to ``/api/stripe/webhook``;
- ``POST|GET /_local/partner/webhooks``: a demo partner endpoint that verifies each
  delivery with the demo secret (``webhookSecretRef: "demo-partner"``) and lists them;
- ``GET /_local/health``.

Options (or environment variables): ``--port`` (``ESCROW_LOCAL_PORT``, default 3000),
``--state-dir`` (``ESCROW_LOCAL_STATE_DIR``, default ``.local``), ``--process-every``
(``ESCROW_LOCAL_PROCESS_EVERY_S``, default 2), ``--monitor-every``
(``ESCROW_LOCAL_MONITOR_EVERY_S``, default: the template's rate), ``--log-level``
(``POWERTOOLS_LOG_LEVEL`` of the handlers, default WARNING), ``--info-file``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from . import emf
from .http_gateway import GatewayRoute, HttpGateway, LocalRequest
from .lambda_runtime import LocalFunction
from .redis_process import RedisProcess, free_port, redis_server_binary
from .scheduler import Scheduler
from .stripe_server import (
    PAYMENT_AUTHORIZED,
    PaymentSimulationError,
    StripeServer,
    signed_event,
    stripe_event,
)
from .template import REGION, Template

log = logging.getLogger("local_stack.stack")

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_NAME = "escrow-jobs-local"
STRIPE_API_KEY = "sk_test_local"  # the local Stripe server's key; not a real one
DEMO_PARTNER_REF = "demo-partner"
DEV_TOKEN_TTL_S = 12 * 3600

# Variables a developer may set to change the local stack's defaults (the rest of the
# environment the handlers read is the stack's own: endpoints, table names, secrets).
TUNABLE = frozenset(
    {
        "EMAIL_PROVIDER",
        "EMAIL_FROM",
        "MAILBOX_DIR",
        "RESEND_API_KEY",
        "RESEND_API_KEY_REF",
        "RESEND_API_URL",
        "POWERTOOLS_LOG_LEVEL",
        "JOBS_NAMESPACE",
        "JOBS_KICK_ENABLED",
        "JOB_PROCESSOR_IDLE_EXIT_S",
        "JOB_PROCESSOR_MAX_FANOUT",
    }
)
# Names the template sets per function that make no sense merged into one process.
NOT_SHARED = frozenset({"POWERTOOLS_SERVICE_NAME", "UPSTASH_TOKEN_PARAM", "UPSTASH_REDIS_REST_URL"})
# Never inherited: real AWS credentials must not reach the local stack's clients.
AWS_DROPPED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def _say(message: str) -> None:
    stream = getattr(sys.stdout, "target", sys.stdout)  # past the EMF router
    stream.write(f"{time.strftime('%H:%M:%S')}  {message}\n")
    stream.flush()


@dataclass
class StackConfig:
    host: str = "127.0.0.1"
    port: int = 3000
    state_dir: Path = field(default_factory=lambda: REPO_ROOT / ".local")
    info_file: Path | None = None  # default: state_dir / "stack.json"
    process_every_s: float = 2.0
    monitor_every_s: float | None = None  # default: the template's rate
    log_level: str = "WARNING"
    template_path: Path = field(default_factory=lambda: REPO_ROOT / "template.yaml")

    @property
    def info_path(self) -> Path:
        return self.info_file or self.state_dir / "stack.json"


@dataclass(frozen=True)
class DevUser:
    role: str
    sub: str
    email: str
    roles: tuple[str, ...]
    token: str


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
        self.moto: Any = None
        self.stripe: StripeServer | None = None
        self.gateway: HttpGateway | None = None
        self.scheduler = Scheduler()
        self.functions: dict[str, LocalFunction] = {}
        self.users: dict[str, DevUser] = {}
        self.backend = "memory"
        self.redis_url: str | None = None
        self.aws_endpoint = ""
        self.table_names: dict[str, str] = {}
        self.secret_values: dict[str, str] = {}
        self.partner_deliveries: list[dict[str, Any]] = []
        self._jwt_secret = ""
        self._forwarder: emf.CloudWatchForwarder | None = None
        self._router_cm: contextlib.AbstractContextManager[emf.StdoutRouter] | None = None
        self._router: emf.StdoutRouter | None = None
        self._last_monitor: str | None = None
        self._lock = threading.Lock()
        self._stopped = False

    # -- start --------------------------------------------------------------------------

    def start(self) -> LocalStack:
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))  # functions.*
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        self._start_redis()
        self.gateway = HttpGateway(
            self._routes(),
            authorizer=self._verify_token,
            host=self.config.host,
            port=self.config.port,
            local_routes={
                ("GET", "/_local/health"): self._health,
                ("POST", "/_local/stripe/pay"): self._pay,
                ("POST", "/_local/partner/webhooks"): self._partner_receive,
                ("GET", "/_local/partner/webhooks"): self._partner_list,
            },
            lambda_invoke=self._lambda_invoke,
            api_id=STACK_NAME,
        ).bind()
        self._start_moto()
        self.stripe = StripeServer(STRIPE_API_KEY).start()
        self._apply_environment()
        self._create_aws_resources()
        self._mint_tokens()
        self._load_functions()
        self._router_cm = emf.routed_stdout()
        self._router = self._router_cm.__enter__()
        self._schedule()
        self.gateway.start()
        self._write_info()
        return self

    def _start_redis(self) -> None:
        env = self.environ
        if env.get("JOBS_BACKEND") or env.get("REDIS_URL") or env.get("UPSTASH_REDIS_REST_URL") \
                or env.get("KV_REST_API_URL"):  # fmt: skip
            from jobs_core import Settings

            settings = Settings.from_env(env)
            self.backend = settings.backend
            self.redis_url = settings.redis_url if settings.backend == "redis" else None
            _say(f"redis: using the configured {settings.backend} backend")
            return
        if redis_server_binary():
            self.redis = RedisProcess().start()
            self.backend, self.redis_url = "redis", self.redis.url
            _say(f"redis: started redis-server (pid {self.redis.pid}) at {self.redis.url}")
        else:
            self.backend = "memory"
            _say("redis: no redis-server on PATH: using the embedded in-memory Redis")

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.moto.start()
        host, port = self.moto.get_host_and_port()
        self.aws_endpoint = f"http://{host}:{port}"

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
                "AWS_ENDPOINT_URL": self.aws_endpoint,
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

    def _aws(self, service: str) -> Any:
        import boto3

        factory: Any = boto3.client  # one call for any service name
        return factory(
            service,
            endpoint_url=self.aws_endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto's dummy)
        )

    def _create_aws_resources(self) -> None:
        dynamodb = self._aws("dynamodb")
        for logical, spec in self.template.tables().items():
            name = self.table_names[logical]
            dynamodb.create_table(TableName=name, **spec.create_args)
            if spec.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": spec.ttl_attribute, "Enabled": True},
                )
        env = self.environ
        prefix = env.get("WEBHOOK_SECRET_PREFIX", "")
        self.secret_values = {
            env["STRIPE_API_KEY_REF"]: STRIPE_API_KEY,
            env["STRIPE_WEBHOOK_SECRET_REF"]: "whsec_" + secrets.token_hex(24),
            env["JOB_PROCESSOR_TOKEN_PARAM"]: secrets.token_urlsafe(32),
            prefix + DEMO_PARTNER_REF: "whsec_" + base64.b64encode(os.urandom(32)).decode(),
        }
        manager = self._aws("secretsmanager")
        for name, value in self.secret_values.items():
            manager.create_secret(Name=name, SecretString=value)
        with contextlib.suppress(Exception):  # only for EMAIL_PROVIDER=ses
            ses = self._aws("ses")
            ses.verify_domain_identity(Domain="escrow.local")
            ses.verify_email_identity(EmailAddress="no-reply@escrow.local")
        self._forwarder = emf.CloudWatchForwarder(self._aws("cloudwatch"))

    def _mint_tokens(self) -> None:
        from . import dev_tokens

        self._jwt_secret = self.environ.get("ESCROW_DEV_JWT_SECRET") or secrets.token_urlsafe(48)
        for role, sub, roles in (
            ("buyer", "buyer-1", ()),
            ("seller", "seller-1", ()),
            ("admin", "admin-1", ("admin",)),
        ):
            email = f"{role}@example.com"
            token = dev_tokens.mint(sub, email, roles, self._jwt_secret, ttl_s=DEV_TOKEN_TTL_S)
            self.users[role] = DevUser(role, sub, email, tuple(roles), token)

    def _verify_token(self, token: str) -> Mapping[str, Any]:
        from . import dev_tokens

        return dev_tokens.verify(token, self._jwt_secret)

    def _routes(self) -> list[GatewayRoute]:
        specs = self.template.functions()
        self.functions = {logical: LocalFunction(spec) for logical, spec in specs.items()}
        return [
            GatewayRoute(r.method, r.path, self.functions[r.function], r.authorized)
            for r in self.template.routes()
        ]

    def _load_functions(self) -> None:
        for function in self.functions.values():
            function.handler()  # import now: a broken handler fails the start, not a request
        if self.environ.get("JOBS_BACKEND") == "memory":
            from jobs_core import memory_backend

            # Create the process's one embedded Redis now, on this thread: built lazily by
            # the first two functions at once (the processor and the monitor threads), a
            # cached factory without a lock can hand each its own empty server.
            memory_backend()

    def _schedule(self) -> None:
        rates: dict[str, float] = {}
        for schedule in self.template.schedules():
            rates[schedule.function] = min(rates.get(schedule.function, 1e9), schedule.every_s)
        for logical, every in rates.items():
            function = self.functions[logical]
            if logical == "JobProcessorFunction":
                every = self.config.process_every_s
            elif logical == "MonitorFunction" and self.config.monitor_every_s:
                every = self.config.monitor_every_s
            self.scheduler.add(
                logical,
                every,
                self._runner(function),
                rule=f"{STACK_NAME}-{logical}-schedule",
            )
        self.scheduler.start()

    def _runner(self, function: LocalFunction) -> Callable[[Mapping[str, Any]], None]:
        def run(event: Mapping[str, Any]) -> None:
            self._invoke_captured(function, dict(event))

        return run

    def _invoke_captured(self, function: LocalFunction, event: dict[str, Any]) -> Any:
        """Invoke with stdout captured: EMF lines go to CloudWatch, the rest is printed."""
        assert self._router is not None
        with self._router.capture() as buffer:
            try:
                result = function.invoke(event, serial=True)
            finally:
                self._forward(buffer.getvalue())
        self._summarise(function, event, result)
        return result

    def _forward(self, text: str) -> None:
        metrics, other = emf.split_output(text)
        if metrics and self._forwarder is not None:
            try:
                self._forwarder.put(metrics)
            except Exception as exc:  # CloudWatch is a convenience here, never fatal
                log.warning("could not put metrics into CloudWatch: %s", exc)
        assert self._router is not None
        for line in other:
            self._router.target.write(line + "\n")

    def _summarise(self, function: LocalFunction, event: Mapping[str, Any], result: Any) -> None:
        if not isinstance(result, Mapping):
            return
        if function.spec.logical_id == "JobProcessorFunction" and result.get("processed"):
            why = {"escrow-jobs.kick": "kick", "escrow-jobs.fanout": "fan-out"}.get(
                str(event.get("source")), "schedule"
            )
            _say(
                f"processor ({why}): {result['processed']} job(s): "
                f"{result.get('succeeded', 0)} succeeded, {result.get('retried', 0)} to retry, "
                f"{result.get('deadLettered', 0)} dead-lettered"
            )
        elif function.spec.logical_id == "MonitorFunction" and "ready" in result:
            line = (
                f"monitor: {result['ready']} ready, {result.get('scheduled', 0)} scheduled, "
                f"{result.get('running', 0)} running, {result.get('deadLetter', 0)} dead-lettered"
            )
            if line != self._last_monitor:
                self._last_monitor = line
                _say(line)

    # -- the Lambda Invoke API (the processor kick and fan-out land here) ----------------

    def _lambda_invoke(self, name: str, payload: bytes, kind: str) -> tuple[int, bytes]:
        short = name.split(":function:", 1)[-1].split(":", 1)[0]
        function = next(
            (f for f in self.functions.values() if short in (f.name, f.spec.logical_id)), None
        )
        if function is None:
            error = {"Type": "User", "Message": f"Function not found: {name}"}
            return 404, json.dumps(error).encode()
        try:
            event = json.loads(payload or b"{}")
        except ValueError:
            return 400, json.dumps({"Type": "User", "Message": "invalid JSON payload"}).encode()
        if kind == "DryRun":
            return 204, b""
        if kind == "Event":
            # A warm instance drains everything queued, so a kick or fan-out to a busy
            # processor is one more run at most: the scheduler coalesces them.
            if not self.scheduler.wake(function.spec.logical_id, event):
                threading.Thread(
                    target=self._invoke_captured, args=(function, event), daemon=True
                ).start()
            return 202, b""
        result = self._invoke_captured(function, event)
        return 200, json.dumps(result).encode()

    # -- local routes -------------------------------------------------------------------

    def _health(self, _: LocalRequest) -> tuple[int, Any]:
        return 200, {"status": "ok", "backend": self.backend}

    def _pay(self, request: LocalRequest) -> tuple[int, Any]:
        """The buyer pays: authorise the intent, then Stripe's signed event to the API."""
        import httpx

        try:
            body = request.json()
        except ValueError:
            return 400, {"error": "the body must be JSON"}
        if not isinstance(body, dict):
            return 400, {"error": "the body must be a JSON object"}
        assert self.stripe is not None
        intent_id = body.get("paymentIntentId")
        if not intent_id and body.get("escrowId"):
            intent_id = self.stripe.find_intent(str(body["escrowId"]))
        if not intent_id:
            return 404, {"error": "give escrowId or paymentIntentId of an existing payment"}
        try:
            intent = self.stripe.authorize(str(intent_id))
        except PaymentSimulationError as exc:
            return 409, {"error": str(exc)}
        secret = self.secret_values[self.environ["STRIPE_WEBHOOK_SECRET_REF"]]
        payload, headers = signed_event(stripe_event(PAYMENT_AUTHORIZED, intent), secret)
        assert self.gateway is not None
        response = httpx.post(
            f"{self.gateway.url}/api/stripe/webhook", content=payload, headers=headers, timeout=30
        )
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        return 200, {
            "paymentIntent": {k: intent.get(k) for k in ("id", "status", "amount", "currency")},
            "webhook": {"status": response.status_code, "response": answer},
        }

    def _partner_receive(self, request: LocalRequest) -> tuple[int, Any]:
        from standardwebhooks import Webhook

        secret = self.secret_values[
            self.environ.get("WEBHOOK_SECRET_PREFIX", "") + DEMO_PARTNER_REF
        ]
        try:
            payload = Webhook(secret).verify(request.body, dict(request.headers))
        except Exception as exc:
            return 401, {"error": f"signature rejected: {type(exc).__name__}"}
        with self._lock:
            self.partner_deliveries.append(
                {"webhookId": request.headers.get("webhook-id"), "payload": payload}
            )
        _say(f"demo partner: received webhook {request.headers.get('webhook-id')}")
        return 200, {"received": True}

    def _partner_list(self, _: LocalRequest) -> tuple[int, Any]:
        with self._lock:
            return 200, {"deliveries": list(self.partner_deliveries)}

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
            "awsEndpoint": self.aws_endpoint,
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

    def banner(self) -> str:
        info = self.info()
        api = info["apiUrl"]
        users = info["users"]
        partner = info["demoPartner"]
        if info["redisUrl"]:
            cli_env = f"REDIS_URL={info['redisUrl']} escrow-jobs stats"
        elif info["backend"] == "upstash":
            cli_env = "escrow-jobs stats   # with the same UPSTASH_REDIS_REST_* variables"
        else:
            cli_env = (
                "# escrow-jobs cannot reach the in-memory Redis of this process: "
                "install redis-server or set REDIS_URL"
            )
        create = json.dumps(
            {
                "amount": 10000,
                "currency": "USD",
                "buyer": {"id": users["buyer"]["sub"], "email": users["buyer"]["email"]},
                "seller": {"id": users["seller"]["sub"], "email": users["seller"]["email"]},
                "webhookUrl": partner["webhookUrl"],
                "webhookSecretRef": partner["webhookSecretRef"],
            }
        )
        return f"""
escrow-jobs local stack is up: {api}
  Redis: {info["backend"]}{" at " + info["redisUrl"] if info["redisUrl"] else ""}
  AWS (moto): {info["awsEndpoint"]}   tables: {", ".join(info["tables"].values())}
  Stripe (local): {info["stripeApiBase"]}   mailbox: {info["mailboxDir"]}
  processor every {self.config.process_every_s:g}s (and on each kick); monitor every minute

Dev tokens (HS256, valid 12 h):
  export API={api}
  export BUYER={users["buyer"]["token"]}
  export SELLER={users["seller"]["token"]}
  export ADMIN={users["admin"]["token"]}
  export PROCESSOR_TOKEN={info["processorToken"]}

One escrow, create -> pay -> release:
  # 1. the buyer creates it (note the escrow id in the answer)
  curl -s -X POST $API/api/escrow -H "Authorization: Bearer $BUYER" \\
       -H 'Content-Type: application/json' -d '{create}'
  # 2. the buyer pays: Stripe authorises, the signed webhook funds the escrow
  curl -s -X POST $API/_local/stripe/pay -d '{{"escrowId": "ESCROW_ID"}}'
  # 3. the buyer releases the funds to the seller
  curl -s -X POST $API/api/escrow/release -H "Authorization: Bearer $BUYER" \\
       -H 'Content-Type: application/json' -d '{{"escrowId": "ESCROW_ID"}}'
  # the escrow and its history; the emails; the partner's webhooks; the queue
  curl -s $API/api/escrow/ESCROW_ID -H "Authorization: Bearer $BUYER"
  ls {info["mailboxDir"]}
  curl -s $API/_local/partner/webhooks
  curl -s $API/api/jobs/process -H "Authorization: Bearer $PROCESSOR_TOKEN"
  {cli_env}

Ctrl-C stops everything.
"""

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
        steps.append(("schedules", self.scheduler.stop))
        if self._router_cm is not None:
            cm = self._router_cm

            def restore_stdout() -> None:
                cm.__exit__(None, None, None)

            steps.append(("stdout", restore_stdout))
        if self.stripe is not None:
            steps.append(("stripe", self.stripe.stop))
        if self.moto is not None:
            steps.append(("moto", self.moto.stop))
        if self.redis is not None:
            steps.append(("redis-server", self.redis.stop))
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)
        with contextlib.suppress(OSError):
            self.config.info_path.unlink()


# -- the program --------------------------------------------------------------------------


def parse_args(argv: list[str] | None, environ: Mapping[str, str]) -> StackConfig:
    def number(name: str, default: float) -> float:
        raw = environ.get(name, "").strip()
        return float(raw) if raw else default

    parser = argparse.ArgumentParser(
        prog="python -m local_stack",
        description="Run the escrow-jobs system locally (Ctrl-C stops it).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(number("ESCROW_LOCAL_PORT", 3000)))
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(environ.get("ESCROW_LOCAL_STATE_DIR") or REPO_ROOT / ".local"),
        help="mailbox, effect ledger and stack.json (default .local)",
    )
    parser.add_argument("--info-file", type=Path, default=None)
    parser.add_argument(
        "--process-every",
        type=float,
        default=number("ESCROW_LOCAL_PROCESS_EVERY_S", 2.0),
        metavar="S",
        help="seconds between processor runs (default 2)",
    )
    parser.add_argument(
        "--monitor-every",
        type=float,
        default=number("ESCROW_LOCAL_MONITOR_EVERY_S", 0) or None,
        metavar="S",
        help="seconds between monitor runs (default: the template's rate)",
    )
    parser.add_argument(
        "--log-level",
        default=environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        help="the handlers' log level (default WARNING)",
    )
    args = parser.parse_args(argv)
    if args.process_every <= 0 or (args.monitor_every is not None and args.monitor_every <= 0):
        parser.error("intervals must be positive")
    return StackConfig(
        host=args.host,
        port=args.port,
        state_dir=args.state_dir,
        info_file=args.info_file,
        process_every_s=args.process_every,
        monitor_every_s=args.monitor_every,
        log_level=args.log_level.upper(),
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv, os.environ)
    logging.basicConfig(
        level=getattr(logging, config.log_level, logging.WARNING),
        format="%(asctime)s  %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stdout,
    )
    logging.getLogger("local_stack").setLevel(logging.INFO)  # our own lines, always
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "httpx", "moto", "stripe"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    stop = threading.Event()
    stack = LocalStack(config)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():  # a second Ctrl-C: do not wait any longer
            if stack.redis is not None:
                stack.redis.stop()
            os._exit(130)
        _say(f"{signal.Signals(signum).name}: stopping (again to force)")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        stack.start()
    except Exception as exc:
        _say(f"the local stack could not start: {type(exc).__name__}: {exc}")
        log.debug("start failed", exc_info=True)
        stack.stop()
        return 1
    _say(stack.banner())
    while not stop.wait(0.5):
        pass
    stack.stop()
    _say("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
