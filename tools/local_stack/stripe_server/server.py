"""A local stand-in for the few Stripe API endpoints this project uses, over real HTTP.

The official SDK talks to it unchanged: point it there with
``StripeClient(api_key, base_addresses={"api": server.url})`` (or use
``server.client()``). The endpoints, form-encoded as the SDK sends them, and what they
do to the intents and refunds kept in memory, are ``api.StripeApi``'s.

Like Stripe:

* ``Authorization: Bearer <api_key>`` is required (401 otherwise);
* every response has a ``Request-Id`` header (``req_...``), echoed in error bodies;
* a POST's ``Idempotency-Key`` stores the response: a repeat with the same
  method, path and parameters gets the same status and body back, with
  ``Idempotent-Replayed: true``; the same key with other parameters is a 400
  ``idempotency_error``;
* errors are ``{"error": {"type", "code", "message", "param", "request_log_url"}}``.

Fault injection: ``fail_next(n, kind)`` makes the next ``n`` requests fail before
they reach the endpoint: ``"server_error"`` (500 ``api_error``) and
``"rate_limit"`` (429) are not stored under their idempotency key (Stripe had
not run the request), ``"card_error"`` (402 ``card_declined``) and
``"invalid_request"`` (400) are stored like any executed request's result.
``"lost_response"`` runs the request (and stores its result under the key) but
answers 500, as when Stripe acted and its answer never reached the caller.
``forget_idempotency_keys()`` simulates Stripe pruning keys after 24 hours.

Every request is recorded (``requests``), with its idempotency key, parsed
parameters, answer status and whether it was replayed. State lives in memory;
everything is thread-safe. The local stack also uses ``authorize`` (the buyer pays)
and ``find_intent`` (an escrow's intent).

Example::

    with StripeServer() as server:
        intent = server.create_payment_intent(10000, "usd")      # requires_capture
        client = server.client()
        client.v1.payment_intents.capture(intent["id"], options={"idempotency_key": "k1"})
        assert server.payment_intent(intent["id"])["status"] == "succeeded"
        assert [r.idempotency_key for r in server.requests] == ["k1"]
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlsplit

from ..lifecycle import StartStopContext
from .api import ApiError
from .outside import StripeOutside

__all__ = ["FaultKind", "RecordedRequest", "StripeServer"]

FaultKind = Literal["server_error", "rate_limit", "card_error", "invalid_request", "lost_response"]

_FAULTS: dict[str, tuple[int, str, str | None, str, bool]] = {
    # kind: (status, type, code, message, stored under the idempotency key)
    "server_error": (500, "api_error", None, "An unknown error occurred (injected).", False),
    "rate_limit": (
        429,
        "invalid_request_error",
        "rate_limit",
        "Too many requests (injected).",
        False,
    ),
    "card_error": (402, "card_error", "card_declined", "Your card was declined.", True),
    "invalid_request": (
        400,
        "invalid_request_error",
        "parameter_invalid",
        "Invalid request (injected).",
        True,
    ),
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int
    request_id: str
    replayed: bool = False
    fault: str | None = None


@dataclass
class _Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def _parse_form(body: str) -> dict[str, Any]:
    """``a[b]=1&c[0]=x`` -> ``{"a": {"b": "1"}, "c": ["x"]}`` (the SDK's encoding)."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                index = int(part)
                while len(node) <= index:
                    node.append(None)
                if last:
                    node[index] = value
                else:
                    if node[index] is None:
                        node[index] = [] if parts[i + 1].isdigit() else {}
                    node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, [] if parts[i + 1].isdigit() else {})
    return out


class StripeServer(StripeOutside, StartStopContext):
    """See the module docstring. Use as a context manager, or ``start()`` / ``stop()``."""

    def __init__(self, api_key: str = "sk_test_local", host: str = "127.0.0.1") -> None:
        super().__init__()
        self.api_key = api_key
        self._host = host
        self._idempotent: dict[str, tuple[str, str, dict[str, Any], _Response]] = {}
        self._faults: deque[tuple[str, str | None]] = deque()  # (kind, method of the target)
        self._requests: list[RecordedRequest] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        server = ThreadingHTTPServer((self._host, 0), self._handler_class())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="stripe-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the SDK's ``base_addresses["api"]``."""
        assert self._server is not None, "server not started"
        return f"http://{self._host}:{self._server.server_address[1]}"

    def client(self, *, max_network_retries: int = 0, **options: Any) -> Any:
        """A real ``stripe.StripeClient`` pointed at this server (no SDK retries by default)."""
        import stripe

        return stripe.StripeClient(
            self.api_key,
            base_addresses={"api": self.url},
            max_network_retries=max_network_retries,
            **options,
        )

    # --- test controls --------------------------------------------------------------

    def reset(self) -> None:
        """Forget all state, requests, keys and pending faults."""
        with self._lock:
            self._intents.clear()
            self._refunds.clear()
            self._charges.clear()
            self._disputes.clear()
            self._events.clear()
            self._idempotent.clear()
            self._faults.clear()
            self._requests.clear()
            self.clock = time.time

    def fail_next(self, n: int, kind: FaultKind, *, method: str | None = None) -> None:
        """Make the next ``n`` requests (of ``method`` only, if given) fail with ``kind``
        (see the module docstring)."""
        if kind not in _FAULTS and kind != "lost_response":
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.extend([(kind, method)] * n)

    def forget_idempotency_keys(self) -> None:
        """Drop stored idempotent responses, as Stripe does after 24 hours."""
        with self._lock:
            self._idempotent.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_suffix: str, method: str = "POST") -> list[RecordedRequest]:
        """Recorded requests whose path ends with ``path_suffix`` (e.g. ``"/capture"``)."""
        return [r for r in self.requests if r.method == method and r.path.endswith(path_suffix)]

    # --- HTTP -----------------------------------------------------------------------

    def _handle(self, method: str, raw_path: str, headers: Any, body: str) -> _Response:
        request_id = "req_" + secrets.token_hex(7)
        split = urlsplit(raw_path)
        path = split.path
        params = _parse_form(body if method == "POST" else split.query)
        key = headers.get("Idempotency-Key") if method == "POST" else None
        with self._lock:
            response, replayed, fault = self._respond(
                method, path, params, headers, key, request_id
            )
            response.headers.setdefault("Request-Id", request_id)
            self._requests.append(
                RecordedRequest(
                    method,
                    path,
                    params,
                    key,
                    response.status,
                    response.headers["Request-Id"],
                    replayed,
                    fault,
                )
            )
            return copy.deepcopy(response)

    def _respond(
        self,
        method: str,
        path: str,
        params: dict[str, Any],
        headers: Any,
        key: str | None,
        request_id: str,
    ) -> tuple[_Response, bool, str | None]:
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            error = ApiError(401, "invalid_request_error", "Invalid API Key provided.")
            return self._error(error, request_id), False, None
        if key is not None and key in self._idempotent:
            s_method, s_path, s_params, stored = self._idempotent[key]
            if (s_method, s_path, s_params) != (method, path, params):
                error = ApiError(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters they "
                    f"were first used with. Try using a key other than '{key}' if you meant to "
                    "execute a different request.",
                )
                return self._error(error, request_id), False, None
            replay = copy.deepcopy(stored)
            replay.headers["Idempotent-Replayed"] = "true"
            return replay, True, None
        fault = None
        if self._faults and self._faults[0][1] in (None, method):
            fault = self._faults.popleft()[0]
        if fault == "lost_response":
            executed, _, _ = self._respond(method, path, params, headers, key, request_id)
            lost = self._error(
                ApiError(500, "api_error", "The answer was lost (injected)."), request_id
            )
            return lost, False, f"lost_response (executed: {executed.status})"
        if fault is not None:
            status, type_, code, message, stored_too = _FAULTS[fault]
            response = self._error(ApiError(status, type_, message, code), request_id)
            if status == 429:
                response.headers["Retry-After"] = "1"
            if stored_too and key is not None:
                self._idempotent[key] = (method, path, params, response)
            return response, False, fault
        try:
            response = _Response(200, copy.deepcopy(self._route(method, path, params)))
        except ApiError as error:
            response = self._error(error, request_id)
        response.headers["Request-Id"] = request_id
        if key is not None:
            self._idempotent[key] = (method, path, params, copy.deepcopy(response))
        return response, False, None

    @staticmethod
    def _error(error: ApiError, request_id: str) -> _Response:
        body: dict[str, Any] = {
            "type": error.type,
            "message": error.message,
            "request_log_url": f"https://dashboard.stripe.com/test/logs/{request_id}",
        }
        if error.code:
            body["code"] = error.code
        if error.param:
            body["param"] = error.param
        return _Response(error.status, {"error": body}, {"Request-Id": request_id})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: with Nagle on, a keep-alive client's
            # delayed ACK holds the body back ~40 ms per request.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                response = server._handle(method, self.path, self.headers, body)
                payload = json.dumps(response.body).encode()
                self.send_response(response.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                with contextlib.suppress(OSError):
                    self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler
