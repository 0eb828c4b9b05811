"""A local stand-in for API Gateway's HTTP API: real HTTP in, payload-v2 Lambda events out.

Each request is matched against the template's routes (most specific first, ``{name}``
and ``{name+}`` path parameters), turned into the event API Gateway would send
(``version`` 2.0, ``routeKey``, ``rawPath``, ``rawQueryString``, ``cookies``, lower-cased
``headers`` with repeated headers comma-joined, ``queryStringParameters``,
``pathParameters``, ``requestContext.http``, ``body`` with ``isBase64Encoded``), and
handed to the route's function with a fresh Lambda context. The function's answer is
turned back into HTTP as API Gateway does (``statusCode``/``headers``/``cookies``/
``body``/``isBase64Encoded``, or any other value as a 200 JSON body).

Like API Gateway:

- a route behind the JWT authorizer needs ``Authorization: Bearer <token>``; the
  ``authorizer`` callable verifies it (HS256 dev tokens locally) and its claims reach the
  function as ``requestContext.authorizer.jwt.claims``, every value a string (arrays
  as ``"[a b]"``), as HTTP APIs pass them; missing or invalid: 401
  ``{"message":"Unauthorized"}`` and the function is not called;
- no route: 404 ``{"message":"Not Found"}``; a body over 10 MiB: 413; a function that
  raises: 500 ``{"message":"Internal Server Error"}`` (the traceback goes to the log).

Two local extras: ``local_routes`` (e.g. ``POST /_local/stripe/pay``) answered by plain
Python callables, and the Lambda ``Invoke`` API (``POST /2015-03-31/functions/{name}/
invocations``), so boto3 clients pointed here with ``AWS_ENDPOINT_URL_LAMBDA`` (the
processor kick and fan-out) reach ``lambda_invoke``.

    gateway = HttpGateway(routes, authorizer=verify_claims, port=3000).start()
    ...
    gateway.stop()
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from .template import ACCOUNT_ID

log = logging.getLogger("local_stack.gateway")

MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")

Authorizer = Callable[[str], Mapping[str, Any]]  # token -> claims; raises when invalid
LambdaInvoke = Callable[[str, bytes, str], tuple[int, bytes]]  # name, payload, type


class Invocable(Protocol):
    @property
    def name(self) -> str: ...

    def invoke(self, event: Any, *, serial: bool = False) -> Any: ...


@dataclass(frozen=True, slots=True)
class LocalRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


LocalHandler = Callable[[LocalRequest], tuple[int, Any]]


@dataclass(frozen=True, slots=True)
class GatewayRoute:
    method: str  # GET, POST, ... or ANY
    path: str  # /api/escrow/{id}
    function: Invocable
    authorized: bool = False
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", _compile(self.path))

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in ("ANY", method):
            return None
        found = self._pattern.fullmatch(path)
        return None if found is None else {k: unquote(v) for k, v in found.groupdict().items()}

    @property
    def specificity(self) -> tuple[int, int, int]:
        """Sort key: literal routes first, then fewer parameters, then greedy last."""
        greedy = int("+}" in self.path)
        return (greedy, self.path.count("{"), -len(self.path.split("/")))


def _compile(path: str) -> re.Pattern[str]:
    out = []
    for part in re.split(r"(\{[^}]+\})", path):
        if part.startswith("{") and part.endswith("+}"):
            out.append(f"(?P<{part[1:-2]}>.+)")
        elif part.startswith("{") and part.endswith("}"):
            out.append(f"(?P<{part[1:-1]}>[^/]+)")
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def flatten_claims(claims: Mapping[str, Any]) -> dict[str, str]:
    """Claims as HTTP APIs hand them over: strings, arrays as ``"[a b]"``.

    >>> flatten_claims({"sub": "u1", "roles": ["admin", "ops"], "exp": 17})
    {'sub': 'u1', 'roles': '[admin ops]', 'exp': '17'}
    """
    out = {}
    for key, value in claims.items():
        if isinstance(value, list | tuple):
            out[key] = "[" + " ".join(str(v) for v in value) + "]"
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, dict):
            out[key] = json.dumps(value, separators=(",", ":"))
        else:
            out[key] = str(value)
    return out


_TEXT_TYPES = ("json", "xml", "javascript", "x-www-form-urlencoded", "yaml", "csv")


def _is_text(content_type: str, body: bytes) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind and not (kind.startswith("text/") or any(t in kind for t in _TEXT_TYPES)):
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    route: GatewayRoute,
    path_parameters: Mapping[str, str],
    claims: Mapping[str, Any] | None,
    source_ip: str,
    domain: str,
    api_id: str = "local",
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The HTTP API payload-v2 event for one request."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies += [c.strip() for c in value.split(";") if c.strip()]
            continue
        merged[key] = f"{merged[key]},{value}" if key in merged else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    stamp = time.time() if now is None else now
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id or uuid.uuid4().hex[:16],
        "routeKey": route.route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(stamp)),
        "timeEpoch": int(stamp * 1000),
    }
    if claims is not None:
        context["authorizer"] = {"jwt": {"claims": flatten_claims(claims), "scopes": None}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": context,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        if _is_text(merged.get("content-type", ""), body):
            event["body"] = body.decode("utf-8")
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def answer_from_result(result: Any) -> HttpAnswer:
    """A function's return value as API Gateway turns it into HTTP (payload format 2.0)."""
    if isinstance(result, Mapping) and "statusCode" in result:
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers += [(str(name), str(v)) for v in values]
        headers += [("Set-Cookie", str(c)) for c in result.get("cookies") or []]
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(raw)
        else:
            body = str(raw).encode("utf-8")
        return HttpAnswer(int(result["statusCode"]), headers, body)
    body = json.dumps(result).encode() if not isinstance(result, str) else result.encode()
    return HttpAnswer(200, [("Content-Type", "application/json")], body)


def _json_answer(status: int, data: Any, headers: Sequence[tuple[str, str]] = ()) -> HttpAnswer:
    body = json.dumps(data).encode()
    return HttpAnswer(status, [("Content-Type", "application/json"), *headers], body)


class HttpGateway:
    """Serves ``routes`` on ``host:port`` (port 0: any free port) on its own threads."""

    def __init__(
        self,
        routes: Sequence[GatewayRoute],
        *,
        authorizer: Authorizer | None = None,
        host: str = "127.0.0.1",
        port: int = 3000,
        local_routes: Mapping[tuple[str, str], LocalHandler] | None = None,
        lambda_invoke: LambdaInvoke | None = None,
        api_id: str = "local",
    ) -> None:
        self.routes = sorted(routes, key=lambda r: r.specificity)
        self.authorizer = authorizer
        self.local_routes = dict(local_routes or {})
        self.lambda_invoke = lambda_invoke
        self.api_id = api_id
        self._host = host
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def bind(self) -> HttpGateway:
        """Take the port (raises ``OSError`` when it is in use) without serving yet."""
        if self._server is None:
            server = ThreadingHTTPServer((self._host, self._port), self._handler_class())
            server.daemon_threads = True
            self._server = server
        return self

    def start(self) -> HttpGateway:
        """Bind (if not yet) and serve on a thread of its own."""
        server = self.bind()._server
        assert server is not None
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="http-gateway"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        assert self._server is not None, "gateway not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- one request --------------------------------------------------------------------

    def handle(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        *,
        source_ip: str = "127.0.0.1",
    ) -> HttpAnswer:
        """Route one request and produce the answer (the HTTP server calls this)."""
        parts = urlsplit(target)
        path = parts.path or "/"
        lowered = {k.lower(): v for k, v in headers}
        local = self.local_routes.get((method, path))
        if local is not None:
            status, data = local(
                LocalRequest(method, path, dict(parse_qsl(parts.query)), lowered, body)
            )
            return _json_answer(status, data)
        invoke = LAMBDA_INVOKE.match(path)
        if invoke and method == "POST" and self.lambda_invoke is not None:
            kind = lowered.get("x-amz-invocation-type", "RequestResponse")
            status, payload = self.lambda_invoke(unquote(invoke.group(1)), body, kind)
            return HttpAnswer(status, [("Content-Type", "application/json")], payload)
        for route in self.routes:
            params = route.match(method, path)
            if params is None:
                continue
            claims = None
            if route.authorized:
                claims = self._claims(lowered.get("authorization"))
                if claims is None:
                    return _json_answer(
                        401, {"message": "Unauthorized"}, [("www-authenticate", "Bearer")]
                    )
            event = build_event(
                method=method,
                raw_path=path,
                raw_query=parts.query,
                headers=headers,
                body=body,
                route=route,
                path_parameters=params,
                claims=claims,
                source_ip=source_ip,
                domain=lowered.get("host", f"{self._host}:{self._port}"),
                api_id=self.api_id,
            )
            try:
                result = route.function.invoke(event, serial=True)
            except Exception:
                log.exception("%s raised on %s %s", route.function.name, method, path)
                return _json_answer(500, {"message": "Internal Server Error"})
            try:
                return answer_from_result(result)
            except (TypeError, ValueError):
                log.exception("%s returned a malformed response", route.function.name)
                return _json_answer(500, {"message": "Internal Server Error"})
        return _json_answer(404, {"message": "Not Found"})

    def _claims(self, authorization: str | None) -> Mapping[str, Any] | None:
        if self.authorizer is None or not authorization:
            return None
        token = authorization.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            return self.authorizer(token)
        except Exception as exc:  # any reason the token fails: 401, as API Gateway answers
            log.info("refused a token: %s", type(exc).__name__)
            return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "escrow-jobs-local-gateway"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # one access line per request below instead

            def _serve(self) -> None:
                started = time.monotonic()
                body = self._read_body()
                if body is None:
                    answer = _json_answer(413, {"message": "Request Entity Too Large"})
                    self.close_connection = True
                else:
                    answer = gateway.handle(
                        self.command,
                        self.path,
                        list(self.headers.items()),
                        body,
                        source_ip=self.client_address[0],
                    )
                self.send_response(answer.status)
                names = {k.lower() for k, _ in answer.headers}
                for name, value in answer.headers:
                    self.send_header(name, value)
                if "content-type" not in names and answer.body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)
                elapsed = (time.monotonic() - started) * 1000
                log.info("%s %s %s %.0fms", self.command, self.path, answer.status, elapsed)

            def _read_body(self) -> bytes | None:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks, size = [], 0
                    while True:
                        length = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                        if length == 0:
                            self.rfile.readline()
                            break
                        size += length
                        if size > MAX_BODY_BYTES:
                            return None
                        chunks.append(self.rfile.read(length))
                        self.rfile.readline()
                    return b"".join(chunks)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    return None
                return self.rfile.read(length) if length else b""

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

        return Handler
