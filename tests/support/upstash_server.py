"""A local stand-in for Upstash's REST endpoint, in front of a real Redis.

It speaks the part of the protocol that the ``upstash_redis`` SDK uses:

* ``POST /`` with a JSON array command -> ``{"result": ...}``, or HTTP 400
  ``{"error": "<redis error text>"}``;
* ``POST /pipeline`` with an array of commands -> an array of
  ``{"result": ...}`` / ``{"error": ...}`` (HTTP 200 even if some failed);
* ``POST /multi-exec``: the same, inside MULTI/EXEC; a transaction that Redis
  discards (EXECABORT) is HTTP 400 ``{"error": ...}``;
* ``Authorization: Bearer <token>`` is required, else HTTP 401
  ``{"error": "Unauthorized"}``;
* with ``Upstash-Encoding: base64`` every string in a result is base64-encoded,
  except the status reply ``OK`` (which the SDK, like Upstash, leaves as is).

Tests can also make the next requests fail with a non-JSON body, delay them,
and count what arrived. Everything is thread-safe.

Example::

    with UpstashServer(redis_url, token="t") as server:
        client = upstash_redis.Redis(url=server.url, token=server.token)
        client.set("k", "v")
        server.fail_next(1, status=502)
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol, Self, cast

import redis
from local_stack.lifecycle import StartStopContext
from redis._parsers import _RESP2Parser

__all__ = ["BAD_GATEWAY_HTML", "UpstashServer"]

BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
    "<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)

# Commands that would change the state of a pooled connection (or never return)
# and that Upstash's REST API does not offer either.
_CONNECTION_STATE_COMMANDS = frozenset(
    {
        "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SELECT", "SUBSCRIBE",
        "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
        "MONITOR", "QUIT", "RESET", "HELLO", "AUTH",
    }
)  # fmt: skip

_MAX_BODY_BYTES = 64 * 1024 * 1024


class _VerbatimErrorParser(_RESP2Parser):
    """RESP2 parser that keeps Redis error text whole.

    redis-py strips the code of known errors ("NOSCRIPT No matching script"
    becomes "No matching script"); Upstash forwards the full text, and callers
    match on the code, so we keep it.
    """

    @classmethod
    def parse_error(cls, response: str) -> redis.ResponseError:
        return redis.ResponseError(response)


class _RawConnection(Protocol):
    """The few redis-py Connection methods we use, typed (redis-py leaves them untyped)."""

    def send_command(self, *args: bytes) -> None: ...
    def send_packed_command(self, command: list[bytes]) -> None: ...
    def pack_commands(self, commands: list[list[bytes]]) -> list[bytes]: ...
    def read_response(self) -> Any: ...
    def disconnect(self) -> None: ...


class _RequestError(Exception):
    """A request that Upstash would refuse before running any command."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class _Failure:
    status: int
    body: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class _Delay:
    seconds: float
    before_execute: bool


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, app: UpstashServer) -> None:
        self.app = app
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as httpx expects from Upstash; idle connections close after this.
    protocol_version = "HTTP/1.1"
    timeout = 30
    # Headers and body go out in two writes; with Nagle on, the client's delayed
    # ACK would add ~40 ms to every request.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_POST(self) -> None:
        self.server.app._handle(self)

    def do_GET(self) -> None:
        self._send_json(405, {"error": "only POST is supported by this test server"})

    def log_message(self, format: str, *args: Any) -> None:
        # The SDK is chatty; test output should not be.
        return

    def _send_json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (e.g. timed out on a delayed answer): nobody to tell.
            self.close_connection = True

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > _MAX_BODY_BYTES:
            raise _RequestError(413, "ERR request body too large for this test server")
        return self.rfile.read(length) if length else b""


class UpstashServer(StartStopContext):
    """Upstash REST protocol over HTTP on 127.0.0.1, backed by a real Redis.

    ``UpstashServer(redis_url, token)`` is a context manager; ``url`` is what
    the SDK takes as ``url=``. Fault injection: ``fail_next``, ``delay_next``;
    observation: ``request_count``, ``command_counts()``; ``reset()`` clears both.
    """

    def __init__(self, redis_url: str, token: str = "test-token") -> None:
        self._redis_url = redis_url
        self._token = token
        self._lock = threading.Lock()
        self._failures: deque[_Failure] = deque()
        self._delays: deque[_Delay] = deque()
        self._request_count = 0
        self._command_counts: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._pool: redis.ConnectionPool | None = None
        self._http: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def port(self) -> int:
        """The TCP port the HTTP server listens on."""
        if self._http is None:
            raise RuntimeError("UpstashServer is not started")
        port: int = self._http.server_address[1]
        return port

    @property
    def token(self) -> str:
        """The bearer token that requests must carry."""
        return self._token

    @property
    def redis_url(self) -> str:
        """The Redis this server forwards commands to."""
        return self._redis_url

    def start(self) -> Self:
        """Bind a free port and serve in a background thread."""
        if self._http is not None:
            raise RuntimeError("UpstashServer is already started")
        self._stopping.clear()
        # RESP2 explicitly: redis-py 8 defaults to RESP3, whose replies (maps,
        # doubles) Upstash's REST protocol never produces.
        self._pool = redis.ConnectionPool.from_url(
            self._redis_url, protocol=2, parser_class=_VerbatimErrorParser
        )
        self._http = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.05},  # so that stop() returns promptly
            name="upstash-test-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed requests and close the Redis connections."""
        self._stopping.set()
        http, self._http = self._http, None
        if http is not None:
            http.shutdown()
            http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.disconnect()

    # -- fault injection and observation ---------------------------------

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 502,
        body: str = BAD_GATEWAY_HTML,
        content_type: str = "text/html",
    ) -> None:
        """Answer the next ``count`` requests with ``status`` and ``body``, running nothing.

        The default imitates a gateway's HTML 502 page, which is not JSON.
        """
        failure = _Failure(status, body.encode(), content_type)
        with self._lock:
            self._failures.extend([failure] * count)

    def delay_next(self, count: int, seconds: float, *, before_execute: bool = False) -> None:
        """Hold the next ``count`` responses for ``seconds``.

        By default the commands run first and only the answer is late, so a client
        that times out cannot know whether its write happened.
        ``before_execute=True`` waits before running them instead.
        """
        delay = _Delay(seconds, before_execute)
        with self._lock:
            self._delays.extend([delay] * count)

    def clear_faults(self) -> None:
        """Drop pending failures and delays."""
        with self._lock:
            self._failures.clear()
            self._delays.clear()

    @property
    def request_count(self) -> int:
        """How many HTTP requests arrived, whatever their outcome."""
        with self._lock:
            return self._request_count

    def command_counts(self) -> dict[str, int]:
        """Requests per upper-cased first command name (for a pipeline: its first command)."""
        with self._lock:
            return dict(self._command_counts)

    def reset(self) -> None:
        """Clear faults and counters, e.g. between tests sharing one server."""
        with self._lock:
            self._failures.clear()
            self._delays.clear()
            self._request_count = 0
            self._command_counts.clear()

    # -- request handling --------------------------------------------------

    def _handle(self, request: _Handler) -> None:
        try:
            body = request._read_body()
        except _RequestError as exc:
            self._record(None)
            request._send_json(exc.status, {"error": exc.message})
            return
        path = request.path.split("?", 1)[0].rstrip("/")
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = None
        self._record(_first_command_name(path, payload))

        with self._lock:
            failure = self._failures.popleft() if self._failures else None
            delay = None if failure else (self._delays.popleft() if self._delays else None)
        if failure is not None:
            request._send(failure.status, failure.body, failure.content_type)
            return
        if delay is not None and delay.before_execute:
            self._stopping.wait(delay.seconds)

        status, answer = self._answer(request, path, payload)

        if delay is not None and not delay.before_execute:
            self._stopping.wait(delay.seconds)
        request._send_json(status, answer)

    def _record(self, command_name: str | None) -> None:
        with self._lock:
            self._request_count += 1
            if command_name:
                self._command_counts[command_name] += 1

    def _answer(self, request: _Handler, path: str, payload: Any) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Bearer {self._token}":
            return 401, {"error": "Unauthorized"}
        base64_encoded = (request.headers.get("Upstash-Encoding") or "").lower() == "base64"
        try:
            if path == "":
                result = self._run_single(_parse_command(payload))
                return 200, {"result": _to_json(result, base64_encoded)}
            if path == "/pipeline":
                replies = self._run_pipeline(_parse_batch(payload))
                return 200, [_entry(reply, base64_encoded) for reply in replies]
            if path == "/multi-exec":
                replies = self._run_transaction(_parse_batch(payload))
                return 200, [_entry(reply, base64_encoded) for reply in replies]
            return 404, {"error": f"ERR unknown endpoint {path!r}"}
        except _RequestError as exc:
            return exc.status, {"error": exc.message}
        except redis.ResponseError as exc:
            return 400, {"error": str(exc)}
        except redis.RedisError as exc:
            return 500, {"error": f"ERR the test server could not reach Redis: {exc}"}
        except Exception as exc:
            # A bug here must reach the test as an answer, not as a dropped connection.
            return 500, {"error": f"ERR test server failure: {exc!r}"}

    @contextlib.contextmanager
    def _connection(self) -> Iterator[_RawConnection]:
        pool = self._pool
        if pool is None:
            raise redis.ConnectionError("UpstashServer is stopped")
        pooled = pool.get_connection()
        connection = cast(_RawConnection, pooled)
        try:
            yield connection
        except redis.ResponseError:
            raise
        except BaseException:
            # The reply stream may be half read: never hand this socket out again.
            connection.disconnect()
            raise
        finally:
            pool.release(pooled)

    def _run_single(self, command: list[bytes]) -> Any:
        with self._connection() as connection:
            connection.send_command(*command)
            return connection.read_response()

    def _run_pipeline(self, commands: list[list[bytes]]) -> list[Any]:
        with self._connection() as connection:
            connection.send_packed_command(connection.pack_commands(commands))
            return [_read_reply(connection) for _ in commands]

    def _run_transaction(self, commands: list[list[bytes]]) -> list[Any]:
        with self._connection() as connection:
            batch = [[b"MULTI"], *commands, [b"EXEC"]]
            connection.send_packed_command(connection.pack_commands(batch))
            # MULTI's OK and each QUEUED (or a queue-time error, which makes
            # Redis answer EXEC with EXECABORT) are read and dropped.
            for _ in range(len(commands) + 1):
                _read_reply(connection)
            replies = connection.read_response()
        if not isinstance(replies, list):
            raise redis.ResponseError("EXECABORT Transaction discarded")
        return replies


def _read_reply(connection: _RawConnection) -> Any:
    try:
        return connection.read_response()
    except redis.ResponseError as exc:
        return exc


def _first_command_name(path: str, payload: Any) -> str | None:
    command = payload
    if path in ("/pipeline", "/multi-exec") and isinstance(payload, list) and payload:
        command = payload[0]
    if isinstance(command, list) and command and isinstance(command[0], str):
        return command[0].upper()
    return None


def _parse_batch(payload: Any) -> list[list[bytes]]:
    if not isinstance(payload, list) or not payload:
        raise _RequestError(400, "ERR the body must be a non-empty JSON array of commands")
    return [_parse_command(command) for command in payload]


def _parse_command(payload: Any) -> list[bytes]:
    if not isinstance(payload, list) or not payload:
        raise _RequestError(400, "ERR the body must be a non-empty JSON array command")
    command = [_argument(value) for value in payload]
    if command[0].decode(errors="replace").upper() in _CONNECTION_STATE_COMMANDS:
        raise _RequestError(400, f"ERR command {command[0]!r} is not supported over REST")
    return command


def _argument(value: Any) -> bytes:
    # The SDK sends str/int/float as JSON scalars and json.dumps everything else.
    # A bool is an int to Python but its meaning in Redis is unclear: refuse it so
    # the caller's bug shows up here rather than as a stored "True".
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _RequestError(400, f"ERR unsupported argument {value!r} in command")
    return str(value).encode()


def _entry(reply: Any, base64_encoded: bool) -> dict[str, Any]:
    if isinstance(reply, redis.ResponseError):
        return {"error": str(reply)}
    return {"result": _to_json(reply, base64_encoded)}


def _to_json(reply: Any, base64_encoded: bool) -> Any:
    """Turn a RESP2 reply (bytes, int, None, list, nested error) into Upstash JSON."""
    if isinstance(reply, bytes):
        if not base64_encoded:
            return reply.decode(errors="replace")
        # Upstash leaves the OK status reply readable; the SDK relies on it.
        return "OK" if reply == b"OK" else base64.b64encode(reply).decode()
    if isinstance(reply, list):
        return [_to_json(item, base64_encoded) for item in reply]
    if isinstance(reply, redis.ResponseError):
        # An error nested in an array (e.g. inside a Lua table) has no JSON form
        # in Upstash's protocol; its text is the most useful stand-in.
        return _to_json(str(reply).encode(), base64_encoded)
    if reply is None or isinstance(reply, int):
        return reply
    raise TypeError(f"unexpected Redis reply type {type(reply).__name__}")
