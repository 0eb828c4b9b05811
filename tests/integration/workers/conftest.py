"""Real parts for the workers: moto (SES v2, DynamoDB), the local Stripe server, a
verifying webhook receiver, and a Resend stand-in; plus job and deps builders."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from jobs_core import Job
from jobs_core.workers import WorkerDeps
from local_stack.stripe_server import StripeServer
from moto import mock_aws

from tests.integration.workers.helpers import AUDIT_TABLE, EFFECTS_TABLE, SENDER, make_job
from tests.support.webhook_receiver import WebhookReceiver


@dataclass
class Aws:
    """moto's account: clients, and what SES sent."""

    ses: Any
    dynamodb: Any

    def sent_emails(self) -> list[Any]:
        from moto.ses.models import ses_backends

        return list(ses_backends["123456789012"]["us-east-1"].sent_messages)

    def audit_rows(self, escrow_id: str) -> list[dict[str, Any]]:
        response = self.dynamodb.query(
            TableName=AUDIT_TABLE,
            KeyConditionExpression="escrow_id = :e",
            ExpressionAttributeValues={":e": {"S": escrow_id}},
            ConsistentRead=True,
        )
        items: list[dict[str, Any]] = response["Items"]
        return items

    def ledger_entry(self, effect_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.dynamodb.get_item(
            TableName=EFFECTS_TABLE, Key={"effect_id": {"S": effect_id}}, ConsistentRead=True
        ).get("Item")
        return item


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """A fresh moto account with the audit and effects tables and a verified SES domain."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=AUDIT_TABLE,
            AttributeDefinitions=[
                {"AttributeName": "escrow_id", "AttributeType": "S"},
                {"AttributeName": "event_id", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "escrow_id", "KeyType": "HASH"},
                {"AttributeName": "event_id", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName=EFFECTS_TABLE,
            AttributeDefinitions=[{"AttributeName": "effect_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "effect_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=EFFECTS_TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
        ses = boto3.client("sesv2")
        ses.create_email_identity(EmailIdentity="escrow.example")
        yield Aws(ses=ses, dynamodb=dynamodb)


@pytest.fixture(scope="session")
def stripe_server_session() -> Iterator[StripeServer]:
    with StripeServer(api_key="sk_test_workers") as server:
        yield server


@pytest.fixture
def stripe_server(stripe_server_session: StripeServer) -> StripeServer:
    """The shared local Stripe, emptied for this test."""
    stripe_server_session.reset()
    return stripe_server_session


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


# --- Resend stand-in --------------------------------------------------------------------


@dataclass
class ResendServer:
    """``POST /emails`` like Resend: bearer key, ``Idempotency-Key`` replays the first answer."""

    api_key: str = "re_test_key"
    requests: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    fail_next: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    _answers: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            key = headers.get("idempotency-key")
            self.requests.append({"idempotency_key": key, "body": json.loads(body)})
            if headers.get("authorization") != f"Bearer {self.api_key}":
                return 401, {}, b'{"name":"validation_error","message":"API key is invalid"}'
            if self.fail_next:
                status, extra, error = self.fail_next.pop(0)
                return status, extra, json.dumps(error).encode()
            if key and key in self._answers:
                status, answer = self._answers[key]
                return status, {}, json.dumps(answer).encode()
            message_id = f"re_{len(self.sent) + 1}"
            self.sent.append(json.loads(body))
            if key:
                self._answers[key] = (200, {"id": message_id})
            return 200, {}, json.dumps({"id": message_id}).encode()


@pytest.fixture
def resend() -> Iterator[ResendServer]:
    state = ResendServer()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, extra, payload = state.handle(
                {k.lower(): v for k, v in self.headers.items()}, body
            )
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


# --- jobs and deps ----------------------------------------------------------------------


@pytest.fixture
def new_job() -> Callable[..., Job]:
    return make_job


@pytest.fixture
def aws_deps(
    aws: Aws, stripe_server: StripeServer, receiver: WebhookReceiver, tmp_path: Path
) -> WorkerDeps:
    """Deps as in AWS (SES, DynamoDB ledger and audit table) against moto and local servers."""
    return WorkerDeps(
        email_provider="ses",
        email_from=SENDER,
        audit_table_name=AUDIT_TABLE,
        effects_table_name=EFFECTS_TABLE,
        stripe_client=stripe_server.client(),
        webhook_allow_local=True,
        environ={"PARTNER_ACME": receiver.secret},
        local_state_dir=tmp_path / "state",
    )
