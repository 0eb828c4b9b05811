"""One behaviour suite, every backend: fakeredis, redis-py on a real redis-server, the
real upstash-redis SDK over HTTP in front of that same server, and redis-py on a real
3-master Redis Cluster reached through a node that does not own the queue's slot."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import fakeredis
import pytest
import redis
from jobs_core import JobQueue, ManualClock, RedisBackend, Settings
from jobs_core.queue.backends.base import Backend
from jobs_core.queue.backends.counting import CountingBackend
from jobs_core.queue.backends.upstash import UpstashBackend
from jobs_core.queue.keys import QueueKeys

from tests.support.redis_cluster import RedisClusterServers
from tests.support.upstash_server import UpstashServer

# The cluster's tests share one xdist worker (and so one cluster) with tests/integration/cluster.
BACKENDS = [
    "memory",
    "redis",
    "upstash",
    pytest.param("cluster", marks=pytest.mark.xdist_group("redis-cluster")),
]


class QueueRig:
    """A queue under test plus a raw redis-py view of the same data."""

    def __init__(
        self,
        queue: JobQueue,
        counter: CountingBackend,
        raw: redis.Redis | redis.RedisCluster,
        clock: ManualClock,
    ) -> None:
        self.queue = queue
        self.counter = counter
        self.raw: redis.Redis = raw  # type: ignore[assignment] (both serve these calls)
        self.clock = clock

    def keys_written(self) -> list[str]:
        return sorted(self.raw.scan_iter(match=self.queue.keys.prefix + "*"))


@pytest.fixture(scope="session")
def memory_server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


def make_rig(
    kind: str,
    request: pytest.FixtureRequest,
    *,
    settings: Settings | None = None,
) -> Iterator[QueueRig]:
    base = settings or Settings()
    # A unique namespace per test isolates it without flushing anything.
    values = {f: getattr(base, f) for f in base.__dataclass_fields__}
    values["namespace"] = f"t-{uuid.uuid4().hex[:10]}"
    values["backend"] = "memory"
    settings = Settings(**values)
    raw: redis.Redis | redis.RedisCluster
    if kind == "memory":
        server = request.getfixturevalue("memory_server")
        raw = fakeredis.FakeRedis(server=server, decode_responses=True)
        inner: Backend = RedisBackend(
            fakeredis.FakeRedis(server=server, decode_responses=True),
            name="memory",
            read_only_scripts=False,
        )
    elif kind == "redis":
        url = request.getfixturevalue("redis_url")
        raw = redis.Redis.from_url(url, decode_responses=True)
        inner = RedisBackend.from_url(url, timeout_s=5)
    elif kind == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        # As a configuration endpoint would: a node that answers MOVED for this queue.
        url = cluster.url_not_owning(QueueKeys(settings.namespace).timeline)
        raw = redis.RedisCluster.from_url(url, decode_responses=True)
        inner = RedisBackend.from_url(url, timeout_s=5)  # cluster mode detected at connect
    else:
        up: UpstashServer = request.getfixturevalue("upstash_server")
        up.reset()
        raw = redis.Redis.from_url(up.redis_url, decode_responses=True)
        inner = UpstashBackend.from_credentials(up.url, up.token, timeout_s=5)
    clock = ManualClock()
    counter = CountingBackend(inner)
    yield QueueRig(JobQueue(counter, settings, clock=clock), counter, raw, clock)
    inner.close()
    raw.close()


@pytest.fixture(params=BACKENDS)
def rig(request: pytest.FixtureRequest) -> Iterator[QueueRig]:
    yield from make_rig(request.param, request)


@pytest.fixture
def queue(rig: QueueRig) -> JobQueue:
    return rig.queue
