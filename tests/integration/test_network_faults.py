"""The engine under real network faults: a TCP proxy in front of a real Redis holds one
request past the client's timeout (the resend overtakes it) or drops connections; the
Upstash stand-in holds one HTTP request before running it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from jobs_core import JobQueue, JobState, JobType, RedisBackend, Settings
from jobs_core.queue.backends.upstash import UpstashBackend
from jobs_core.queue.hints import hints_for

from tests.support.fault_proxy import FaultProxy
from tests.support.redis_server import RedisServer
from tests.support.upstash_server import UpstashServer

AUDIT = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}
TIMEOUT_S = 0.4
LATE_S = 1.2  # how long the original is held: past the timeout, and past the resend


@pytest.fixture
def proxy(redis_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(redis_url) as p:
        yield p


@pytest.fixture
def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def direct_queue(redis_url: str, namespace: str) -> JobQueue:
    return JobQueue(RedisBackend.from_url(redis_url, timeout_s=5), Settings(namespace=namespace))


def proxied_queue(proxy: FaultProxy, namespace: str) -> JobQueue:
    backend = RedisBackend.from_url(proxy.url, timeout_s=TIMEOUT_S)
    return JobQueue(backend, Settings(namespace=namespace, request_retries=2))


def upstash_queue(server: UpstashServer, namespace: str) -> JobQueue:
    backend = UpstashBackend.from_credentials(server.url, server.token, timeout_s=TIMEOUT_S)
    return JobQueue(backend, Settings(namespace=namespace, request_retries=2))


def wait_for_late_original(proxy: FaultProxy, count: int = 1) -> None:
    deadline = time.monotonic() + LATE_S * 4
    while proxy.late_deliveries < count and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # Redis runs it right after the proxy passes it on


def test_a_late_original_claim_leases_nothing_beyond_its_resend(
    redis_url: str, proxy: FaultProxy, namespace: str
) -> None:
    """48 jobs; the first claim's request is held past the timeout: the resend takes 16,
    then the original arrives, recognises the resend by its token, and takes nothing."""
    setup = direct_queue(redis_url, namespace)
    setup.enqueue_jobs([("audit_log_created", AUDIT)] * 48)
    queue = proxied_queue(proxy, namespace)
    queue.get_queue_stats()  # connect and load scripts outside the fault
    proxy.hold_next_request(LATE_S)
    claimed = queue.claim(16)
    wait_for_late_original(proxy)
    stats = setup.get_queue_stats()
    assert len(claimed) == 16
    assert (stats.running, stats.ready) == (16, 32)  # not 32 running under two tokens


def late_original_after_an_empty_resend(
    redis_url: str, proxy: FaultProxy, namespace: str, *, fill_memory: bool = False
) -> None:
    """The resend finds nothing due; then another processor releases a job (due again at
    its old due time, before the original's `now`) and the original arrives: it must not
    lease that job under a token whose caller has moved on."""
    setup = direct_queue(redis_url, namespace)
    setup.enqueue_job("audit_log_created", AUDIT)
    [held] = setup.claim(1)
    queue = proxied_queue(proxy, namespace)
    queue.get_queue_stats()
    if fill_memory:
        raw = redis.Redis.from_url(redis_url)
        raw.config_set("maxmemory-policy", "noeviction")
        raw.config_set("maxmemory", int(raw.info("memory")["used_memory"]) - 100_000)
        with pytest.raises(redis.ResponseError, match="maxmemory"):
            raw.set("one-more", "x")
    proxy.hold_next_request(LATE_S)
    assert queue.claim(16) == []
    setup.release(held)
    wait_for_late_original(proxy)
    stats = setup.get_queue_stats()
    assert (stats.running, stats.ready) == (0, 1)
    assert len(setup.claim(16)) == 1


def test_a_late_original_after_an_empty_resend_leases_nothing(
    redis_url: str, proxy: FaultProxy, namespace: str
) -> None:
    late_original_after_an_empty_resend(redis_url, proxy, namespace)


def test_a_late_original_after_an_empty_resend_under_a_full_redis_leases_nothing(
    namespace: str,
) -> None:
    """Out of memory (``noeviction``), Redis refuses a script's writes until it has made
    one: the empty resend makes one that needs no memory, so its fence goes in."""
    with RedisServer() as server, FaultProxy(server.url) as proxy:
        late_original_after_an_empty_resend(server.url, proxy, namespace, fill_memory=True)


def test_a_resend_after_the_original_ran_returns_its_jobs(
    upstash_server: UpstashServer, namespace: str
) -> None:
    """The original runs and only its answer is late: the resend returns the same jobs."""
    upstash_server.reset()
    queue = upstash_queue(upstash_server, namespace)
    ids = set(queue.enqueue_jobs([("audit_log_created", AUDIT)] * 5))
    upstash_server.delay_next(1, LATE_S)
    claimed = queue.claim(3)
    stats = queue.get_queue_stats()
    assert len(claimed) == 3 and {c.id for c in claimed} <= ids
    assert (stats.running, stats.ready) == (3, 2)
    for c in claimed:
        queue.complete(c)  # the resend holds the very leases the original took


def test_a_late_original_claim_over_upstash_leases_nothing_more(
    upstash_server: UpstashServer, namespace: str
) -> None:
    """Over HTTP: the request waits before it runs; the resend runs first."""
    upstash_server.reset()
    queue = upstash_queue(upstash_server, namespace)
    queue.enqueue_jobs([("audit_log_created", AUDIT)] * 48)
    upstash_server.delay_next(1, LATE_S, before_execute=True)
    claimed = queue.claim(16)
    time.sleep(LATE_S + 0.3)
    stats = queue.get_queue_stats()
    assert len(claimed) == 16
    assert (stats.running, stats.ready) == (16, 32)


def test_a_late_hinted_original_that_reads_no_record_leases_nothing_more(
    redis_url: str, proxy: FaultProxy, namespace: str
) -> None:
    """A kicked drain's first claim names two jobs whose records it holds and takes one:
    the resend takes it; the original arrives, would take the other without reading any
    key, and meets the resend's fence member first in its scan instead."""
    setup = direct_queue(redis_url, namespace)
    result = setup.enqueue_batch([(JobType.AUDIT_LOG_CREATED, AUDIT)] * 2, read_marker=True)
    hints = hints_for(result.queued)
    queue = proxied_queue(proxy, namespace)
    queue.get_queue_stats()
    proxy.hold_next_request(LATE_S)
    [claimed] = queue.claim_batch(1, hints=hints).jobs
    wait_for_late_original(proxy)
    stats = setup.get_queue_stats()
    assert (stats.running, stats.ready) == (1, 1)
    [other] = setup.claim(16)
    assert {claimed.id, other.id} == set(result.ids) and other.attempt == 1


def test_a_late_original_that_only_reaps_leases_nothing_beyond_its_resend(
    redis_url: str, proxy: FaultProxy, namespace: str
) -> None:
    """Two leases expired; the resend reaps and takes one (its limit), the original
    arrives and finds the other expired lease: it reads the resend's claim key in the same
    read as the lease's record, and leaves it for the next claim."""
    setup = direct_queue(redis_url, namespace)
    ids = setup.enqueue_jobs([("audit_log_created", AUDIT)] * 2)
    setup.claim(2, lease_s=0.3)  # their holder dies
    time.sleep(0.4)
    queue = proxied_queue(proxy, namespace)
    queue.get_queue_stats()
    proxy.hold_next_request(LATE_S)
    [first] = queue.claim(1)
    wait_for_late_original(proxy)
    [second] = setup.claim(16)  # not leased under the late original's token
    assert {first.id, second.id} == set(ids)
    assert first.attempt == second.attempt == 2


def test_an_expired_fence_is_removed_by_a_later_claim(
    redis_url: str, proxy: FaultProxy, namespace: str
) -> None:
    """A resend leaves its fence member in the timeline (a late original must meet it);
    once the lease it fenced is over, the next claim removes it with its own ZREM."""
    setup = direct_queue(redis_url, namespace)
    setup.enqueue_jobs([("audit_log_created", AUDIT)] * 2)
    queue = proxied_queue(proxy, namespace)
    queue.get_queue_stats()
    proxy.hold_next_request(LATE_S)
    assert len(queue.claim(1, lease_s=1)) == 1
    wait_for_late_original(proxy)
    raw = redis.Redis.from_url(redis_url, decode_responses=True)

    def fences() -> list[str]:
        return [m for m in raw.zrange(setup.keys.timeline, 0, -1) if m.startswith("!fence|")]

    assert len(fences()) == 1
    time.sleep(1.1)
    assert len(setup.claim(16)) == 2  # the expired lease, reaped, and the other job
    assert fences() == []


def test_a_late_original_settle_after_its_resend_changes_nothing(
    redis_url: str, proxy: FaultProxy, namespace: str
) -> None:
    setup = direct_queue(redis_url, namespace)
    job_id = setup.enqueue_job("audit_log_created", AUDIT)
    queue = proxied_queue(proxy, namespace)
    [claimed] = queue.claim(1)
    proxy.hold_next_request(LATE_S)
    queue.fail(claimed, "boom", delay_s=300)  # retry: the resend reschedules it
    wait_for_late_original(proxy)
    job = setup.get_job_status(job_id)
    assert job is not None and job.state is JobState.SCHEDULED and job.attempts == 1
    assert setup.get_queue_stats().scheduled == 1


def test_a_late_original_extend_cannot_shorten_a_later_extension(
    redis_url: str, proxy: FaultProxy, namespace: str
) -> None:
    setup = direct_queue(redis_url, namespace)
    setup.enqueue_job("audit_log_created", AUDIT)
    queue = proxied_queue(proxy, namespace)
    [claimed] = queue.claim(1, lease_s=30)
    proxy.hold_next_request(LATE_S)
    assert queue.extend_leases([claimed], 60) == [True]  # the original of this is late
    queue.extend_leases([claimed], 600)
    wait_for_late_original(proxy)
    raw = redis.Redis.from_url(redis_url, decode_responses=True)
    member = f"{claimed.job.type.value}|{claimed.id}|{claimed.token}"
    score = raw.zscore(setup.keys.timeline, member)
    assert score is not None and -score > setup.now_ms() + 500_000


def test_dropped_connections_are_resent_without_doubling(
    redis_url: str, proxy: FaultProxy, namespace: str
) -> None:
    setup = direct_queue(redis_url, namespace)
    queue = proxied_queue(proxy, namespace)
    queue.get_queue_stats()
    proxy.drop_connections()
    ids = queue.enqueue_jobs([("audit_log_created", AUDIT, {"dedupe_key": "k1"})] * 1)
    proxy.drop_connections()
    claimed = queue.claim(5)
    proxy.drop_connections()
    queue.complete(claimed[0])
    assert [c.id for c in claimed] == ids
    job = setup.get_job_status(ids[0])
    assert job is not None and job.state is JobState.SUCCEEDED
    assert setup.get_queue_stats().running == 0
