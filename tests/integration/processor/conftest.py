"""Processor integration tests: the session's real redis-server and a local slow HTTP server."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from jobs_core import JobQueue, RedisBackend, Settings

from tests.unit.processor.support import Gate


def redis_queue(url: str, namespace: str) -> JobQueue:
    return JobQueue(RedisBackend.from_url(url, timeout_s=5), Settings(namespace=namespace))


@pytest.fixture
def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def queue(redis_url: str, namespace: str) -> JobQueue:
    """A queue on the real Redis the session started, in a namespace of its own."""
    return redis_queue(redis_url, namespace)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs of a burst: 1 s client retransmits


class SlowServer:
    """A threaded HTTP server: every GET waits until ``target`` requests are in flight
    together (at most ``gate_timeout_s``), then sleeps ``delay_s`` and answers 200.

    The gate makes overlap a fact the server observes instead of a timing guess: with a
    pool of N and ``target`` N, every request is answered only because N were in flight
    at once (``timeouts`` stays 0), and a pool that broke its bound would show more than
    N in ``gate.max_in_flight``.
    """

    def __init__(self, delay_s: float, *, gate_timeout_s: float = 10.0) -> None:
        self.delay_s = delay_s
        self.target = 1
        self.gate_timeout_s = gate_timeout_s
        self.gate = Gate()
        self.timeouts = 0
        self.paths: list[str] = []
        self._cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer.gate:
                    outer.paths.append(self.path)
                    outer._wait_for_company()
                    time.sleep(outer.delay_s)
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _wait_for_company(self) -> None:
        with self._cond:
            self._cond.notify_all()
            reached = self._cond.wait_for(
                lambda: self.gate.in_flight >= self.target, timeout=self.gate_timeout_s
            )
            if not reached:
                self.timeouts += 1

    def __enter__(self) -> SlowServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def slow_server() -> Iterator[SlowServer]:
    with SlowServer(delay_s=0.2) as server:
        yield server
