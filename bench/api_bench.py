"""Escrow API benchmark (issue 5): in-process handler latency and Redis commands per request.

    python -m bench.api_bench                  # 300 requests per row
    python -m bench.api_bench --requests 100

Each request goes through the real ``lambda_handler`` (an HTTP API v2 event from
``events/escrow_api/``, the service built from environment variables) against moto
DynamoDB (in process), the local Stripe server (real HTTP on loopback) and a dedicated
redis-server (``bench.redis_env``: pinned to CPU 0, this process to CPU 1).

Per row: p50 / p99 / mean latency of the handler, how much of the mean each dependency
took (DynamoDB calls, Stripe calls, the Redis enqueue), and, from ``INFO commandstats``,
Redis round trips (EVALSHA/EVAL) and billed commands (every ``redis.call`` inside the
script too, as Upstash bills) per request. Target: one round trip per request.

Every request gets a freshly written funded escrow and everything it wrote is removed
after it (neither timed). The escrow id, the Idempotency-Key and so every key the request
touches are the same each time: moto keeps an empty partition behind for every key ever
deleted and copies them all on each transaction, so new keys would make it slower and
slower. Between requests (untimed) the bench Redis is flushed and the Stripe server
forgets its idempotency keys, so each request is a first one. The garbage collector runs
between requests, not inside one (moto's garbage is not the handler's). Nothing here
asserts; it prints a table.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.redis_env import (
    billed_delta,
    command_stats,
    flushall,
    free_port,
    pin_client_process,
    redis_server,
)

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events" / "escrow_api"
TASK_ROOT = ROOT / "functions" / "escrow_api"  # app.py and the escrow package, as in Lambda
PLACEHOLDER = "esc_01JEXAMPLE0000000000000000"
TABLE = "escrow-bench"
REGION = "us-east-1"


@dataclass
class Row:
    name: str
    latencies_ms: list[float]
    parts_ms: dict[str, float]
    round_trips: float
    billed: float
    statuses: dict[int, int]


class Parts:
    """Time spent in each dependency during one request."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)

    def wrap(self, obj: Any, method: str, part: str) -> None:
        inner: Callable[..., Any] = getattr(obj, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.totals[part] += (time.perf_counter() - start) * 1000

        setattr(obj, method, timed)


@dataclass
class Context:
    function_name: str = "escrow-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:escrow-api"
    aws_request_id: str = "bench"


def event(name: str, escrow_id: str) -> dict[str, Any]:
    text = (EVENTS / f"{name}.json").read_text().replace(PLACEHOLDER, escrow_id)
    ev: dict[str, Any] = json.loads(text)
    ev["headers"]["idempotency-key"] = f"bench-{name}"
    ev["requestContext"]["requestId"] = uuid.uuid4().hex
    return ev


@contextmanager
def environment(redis_url: str, stripe_url: str, api_key: str) -> Iterator[None]:
    values = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": REGION,
        "ESCROW_TABLE_NAME": TABLE,
        "STRIPE_API_KEY": api_key,
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_WEBHOOK_SECRET": "whsec_bench",
        "JOBS_BACKEND": "redis",
        "REDIS_URL": redis_url,
        "JOBS_NAMESPACE": "escrow-api-bench",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "POWERTOOLS_SERVICE_NAME": "escrow-api",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def seed(service: Any, stripe_server: Any, escrow_id: str) -> str:
    from escrow.models import Escrow, Party
    from escrow.state import EscrowState

    intent = stripe_server.create_payment_intent(10000, "usd", metadata={"escrow_id": escrow_id})
    now = time.time_ns() // 1_000_000
    service.store.write(
        Escrow(
            escrow_id=escrow_id,
            state=EscrowState.FUNDED,
            version=2,
            amount=10000,
            currency="USD",
            buyer=Party("user-buyer-1", "buyer@example.com"),
            seller=Party("user-seller-1", "seller@example.com"),
            payment_intent_id=intent["id"],
            created_by="user-buyer-1",
            created_ms=now,
            updated_ms=now,
            webhook_url="https://partner.example.com/hooks/escrow",
            webhook_secret_ref="partner-1-webhook-secret",
        ),
        expected=None,
    )
    return escrow_id


def remove(service: Any, escrow_id: str, ev: dict[str, Any]) -> None:
    """Delete what the request wrote: the escrow partition and its idempotency record."""
    client = service.store.client
    items = client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"ESCROW#{escrow_id}"}},
    )["Items"]
    sub = ev["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
    scope = hashlib.sha256(f"{sub}\n{ev['headers']['idempotency-key']}".encode()).hexdigest()
    keys = [{"pk": i["pk"], "sk": i["sk"]} for i in items]
    keys.append({"pk": {"S": f"IDEM#{scope}"}, "sk": {"S": "IDEM"}})
    for key in keys:
        client.delete_item(TableName=TABLE, Key=key)


def run_row(
    name: str,
    event_name: str,
    requests: int,
    warmup: int,
    *,
    service: Any,
    stripe_server: Any,
    handler: Callable[..., dict[str, Any]],
    stats_url: str | None,
) -> Row:
    parts = Parts()
    parts.wrap(service.store, "load", "DynamoDB")
    parts.wrap(service.store, "write", "DynamoDB")
    parts.wrap(service.store, "delete_outbox", "DynamoDB")
    parts.wrap(service.gateway, "capture", "Stripe")
    parts.wrap(service.gateway, "cancel_or_refund", "Stripe")
    parts.wrap(service.queue, "enqueue_batch", "Redis")
    latencies: list[float] = []
    statuses: dict[int, int] = defaultdict(int)
    totals: dict[str, float] = defaultdict(float)
    billed_total = calls_total = 0
    escrow_id = "esc_BENCH" + event_name.upper()
    for i in range(warmup + requests):
        seed(service, stripe_server, escrow_id)
        ev = event(event_name, escrow_id)
        if stats_url:
            flushall(stats_url)
            before = command_stats(stats_url)
        parts.totals.clear()
        gc.collect()
        gc.disable()  # moto's garbage is collected between requests, not inside one
        start = time.perf_counter()
        result = handler(ev, Context())
        elapsed = (time.perf_counter() - start) * 1000
        gc.enable()
        if i >= warmup:
            latencies.append(elapsed)
            statuses[int(result["statusCode"])] += 1
            for part, ms in parts.totals.items():
                totals[part] += ms
            if stats_url:
                after = command_stats(stats_url)
                calls_total += sum(after.get(c, 0) - before.get(c, 0) for c in ("evalsha", "eval"))
                billed_total += billed_delta(before, after, ignore={"flushall"})
        remove(service, escrow_id, ev)
        stripe_server.forget_idempotency_keys()
    round_trips = billed = float("nan")
    if stats_url:
        round_trips = calls_total / requests
        billed = billed_total / requests
    for obj, method in (
        (service.store, "load"),
        (service.store, "write"),
        (service.store, "delete_outbox"),
        (service.gateway, "capture"),
        (service.gateway, "cancel_or_refund"),
        (service.queue, "enqueue_batch"),
    ):
        vars(obj).pop(method, None)  # back to the class's method
    parts_ms = {part: ms / requests for part, ms in totals.items()}
    return Row(name, latencies, parts_ms, round_trips, billed, dict(statuses))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'request':<34} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
        f"{'DynamoDB':>9} {'Stripe':>7} {'Redis':>6} {'round trips':>12} {'billed cmds':>12}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        parts = row.parts_ms
        print(
            f"{row.name:<34} {len(row.latencies_ms):>5} "
            f"{percentile(row.latencies_ms, 0.5):>8.2f} {percentile(row.latencies_ms, 0.99):>8.2f} "
            f"{statistics.fmean(row.latencies_ms):>8.2f} {parts.get('DynamoDB', 0):>9.2f} "
            f"{parts.get('Stripe', 0):>7.2f} {parts.get('Redis', 0):>6.2f} "
            f"{row.round_trips:>12.2f} {row.billed:>12.2f}"
        )
    print(
        "\nDynamoDB / Stripe / Redis: mean ms per request spent in each (moto in process, "
        "the local Stripe server over loopback HTTP, redis-server over TCP).\n"
        "round trips: EVALSHA+EVAL per request; billed cmds: INFO commandstats per request "
        "(every redis.call inside the script counted, as Upstash bills). Target: 1 round trip."
    )
    for row in rows:
        if set(row.statuses) != {200}:
            print(f"note: {row.name} answered {row.statuses}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    pin_client_process()
    sys.path.insert(0, str(ROOT))
    from jobs_core import logger

    # The Redis-down row warns once per request by design; keep the table readable.
    logger.setLevel("ERROR")

    import boto3
    from local_stack.stripe_server import StripeServer
    from moto import mock_aws

    with (
        redis_server() as url,
        StripeServer() as stripe_server,
        mock_aws(),
        environment(url, stripe_server.url, stripe_server.api_key),
    ):
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        if str(TASK_ROOT) not in sys.path:
            sys.path.insert(0, str(TASK_ROOT))
        from escrow.api import get_service

        from functions.escrow_api import app

        service = get_service()
        common = dict(service=service, stripe_server=stripe_server, handler=app.lambda_handler)
        rows = [
            run_row(
                "POST /api/escrow/release",
                "release",
                args.requests,
                args.warmup,
                stats_url=url,
                **common,  # type: ignore[arg-type]
            ),
            run_row(
                "POST /api/escrow/dispute (no Stripe)",
                "dispute",
                args.requests,
                args.warmup,
                stats_url=url,
                **common,  # type: ignore[arg-type]
            ),
        ]
        # Redis unreachable (a closed port): the request still answers 200, the jobs
        # wait in the outbox; the cost is the queue's failed attempts.
        from jobs_core import JobQueue, RedisBackend

        dead = f"redis://127.0.0.1:{free_port()}/0"
        live_queue = service.queue
        service.queue = JobQueue(
            RedisBackend.from_url(dead, timeout_s=live_queue.settings.request_timeout_s),
            live_queue.settings,
        )
        rows.append(
            run_row(
                "POST /api/escrow/release, Redis down",
                "release",
                max(20, args.requests // 5),
                5,
                stats_url=None,
                **common,  # type: ignore[arg-type]
            )
        )
        service.queue = live_queue
    print(
        f"\n== Escrow API handler, in process ({args.requests} requests per row, "
        f"{args.warmup} warm-up)"
    )
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
