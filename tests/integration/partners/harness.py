"""Partners for the partner-gate tests: a real Redis queue on a manual clock, the real
webhook handlers, processors, and real local HTTP endpoints.

The queue's clock (leases, retry schedule, rate, circuit) is a ``ManualClock`` the test
moves; the handlers sign with the real time, so the receivers' reference verifier accepts
the deliveries whatever the queue's clock says.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jobs_core import JobQueue, ManualClock, Processor, RedisBackend, Settings
from jobs_core.workers import WorkerDeps, build_handlers
from jobs_core.workers.effects import MemoryEffectLedger

from tests.support.webhook_receiver import WebhookReceiver

STATUS = "webhook_escrow_status_changed"


def env_name(ref: str) -> str:
    return ref.upper().replace("-", "_")


class Partners:
    """One queue namespace, a processor factory and the partners' secrets."""

    def __init__(self, redis_url: str, **settings: Any) -> None:
        self.clock = ManualClock(start_ms=int(time.time() * 1000))
        settings.setdefault("partner_rate_per_s", 1000)  # the rate's own test sets its own
        self.settings = Settings(namespace=f"p-{uuid.uuid4().hex[:10]}", **settings)
        self.redis_url = redis_url
        self.queue = self.new_queue()
        self.secrets: dict[str, str] = {}
        self.processors: list[Processor] = []

    def new_queue(self) -> JobQueue:
        backend = RedisBackend.from_url(self.redis_url, timeout_s=5)
        return JobQueue(backend, self.settings, clock=self.clock)

    def partner(self, ref: str, endpoint: WebhookReceiver | CountingEndpoint) -> None:
        """Give partner ``ref`` the endpoint's secret (looked up as an environment value)."""
        self.secrets[env_name(ref)] = endpoint.secret

    def processor(self, concurrency: int = 8) -> Processor:
        """A processor of its own (own queue client, own pool), as another Lambda would be."""
        deps = WorkerDeps(
            webhook_allow_local=True,
            environ=self.secrets,
            effect_ledger=MemoryEffectLedger(),
        )
        processor = Processor(self.new_queue(), build_handlers(deps), concurrency=concurrency)
        self.processors.append(processor)
        return processor

    def close(self) -> None:
        for processor in self.processors:
            processor.close()

    def status(self, ref: str, url: str, escrow: str, version: int | None = 1) -> str:
        payload: dict[str, Any] = {
            "transactionId": escrow,
            "status": "funded",
            "webhookUrl": url,
            "webhookSecretRef": ref,
        }
        if version is not None:
            payload["escrowVersion"] = version
        return self.queue.enqueue_job(STATUS, payload)

    def run(self, processor: Processor, *, step_s: float = 0.01, quiet_rounds: int = 3) -> int:
        """Process batches until ``quiet_rounds`` in a row find nothing, moving the clock by
        ``step_s`` each round (jobs the gate hands back are due a millisecond later).
        Returns the number of jobs run."""
        ran, quiet = 0, 0
        while quiet < quiet_rounds:
            results = processor.process_batch(limit=16).results
            ran += len(results)
            quiet = 0 if results else quiet + 1
            self.clock.advance(step_s)
        return ran

    def attempts(self, job_id: str) -> int:
        job = self.queue.get_job_status(job_id)
        assert job is not None
        return job.attempts


def versions(receiver: WebhookReceiver) -> list[int]:
    return [d.payload["data"]["version"] for d in receiver.accepted]


class CountingEndpoint:
    """A partner endpoint that answers 200 after ``delay_s`` and counts requests in flight
    at once (``max_in_flight``) and in all (``requests``). Thread-safe."""

    def __init__(self, delay_s: float) -> None:
        self.secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.delay_s = delay_s
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.ids: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = json.loads(self.rfile.read(length))
                with outer._lock:
                    outer.requests += 1
                    outer.in_flight += 1
                    outer.max_in_flight = max(outer.max_in_flight, outer.in_flight)
                    outer.ids.append(str(self.headers.get("webhook-id")))
                time.sleep(outer.delay_s)
                with outer._lock:
                    outer.in_flight -= 1
                del body
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def run_together(
    partners: Partners, processors: Iterable[Processor], *, seconds: float, tick: bool = True
) -> None:
    """Run several processors at once, each in its own thread, for about ``seconds``; the
    queue's clock follows the wall clock (``tick``) or stands still."""
    stop = time.monotonic() + seconds
    errors: list[BaseException] = []

    def loop(processor: Processor) -> None:
        try:
            while time.monotonic() < stop:
                if not processor.process_batch(limit=16).results:
                    time.sleep(0.02)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def ticker() -> None:  # the queue's clock follows the wall clock, in 10 ms steps
        while time.monotonic() < stop:
            time.sleep(0.01)
            partners.clock.advance(0.01)

    threads = [threading.Thread(target=loop, args=(p,)) for p in processors]
    if tick:
        threads.append(threading.Thread(target=ticker))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
