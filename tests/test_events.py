"""Every sample event under ``events/`` through its handler, in-process, as deployed.

``events/<function>/<case>.json`` goes to ``functions/<function>/app.py:lambda_handler``
(the folder name is the function's ``CodeUri`` folder in template.yaml). These are the
files ``sam local invoke -e`` uses, so they must stay valid.

The environment is the one template.yaml gives the function (parameters from the
``[default]`` environment of samconfig.toml), with only the endpoints swapped for
local ones: AWS is moto (the stack's tables created from their template definitions,
its secrets holding test values), Upstash is the REST stand-in over the session's own
Redis (its token read from the moto secret, as in AWS), Stripe is the local Stripe
server. Each case gets an empty queue namespace, empty tables and fresh caches.

Test values a sample event may rely on: the processor's bearer token (the stack's
generated secret) is ``local-processor-token``; the Stripe webhook signing secret is
``whsec_local_test``.

A sidecar ``<case>.expect.json`` may state ``{"statusCode": 404}`` (HTTP events) and
``{"responseKeys": [...]}`` (keys the answer, or an HTTP answer's JSON body, must
have). Without one, the case must not raise, and must answer a well-formed response:
for an HTTP API event a v2 response without a 5xx status; for other events anything
Lambda can serialise.
"""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import base as parameters_base
from local_stack.stripe_server import StripeServer

from tests.support.upstash_server import UpstashServer
from tests.template.cfn import (
    ROOT,
    Resolver,
    function_folder,
    functions,
    load_template,
    resources_of_type,
    samconfig_parameters,
)
from tests.unit.monitor.lambda_support import FakeLambdaContext

EVENTS = ROOT / "events"
TEMPLATE = load_template()
FUNCTIONS = functions(TEMPLATE)
BY_FOLDER = {function_folder(props): name for name, props in FUNCTIONS.items()}

PROCESSOR_TOKEN = "local-processor-token"
STRIPE_WEBHOOK_SECRET = "whsec_local_test"
SIDECAR_KEYS = {"statusCode", "responseKeys"}


def event_files() -> list[Path]:
    return sorted(p for p in EVENTS.glob("*/*.json") if not p.name.endswith(".expect.json"))


def case_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def is_http(event: dict[str, Any]) -> bool:
    return event.get("version") == "2.0" and "http" in (event.get("requestContext") or {})


# -- the deployed environment, locally ------------------------------------------------------


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[StripeServer]:
    with StripeServer() as server:
        yield server


def _create_tables(resolver: Resolver) -> dict[str, str]:
    """Every DynamoDB table of the template, in moto; returns logical id -> table name."""
    dynamodb = boto3.client("dynamodb")
    names = {}
    for logical, table in resources_of_type(TEMPLATE, "AWS::DynamoDB::Table").items():
        props = table["Properties"]
        name = f"{resolver.values['AWS::StackName']}-{logical}"
        dynamodb.create_table(
            TableName=name,
            AttributeDefinitions=props["AttributeDefinitions"],
            KeySchema=props["KeySchema"],
            BillingMode=props["BillingMode"],
        )
        names[logical] = name
    return names


@pytest.fixture(scope="module")
def stack(
    upstash_server: UpstashServer, stripe_server: StripeServer
) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """moto holding the stack's tables and secrets, for the whole module (building them
    costs seconds); yields the parameters and the physical ids of the stack's resources."""
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        env.setenv("AWS_REGION", "eu-west-1")
        parameters = {
            **samconfig_parameters("default"),
            "UpstashRedisRestUrl": upstash_server.url,
        }
        with mock_aws():
            probe = Resolver(TEMPLATE, parameters)
            tables = _create_tables(probe)
            secrets = boto3.client("secretsmanager")
            values = probe.values
            for param, value in (
                ("ApiUpstashTokenSecretName", upstash_server.token),
                ("ProcessorUpstashTokenSecretName", upstash_server.token),
                ("MonitorUpstashTokenSecretName", upstash_server.token),
                ("StripeApiKeySecretName", stripe_server.api_key),
                ("StripeWebhookSecretName", STRIPE_WEBHOOK_SECRET),
            ):
                secrets.create_secret(Name=values[param], SecretString=value)
            token_name = probe.resolve(
                TEMPLATE["Resources"]["ProcessorTokenSecret"]["Properties"]["Name"]
            )
            token = secrets.create_secret(Name=token_name, SecretString=PROCESSOR_TOKEN)
            boto3.client("ses").verify_domain_identity(Domain=values["SesIdentity"])
            yield parameters, {**tables, "ProcessorTokenSecret": token["ARN"]}


def _empty_tables(tables: dict[str, str]) -> None:
    dynamodb = boto3.resource("dynamodb")
    for logical, name in tables.items():
        if not logical.endswith("Table"):
            continue
        table = dynamodb.Table(name)
        keys = [k["AttributeName"] for k in table.key_schema]
        for page in boto3.client("dynamodb").get_paginator("scan").paginate(TableName=name):
            for item in page["Items"]:
                boto3.client("dynamodb").delete_item(TableName=name, Key={k: item[k] for k in keys})


@pytest.fixture
def deployed(
    monkeypatch: pytest.MonkeyPatch,
    stack: tuple[dict[str, str], dict[str, str]],
    stripe_server: StripeServer,
) -> dict[str, Resolver]:
    """A resolver per function for its environment: this case's own queue namespace,
    empty tables, fresh Powertools parameter caches."""
    parameters, refs = stack
    for name in (
        "POWERTOOLS_DEV",
        "POWERTOOLS_METRICS_DISABLED",
        "REDIS_URL",
        "UPSTASH_REDIS_REST_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)  # fmt: skip
    monkeypatch.setattr(parameters_base, "DEFAULT_PROVIDERS", {})
    monkeypatch.setenv("STRIPE_API_BASE", stripe_server.url)  # not in the template
    _empty_tables(refs)
    case = {**parameters, "JobsNamespace": f"events-{uuid.uuid4().hex[:10]}"}
    return {name: Resolver(TEMPLATE, case, refs) for name in FUNCTIONS}


def _fresh_caches(task_root: Path) -> None:
    """Clear every cached factory (``functools.cache``) of the function's modules: its
    ``app`` and its package beside it, every module loaded from its folder."""
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None)
        if source and Path(source).resolve().is_relative_to(task_root):
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()


def invoke(path: Path, resolvers: dict[str, Resolver], monkeypatch: pytest.MonkeyPatch) -> Any:
    folder = path.parent.name
    function = BY_FOLDER[folder]
    props = FUNCTIONS[function]
    resolver = resolvers[function]
    for var, value in resolver.resolve(props["Environment"]["Variables"]).items():
        monkeypatch.setenv(var, str(value))
    function_name = resolver.resolve(props["FunctionName"])
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", function_name)
    module_name, _, attribute = props["Handler"].rpartition(".")
    handler = getattr(importlib.import_module(f"functions.{folder}.{module_name}"), attribute)
    task_root = ROOT / "functions" / folder
    _fresh_caches(task_root)
    context = FakeLambdaContext(
        function_name=function_name,
        memory_limit_in_mb=int(props["MemorySize"]),
        invoked_function_arn=f"arn:aws:lambda:eu-west-1:123456789012:function:{function_name}",
        remaining_ms=int(props["Timeout"]) * 1000,
    )
    try:
        return handler(json.loads(path.read_text()), context)
    finally:
        _fresh_caches(task_root)


# -- the tests --------------------------------------------------------------------------------


def _check_http_response(response: Any, expect: dict[str, Any]) -> None:
    assert isinstance(response, dict), f"an HTTP API answer is an object, not {response!r}"
    status = response.get("statusCode")
    assert isinstance(status, int) and 100 <= status <= 599, f"statusCode {status!r}"
    headers = response.get("headers", {})
    assert isinstance(headers, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    assert isinstance(response.get("body", ""), str)
    assert isinstance(response.get("isBase64Encoded", False), bool)
    body = response.get("body")
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if body and "json" in content_type and not response.get("isBase64Encoded"):
        json.loads(body)
    if "statusCode" in expect:
        assert status == expect["statusCode"], f"status {status}, body {body!r}"
    else:
        assert status < 500, f"status {status} without a sidecar saying so: {body!r}"
    if "responseKeys" in expect:
        assert body, "responseKeys needs a body"
        assert set(expect["responseKeys"]) <= set(json.loads(body))


@pytest.mark.parametrize("path", event_files(), ids=case_id)
def test_sample_event_through_its_handler(
    path: Path, deployed: dict[str, Resolver], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = path.parent.name
    assert folder in BY_FOLDER, f"events/{folder}/ matches no function's CodeUri in template.yaml"
    app_file = ROOT / "functions" / folder / "app.py"
    if not app_file.is_file():
        pytest.fail(f"{path.relative_to(ROOT)}: {app_file.relative_to(ROOT)} does not exist")
    sidecar = path.with_name(path.stem + ".expect.json")
    expect = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    assert set(expect) <= SIDECAR_KEYS, f"{sidecar.name}: unknown keys {set(expect) - SIDECAR_KEYS}"
    event = json.loads(path.read_text())
    assert isinstance(event, dict), "a Lambda event file holds a JSON object"

    response = invoke(path, deployed, monkeypatch)

    if is_http(event):
        _check_http_response(response, expect)
    else:
        assert "statusCode" not in expect, "statusCode is for HTTP API events"
        json.dumps(response)  # Lambda must be able to serialise the answer
        if "responseKeys" in expect:
            assert isinstance(response, dict)
            assert set(expect["responseKeys"]) <= set(response)


def test_every_sidecar_belongs_to_an_event() -> None:
    for sidecar in EVENTS.glob("*/*.expect.json"):
        event = sidecar.with_name(sidecar.name.removesuffix(".expect.json") + ".json")
        assert event.is_file(), f"{sidecar.relative_to(ROOT)} has no event"


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_and_route_has_a_sample_event(function: str) -> None:
    props = FUNCTIONS[function]
    folder = EVENTS / function_folder(props)
    events = [json.loads(p.read_text()) for p in folder.glob("*.json")
              if not p.name.endswith(".expect.json")]  # fmt: skip
    assert events, f"no sample event in {folder.relative_to(ROOT)}/"
    route_keys = {e.get("routeKey") for e in events if is_http(e)}
    for name, source in props.get("Events", {}).items():
        if source["Type"] == "HttpApi":
            key = f"{source['Properties']['Method']} {source['Properties']['Path']}"
            assert key in route_keys, f"{function}: no sample event for route {key} ({name})"
        if source["Type"] == "Schedule":
            assert any(e.get("detail-type") == "Scheduled Event" for e in events), (
                f"{function}: no sample scheduled event"
            )
