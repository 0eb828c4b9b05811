"""The escrow API on real parts: moto DynamoDB, the local Stripe server, the session's Redis.

The tests send the sample events in ``events/escrow_api/`` through the real
``lambda_handler`` (its service built from environment variables, as in Lambda).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from functools import cache
from typing import Any

import boto3
import pytest
from escrow.api import get_service
from escrow.service import EscrowService
from jobs_core import JobQueue
from local_stack.stripe_server import StripeServer
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import Table

from tests.integration.escrow_api.harness import ADMIN_EMAIL, WEBHOOK_SECRET
from tests.support.redis_server import RedisServer
from tests.support.resolvers import PARTNER_DNS

TABLE = "escrow-test"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StripeServer]:
    with StripeServer() as server:
        yield server


@pytest.fixture
def stripe_api(stripe_server: StripeServer) -> StripeServer:
    stripe_server.reset()
    return stripe_server


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto, with fake credentials, and with each AWS request atomic.

    In-process moto runs a request's condition check and its write as plain Python,
    so two threads can interleave between them; DynamoDB never lets them. A lock
    around each request restores the atomicity the concurrency tests rely on.
    """
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    lock = threading.Lock()
    original = BotocoreStubber.__call__
    snapshots = _SnapshotTablesOnce()

    def atomic(self: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
        with lock:
            snapshots.request += 1
            return original(self, *args, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", atomic)
    monkeypatch.setattr(dynamodb_models, "copy", snapshots)
    with mock_aws():
        # moto drops boto3's default session on start; a kept one keeps its loaded
        # service models (about half a second per client otherwise).
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", _session())
        yield


class _SnapshotTablesOnce:
    """Stands in for the ``copy`` module inside moto's DynamoDB models.

    moto's ``transact_write_items`` deep-copies the whole table once per item of the
    transaction, before applying any of them (its rollback snapshot): the same snapshot
    each time, at a cost that grows with the table. This takes one per table per AWS
    request (requests are serialised by the ``aws`` fixture's lock).
    """

    def __init__(self) -> None:
        self.request = 0
        self._snapshots: dict[tuple[int, int], Any] = {}

    def deepcopy(self, obj: Any, memo: Any = None) -> Any:
        if not isinstance(obj, Table):
            return copy.deepcopy(obj, memo)
        key = (id(obj), self.request)
        if key not in self._snapshots:
            self._snapshots = {key: copy.deepcopy(obj, memo)}
        return self._snapshots[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


@cache
def _session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture
def table(aws: None) -> str:
    return create_table(TABLE)


def create_table(name: str) -> str:
    """The escrow table as the template declares it (pk, sk, TTL on expires_at)."""
    client = boto3.client("dynamodb", region_name=REGION)
    client.create_table(
        TableName=name,
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
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
    )
    return name


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    stripe_api: StripeServer,
    clean_redis: RedisServer,
) -> Iterator[dict[str, str]]:
    """The environment the Lambda would have, pointed at the local parts."""
    values = {
        "ESCROW_TABLE_NAME": table,
        "STRIPE_API_KEY": stripe_api.api_key,
        "STRIPE_API_BASE": stripe_api.url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_TIMEOUT_S": "30",  # a loaded CI machine must not turn into a 502
        "JOBS_BACKEND": "redis",
        "REDIS_URL": clean_redis.url,
        "JOBS_NAMESPACE": "escrow-api-tests",
        # Every seeded escrow has the same partner: its flow limits are not under test here.
        "JOBS_PARTNER_RATE_PER_S": "100000",
        "JOBS_PARTNER_CONCURRENCY": "10000",
        "POWERTOOLS_SERVICE_NAME": "escrow-api",
        "ESCROW_ADMIN_EMAIL": ADMIN_EMAIL,
    }
    for name in ("JOBS_KICK_ENABLED", "AWS_LAMBDA_FUNCTION_NAME", "UPSTASH_REDIS_REST_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_service.cache_clear()
    get_service().webhook_resolver = PARTNER_DNS  # partner names resolve without the network
    yield values
    get_service.cache_clear()


@pytest.fixture
def service(env: dict[str, str]) -> EscrowService:
    """The very service ``lambda_handler`` uses (built from ``env``)."""
    return get_service()


@pytest.fixture
def queue(service: EscrowService) -> JobQueue:
    return service.queue
