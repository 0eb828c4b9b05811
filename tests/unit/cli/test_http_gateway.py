"""The gateway's routing, events and answers, without sockets (``HttpGateway.handle``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pytest
from local_stack.api_events import GatewayRoute, answer_from_result, build_event, flatten_claims
from local_stack.http_gateway import HttpGateway, LocalRequest


class Recorder:
    """A stand-in function: records each event and answers what it is told."""

    def __init__(self, name: str = "fn", answer: Any = None, error: Exception | None = None):
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.serial_calls: list[bool] = []
        self.answer = answer if answer is not None else {"statusCode": 200, "body": "{}"}
        self.error = error

    def invoke(self, event: Any, *, serial: bool = False) -> Any:
        self.events.append(event)
        self.serial_calls.append(serial)
        if self.error is not None:
            raise self.error
        return self.answer


def _authorizer(token: str) -> Mapping[str, Any]:
    if token != "good":
        raise ValueError("bad token")
    return {"sub": "u1", "roles": ["admin"], "exp": 123}


def _gateway(*routes: GatewayRoute, **kwargs: Any) -> HttpGateway:
    return HttpGateway(list(routes), authorizer=_authorizer, port=0, **kwargs)


def test_event_shape_is_http_api_payload_v2() -> None:
    route = GatewayRoute("POST", "/api/escrow/{id}", Recorder(), authorized=True)
    event = build_event(
        method="POST",
        raw_path="/api/escrow/e%201",
        raw_query="a=1&a=2&b=",
        headers=[
            ("Content-Type", "application/json"),
            ("X-Multi", "one"),
            ("x-multi", "two"),
            ("Cookie", "c1=v1; c2=v2"),
            ("User-Agent", "curl/8"),
        ],
        body=b'{"x": 1}',
        route=route,
        path_parameters={"id": "e 1"},
        claims={"sub": "u1", "roles": ["a", "b"]},
        source_ip="127.0.0.9",
        domain="127.0.0.1:3000",
        request_id="req-1",
        now=0.0,
    )
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /api/escrow/{id}"
    assert event["rawPath"] == "/api/escrow/e%201"
    assert event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"] == {
        "content-type": "application/json",
        "x-multi": "one,two",
        "user-agent": "curl/8",
    }
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["pathParameters"] == {"id": "e 1"}
    assert event["body"] == '{"x": 1}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/api/escrow/e%201",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.9",
        "userAgent": "curl/8",
    }
    assert context["requestId"] == "req-1"
    assert context["routeKey"] == "POST /api/escrow/{id}"
    assert context["stage"] == "$default"
    assert context["time"] == "01/Jan/1970:00:00:00 +0000"
    assert context["timeEpoch"] == 0
    assert context["authorizer"] == {
        "jwt": {"claims": {"sub": "u1", "roles": "[a b]"}, "scopes": None}
    }


def test_binary_body_is_base64_and_empty_body_is_absent() -> None:
    route = GatewayRoute("POST", "/x", Recorder())
    common: dict[str, Any] = dict(
        method="POST",
        raw_path="/x",
        raw_query="",
        route=route,
        path_parameters={},
        claims=None,
        source_ip="127.0.0.1",
        domain="h",
    )
    binary = build_event(
        headers=[("Content-Type", "application/octet-stream")], body=b"\x00\xff", **common
    )
    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\xff"
    assert "authorizer" not in binary["requestContext"]
    empty = build_event(headers=[], body=b"", **common)
    assert "body" not in empty
    assert "pathParameters" not in empty
    assert "queryStringParameters" not in empty


def test_flatten_claims_like_http_apis() -> None:
    assert flatten_claims({"a": ["x"], "b": True, "c": 5, "d": {"k": 1}}) == {
        "a": "[x]",
        "b": "true",
        "c": "5",
        "d": '{"k":1}',
    }


def test_answers_from_function_results() -> None:
    full = answer_from_result(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json", "X-A": "1"},
            "cookies": ["s=1"],
            "body": '{"ok": true}',
        }
    )
    assert full.status == 201
    assert ("X-A", "1") in full.headers
    assert ("Set-Cookie", "s=1") in full.headers
    assert full.body == b'{"ok": true}'
    encoded = answer_from_result(
        {"statusCode": 200, "body": base64.b64encode(b"\x01").decode(), "isBase64Encoded": True}
    )
    assert encoded.body == b"\x01"
    bare = answer_from_result({"hello": "world"})  # payload v2: a plain value is a 200 JSON
    assert (bare.status, json.loads(bare.body)) == (200, {"hello": "world"})


def test_route_matching_prefers_literal_paths() -> None:
    literal, param, greedy = Recorder("literal"), Recorder("param"), Recorder("greedy")
    gateway = _gateway(
        GatewayRoute("ANY", "/{proxy+}", greedy),
        GatewayRoute("GET", "/api/escrow/{id}", param),
        GatewayRoute("GET", "/api/escrow/special", literal),
    )
    gateway.handle("GET", "/api/escrow/special", [], b"")
    gateway.handle("GET", "/api/escrow/e1?x=1", [], b"")
    gateway.handle("DELETE", "/api/escrow/e1/deep", [], b"")
    assert len(literal.events) == len(param.events) == len(greedy.events) == 1
    assert param.events[0]["pathParameters"] == {"id": "e1"}
    assert param.events[0]["rawQueryString"] == "x=1"
    assert greedy.events[0]["pathParameters"] == {"proxy": "api/escrow/e1/deep"}
    assert param.serial_calls == [True]  # one request at a time per function


def test_jwt_authorizer_refuses_missing_and_bad_tokens() -> None:
    fn = Recorder()
    gateway = _gateway(GatewayRoute("POST", "/api/escrow", fn, authorized=True))
    for headers in ([], [("Authorization", "Bearer bad")], [("Authorization", "Basic good")]):
        answer = gateway.handle("POST", "/api/escrow", headers, b"{}")
        assert answer.status == 401
        assert json.loads(answer.body) == {"message": "Unauthorized"}
    assert fn.events == []
    ok = gateway.handle("POST", "/api/escrow", [("Authorization", "Bearer good")], b"{}")
    assert ok.status == 200
    claims = fn.events[0]["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims == {"sub": "u1", "roles": "[admin]", "exp": "123"}


def test_routes_without_authorizer_get_no_claims() -> None:
    fn = Recorder()
    gateway = _gateway(GatewayRoute("POST", "/api/stripe/webhook", fn))
    gateway.handle("POST", "/api/stripe/webhook", [("Authorization", "Bearer good")], b"{}")
    assert "authorizer" not in fn.events[0]["requestContext"]


def test_not_found_and_function_errors() -> None:
    gateway = _gateway(
        GatewayRoute("GET", "/boom", Recorder(error=RuntimeError("x"))),
        GatewayRoute("GET", "/garbage", Recorder(answer={"statusCode": "nope"})),
    )
    missing = gateway.handle("GET", "/nowhere", [], b"")
    assert (missing.status, json.loads(missing.body)) == (404, {"message": "Not Found"})
    assert gateway.handle("POST", "/boom", [], b"").status == 404  # wrong method
    boom = gateway.handle("GET", "/boom", [], b"")
    assert (boom.status, json.loads(boom.body)) == (500, {"message": "Internal Server Error"})
    assert gateway.handle("GET", "/garbage", [], b"").status == 500


def test_local_routes_and_the_lambda_invoke_api() -> None:
    seen: list[tuple[str, bytes, str]] = []

    def invoke(name: str, payload: bytes, kind: str) -> tuple[int, bytes]:
        seen.append((name, payload, kind))
        return 202, b""

    def pay(request: LocalRequest) -> tuple[int, Any]:
        return 200, {"got": request.json(), "q": request.query}

    gateway = _gateway(local_routes={("POST", "/_local/pay"): pay}, lambda_invoke=invoke)
    answer = gateway.handle("POST", "/_local/pay?x=1", [], b'{"a": 1}')
    assert json.loads(answer.body) == {"got": {"a": 1}, "q": {"x": "1"}}
    kicked = gateway.handle(
        "POST",
        "/2015-03-31/functions/stk-job-processor/invocations",
        [("X-Amz-Invocation-Type", "Event")],
        b'{"source": "escrow-jobs.kick"}',
    )
    assert kicked.status == 202
    assert seen == [("stk-job-processor", b'{"source": "escrow-jobs.kick"}', "Event")]


@pytest.mark.parametrize("header", ["bearer good", "good", "Bearer  good "])
def test_token_forms_api_gateway_accepts(header: str) -> None:
    fn = Recorder()
    gateway = _gateway(GatewayRoute("GET", "/x", fn, authorized=True))
    assert gateway.handle("GET", "/x", [("authorization", header)], b"").status == 200
