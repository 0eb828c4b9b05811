"""The Upstash backend at the SDK's edges, against the REST stand-in over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import redis
from jobs_core import BackendError, JobQueue, JobState, ManualClock, Settings
from jobs_core.queue import scripts
from jobs_core.queue.backends.upstash import UpstashBackend

from tests.support.upstash_server import UpstashServer

RELEASE = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 10000}
TIMEOUT_S = 0.5


@pytest.fixture
def upstash(upstash_server: UpstashServer) -> Iterator[UpstashServer]:
    upstash_server.reset()
    yield upstash_server
    upstash_server.reset()


def make_queue(server: UpstashServer, *, token: str | None = None, retries: int = 2) -> JobQueue:
    settings = Settings(namespace=f"t-{uuid.uuid4().hex[:8]}", request_retries=retries)
    backend = UpstashBackend.from_credentials(
        server.url, token or server.token, timeout_s=TIMEOUT_S
    )
    return JobQueue(backend, settings, clock=ManualClock())


def count_jobs(server: UpstashServer, queue: JobQueue) -> int:
    raw = redis.Redis.from_url(server.redis_url, decode_responses=True)
    return len(list(raw.scan_iter(match=queue.keys.job("*"))))


def test_unknown_script_falls_back_to_eval_once(upstash: UpstashServer) -> None:
    queue = make_queue(upstash)
    redis.Redis.from_url(upstash.redis_url).script_flush()
    queue.enqueue_job("send_release_email", RELEASE)
    queue.enqueue_job("send_release_email", RELEASE)
    counts = upstash.command_counts()
    assert counts.get("EVAL") == 1  # the first call: EVALSHA → NOSCRIPT → EVAL
    assert counts.get("EVALSHA") == 2


def test_html_error_page_is_a_typed_error_with_the_status(upstash: UpstashServer) -> None:
    queue = make_queue(upstash, retries=0)
    upstash.fail_next(1, status=502)
    with pytest.raises(BackendError) as info:
        queue.enqueue_job("send_release_email", RELEASE)
    assert info.value.backend == "upstash" and info.value.status == 502 and info.value.transient
    assert "upstash" in str(info.value)
    assert count_jobs(upstash, queue) == 0


def test_transient_failure_is_resent_quickly(
    upstash: UpstashServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = make_queue(upstash, retries=2)
    queue.enqueue_job("send_release_email", RELEASE)  # loads the enqueue script
    paused: list[float] = []
    monkeypatch.setattr(scripts, "time", SimpleNamespace(sleep=paused.append))
    upstash.reset()
    upstash.fail_next(2, status=503)
    job_id = queue.enqueue_job("send_release_email", {**RELEASE, "transactionId": "esc-2"})
    # Resent: two refused requests, then the one that ran, each a single EVALSHA.
    assert upstash.request_count == 3
    assert upstash.command_counts() == {"EVALSHA": 3}
    # Quickly: our short pauses between resends, not the SDK's fixed 3 s sleep.
    assert paused == list(scripts.RESEND_DELAYS_S[:2])
    assert sum(paused) < 0.5
    assert count_jobs(upstash, queue) == 2  # the resent enqueue wrote its job once
    status = queue.get_job_status(job_id)
    assert status is not None and status.state is JobState.QUEUED


def test_wrong_token_is_a_clear_permanent_error(upstash: UpstashServer) -> None:
    queue = make_queue(upstash, token="wrong")
    with pytest.raises(BackendError) as info:
        queue.get_queue_stats()
    assert not info.value.transient and "Unauthorized" in str(info.value)
    assert upstash.request_count == 1  # not resent


def test_unreachable_upstash_names_the_backend() -> None:
    backend = UpstashBackend.from_credentials("http://127.0.0.1:9", "t", timeout_s=TIMEOUT_S)
    queue = JobQueue(backend, Settings(request_retries=0))
    with pytest.raises(BackendError) as info:
        queue.get_queue_stats()
    assert info.value.backend == "upstash" and info.value.transient
    assert isinstance(info.value.__cause__, Exception)


def test_a_timeout_does_not_hang_and_a_resent_enqueue_writes_one_job(
    upstash: UpstashServer,
) -> None:
    queue = make_queue(upstash)
    queue.get_queue_stats()
    # The command runs, but its answer arrives after the client gave up: the client resends.
    upstash.delay_next(1, TIMEOUT_S * 3)
    spec = ("send_release_email", RELEASE, {"dedupe_key": "esc-1-release"})
    result = queue.enqueue_batch([spec])
    [job_id] = result.ids
    assert result.duplicates == [False]  # the resend found its own record, not a twin
    counts = upstash.command_counts()
    assert counts["EVALSHA"] + counts.get("EVAL", 0) >= 2, counts  # sent, then resent
    assert count_jobs(upstash, queue) == 1
    assert queue.get_queue_stats().ready == 1
    assert queue.get_job_status(job_id) is not None


def test_a_resent_claim_returns_the_same_jobs(upstash: UpstashServer) -> None:
    queue = make_queue(upstash)
    ids = {queue.enqueue_job("send_release_email", RELEASE) for _ in range(3)}
    upstash.delay_next(1, TIMEOUT_S * 3)
    claimed = queue.claim(2)
    assert len(claimed) == 2 and {c.id for c in claimed} <= ids
    stats = queue.get_queue_stats()
    assert (stats.ready, stats.running) == (1, 2)  # not 0 ready and 3 running


def test_a_resent_complete_succeeds_instead_of_reporting_a_lost_lease(
    upstash: UpstashServer,
) -> None:
    queue = make_queue(upstash)
    job_id = queue.enqueue_job("send_release_email", RELEASE)
    [claimed] = queue.claim(1)
    upstash.delay_next(1, TIMEOUT_S * 3)
    queue.complete(claimed)
    assert queue.get_job_status(job_id).state is JobState.SUCCEEDED  # type: ignore[union-attr]
