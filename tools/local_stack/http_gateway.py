"""A local stand-in for API Gateway's HTTP API: real HTTP in, payload-v2 Lambda events out.

Each request is matched against the template's routes, turned into the event API
Gateway would send, and handed to the route's function with a fresh Lambda context;
the function's answer is turned back into HTTP as API Gateway does (``api_events``).

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

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .api_events import GatewayRoute, HttpAnswer, answer_from_result, build_event

log = logging.getLogger("local_stack.gateway")


class _Server(ThreadingHTTPServer):
    """A thread per connection, and a normal listen backlog: the default 5 reset
    connections of a burst of clients before any thread could accept them."""

    daemon_threads = True
    request_queue_size = 128


MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
LAMBDA_INVOKE = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")

Authorizer = Callable[[str], Mapping[str, Any]]  # token -> claims; raises when invalid
LambdaInvoke = Callable[[str, bytes, str], tuple[int, bytes]]  # name, payload, type


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
            server = _Server((self._host, self._port), self._handler_class())
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
                # The route, never the query: a token sent as ?access_token= stays out.
                route = urlsplit(self.path).path
                log.info("%s %s %s %.0fms", self.command, route, answer.status, elapsed)

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
