"""The local stack's parts over real sockets: the gateway (HTTP in, v2 event out, dev
tokens, the Lambda Invoke API boto3 and the processor kick use), the redis-server child,
the local Stripe server's payment authorisation, and EMF metrics into moto CloudWatch."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
import redis
import stripe
from jobs_core.processor.kick import Kicker
from local_stack import dev_tokens, emf
from local_stack.api_events import GatewayRoute
from local_stack.http_gateway import HttpGateway
from local_stack.redis_process import RedisProcess
from local_stack.stripe_server import PaymentSimulationError, StripeServer
from moto.server import ThreadedMotoServer

SECRET = "a-local-dev-token-secret-of-32-bytes-or-more"


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: Any, *, serial: bool = False) -> Any:
        self.events.append(event)
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-Route": event["routeKey"]},
            "cookies": ["session=abc"],
            "body": json.dumps({"seen": event["rawPath"]}),
        }


@pytest.fixture
def gateway_rig() -> Iterator[tuple[HttpGateway, Recorder, list[tuple[str, Any, str]]]]:
    fn = Recorder()
    invoked: list[tuple[str, Any, str]] = []

    def lambda_invoke(name: str, payload: bytes, kind: str) -> tuple[int, bytes]:
        invoked.append((name, json.loads(payload), kind))
        return (202, b"") if kind == "Event" else (200, b'{"ok": true}')

    gateway = HttpGateway(
        [
            GatewayRoute("POST", "/api/escrow", fn, authorized=True),
            GatewayRoute("GET", "/api/escrow/{id}", fn, authorized=True),
            GatewayRoute("POST", "/api/stripe/webhook", fn),
        ],
        authorizer=lambda token: dev_tokens.verify(token, SECRET),
        port=0,
        lambda_invoke=lambda_invoke,
    ).start()
    try:
        yield gateway, fn, invoked
    finally:
        gateway.stop()


def test_http_request_becomes_a_v2_event_with_verified_claims(
    gateway_rig: tuple[HttpGateway, Recorder, list[Any]],
) -> None:
    gateway, fn, _ = gateway_rig
    token = dev_tokens.mint("buyer-1", "buyer@example.com", ["admin"], SECRET)
    response = httpx.get(
        f"{gateway.url}/api/escrow/esc_1?x=1",
        headers={"Authorization": f"Bearer {token}", "X-Trace": "t1"},
        cookies={"c": "1"},
    )
    assert response.status_code == 201
    assert response.headers["x-route"] == "GET /api/escrow/{id}"
    assert response.headers["set-cookie"] == "session=abc"
    assert response.json() == {"seen": "/api/escrow/esc_1"}
    [event] = fn.events
    assert event["pathParameters"] == {"id": "esc_1"}
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["headers"]["x-trace"] == "t1"
    assert event["cookies"] == ["c=1"]
    assert event["requestContext"]["http"]["method"] == "GET"
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    claims = event["requestContext"]["authorizer"]["jwt"]["claims"]
    assert (claims["sub"], claims["email"], claims["roles"]) == (
        "buyer-1",
        "buyer@example.com",
        "[admin]",
    )
    assert claims["iss"] == dev_tokens.ISSUER


def test_tokens_refused_like_the_jwt_authorizer(
    gateway_rig: tuple[HttpGateway, Recorder, list[Any]],
) -> None:
    gateway, fn, _ = gateway_rig
    expired = dev_tokens.mint("u", None, [], SECRET, ttl_s=-10)
    forged = dev_tokens.mint("u", None, [], SECRET.replace("a", "b"))
    for headers in ({}, {"Authorization": f"Bearer {expired}"}, {"Authorization": forged}):
        response = httpx.post(f"{gateway.url}/api/escrow", headers=headers, json={})
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized"}
    assert fn.events == []
    webhook = httpx.post(f"{gateway.url}/api/stripe/webhook", content=b"{}")
    assert webhook.status_code == 201  # no authorizer on Stripe's route
    assert "authorizer" not in fn.events[0]["requestContext"]


def test_bodies_binary_chunked_and_too_large(
    gateway_rig: tuple[HttpGateway, Recorder, list[Any]],
) -> None:
    gateway, fn, _ = gateway_rig
    httpx.post(
        f"{gateway.url}/api/stripe/webhook",
        content=b"\x00\x01\xff",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert fn.events[-1]["isBase64Encoded"] is True
    assert base64.b64decode(fn.events[-1]["body"]) == b"\x00\x01\xff"

    def chunks() -> Iterator[bytes]:
        yield b'{"a": '
        yield b"1}"

    httpx.post(
        f"{gateway.url}/api/stripe/webhook",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert fn.events[-1]["body"] == '{"a": 1}'
    assert fn.events[-1]["isBase64Encoded"] is False

    count = len(fn.events)
    big = httpx.post(f"{gateway.url}/api/stripe/webhook", content=b"x" * (10 * 1024 * 1024 + 1))
    assert big.status_code == 413
    assert len(fn.events) == count
    assert httpx.get(f"{gateway.url}/nowhere").status_code == 404


def test_boto3_and_the_processor_kick_reach_the_lambda_invoke_api(
    gateway_rig: tuple[HttpGateway, Recorder, list[Any]],
) -> None:
    gateway, _, invoked = gateway_rig
    client = boto3.client(
        "lambda",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    answer = client.invoke(FunctionName="stk-job-processor", Payload=b'{"n": 1}')
    assert answer["StatusCode"] == 200
    assert json.loads(answer["Payload"].read()) == {"ok": True}

    kicker = Kicker(function_name="stk-job-processor", client=client)
    assert kicker.kick() is True  # InvocationType=Event answered 202
    assert kicker.fan_out(2) == 2
    assert invoked[0] == ("stk-job-processor", {"n": 1}, "RequestResponse")
    assert [(e.get("source"), kind) for _, e, kind in invoked[1:]] == [
        ("escrow-jobs.kick", "Event"),
        ("escrow-jobs.fanout", "Event"),
        ("escrow-jobs.fanout", "Event"),
    ]


def test_redis_process_starts_and_stops() -> None:
    with RedisProcess() as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        assert server.port != 6379
        process = server.process
        client.close()
    assert process is not None and process.poll() is not None  # reaped, not orphaned


def test_local_stripe_authorises_a_manual_capture_intent() -> None:
    server = StripeServer("sk_test_local").start()
    try:
        client = stripe.StripeClient("sk_test_local", base_addresses={"api": server.url})
        intent = client.v1.payment_intents.create(
            params={
                "amount": 5000,
                "currency": "eur",
                "capture_method": "manual",
                "metadata": {"escrow_id": "esc_9"},
            }
        )
        assert intent.status == "requires_payment_method"
        assert server.find_intent("esc_9") == intent.id
        assert server.find_intent("esc_other") is None
        authorised = server.authorize(intent.id)
        assert (authorised["status"], authorised["amount_capturable"]) == ("requires_capture", 5000)
        assert server.authorize(intent.id)["status"] == "requires_capture"  # again: a no-op
        client.v1.payment_intents.capture(intent.id)  # what a release does
        with pytest.raises(PaymentSimulationError, match="succeeded"):
            server.authorize(intent.id)
        with pytest.raises(PaymentSimulationError, match="no such payment intent"):
            server.authorize("pi_missing")
    finally:
        server.stop()


def test_emf_lines_become_cloudwatch_metrics_in_moto() -> None:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        client = boto3.client(
            "cloudwatch",
            endpoint_url=f"http://{host}:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        line = json.dumps(
            {
                "_aws": {
                    "Timestamp": 1_700_000_000_000,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": "EscrowJobs",
                            "Dimensions": [["service", "queue"]],
                            "Metrics": [{"Name": "DeadLetterJobs", "Unit": "Count"}],
                        }
                    ],
                },
                "service": "queue-monitor",
                "queue": "escrow-jobs",
                "DeadLetterJobs": 7,
            }
        )
        metrics, _ = emf.split_output(line)
        assert emf.CloudWatchForwarder(client).put(metrics) == 1
        [metric] = client.list_metrics(Namespace="EscrowJobs")["Metrics"]
        assert metric["MetricName"] == "DeadLetterJobs"
        assert {d["Name"]: d["Value"] for d in metric["Dimensions"]} == {
            "service": "queue-monitor",
            "queue": "escrow-jobs",
        }
    finally:
        moto.stop()
