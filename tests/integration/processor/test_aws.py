"""AWS parts through moto: the operator token from SSM and Secrets Manager (Powertools
parameters), and the kick's real boto3 client against moto's Lambda and a dead endpoint."""

from __future__ import annotations

import io
import json
import socket
import time
import uuid
import zipfile
from collections.abc import Iterator

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from jobs_core import EnqueueResult, JobQueue
from jobs_core.processor.kick import Kicker
from moto import mock_aws
from operator_api import events, wiring

from tests.unit.processor.support import TOKEN, FakeContext, load_event

REGION = "eu-west-1"
IDLE = EnqueueResult(ids=["01J"], processor_active=False)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    parameters.clear_caches()
    with mock_aws(config={"lambda": {"use_docker": False}}):
        yield
    parameters.clear_caches()


def status_of(svc: wiring.Services, event: dict[str, object]) -> int:
    response = events.handle(event, FakeContext(), svc)  # type: ignore[arg-type]
    return int(response["statusCode"])


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize("store", ["ssm", "secretsmanager"])
def test_the_token_comes_from_ssm_or_secrets_manager(queue: JobQueue, store: str) -> None:
    name = f"/escrow-jobs/{uuid.uuid4().hex[:8]}/processor-token"
    if store == "ssm":
        boto3.client("ssm").put_parameter(Name=name, Value=TOKEN, Type="SecureString")
    else:
        name = name.strip("/")
        boto3.client("secretsmanager").create_secret(Name=name, SecretString=TOKEN)
    svc = wiring.build_services({"JOB_PROCESSOR_TOKEN_PARAM": name}, handlers={}, queue=queue)

    assert status_of(svc, load_event("get_stats")) == 200
    assert status_of(svc, load_event("get_stats_wrong_token")) == 401
    assert status_of(svc, load_event("get_stats_no_token")) == 401


@pytest.mark.usefixtures("aws")
def test_a_missing_parameter_is_503_not_an_open_door(queue: JobQueue) -> None:
    svc = wiring.build_services(
        {"JOB_PROCESSOR_TOKEN_PARAM": "/escrow-jobs/absent"}, handlers={}, queue=queue
    )
    assert status_of(svc, load_event("get_stats")) == 503


def _lambda_function() -> str:
    iam = boto3.client("iam")
    role = iam.create_role(
        RoleName=f"processor-{uuid.uuid4().hex[:6]}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("app.py", "def lambda_handler(event, context):\n    return {}\n")
    name = "escrow-jobs-processor"
    boto3.client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )
    return name


@pytest.mark.usefixtures("aws")
def test_kick_with_the_real_boto3_client_against_moto_lambda() -> None:
    name = _lambda_function()
    kicker = Kicker(name)  # builds its own boto3 client (1 s timeouts, no retries)
    assert kicker.kick(IDLE) is True
    assert kicker.fan_out(2) == 2


def test_kick_to_an_unreachable_endpoint_fails_fast_and_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as sock:  # a port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    kicker = Kicker("escrow-jobs-processor", timeout_s=0.5)
    started = time.monotonic()
    assert kicker.kick(IDLE) is False
    assert time.monotonic() - started < 5  # bounded: no retry storm on the request path
