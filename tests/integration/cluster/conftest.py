"""Cluster tests: the session's own Redis Cluster (tests/support/redis_cluster.py), all on
one xdist worker so a run starts one cluster."""

from __future__ import annotations

import uuid

import pytest
from jobs_core import JobQueue, RedisBackend, Settings
from jobs_core.queue.keys import QueueKeys

from tests.support.redis_cluster import RedisClusterServers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/cluster/" in str(item.path):
            item.add_marker(pytest.mark.xdist_group("redis-cluster"))


@pytest.fixture
def namespace() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def keys(namespace: str) -> QueueKeys:
    return QueueKeys(namespace)


@pytest.fixture
def url(redis_cluster: RedisClusterServers, keys: QueueKeys) -> str:
    """A node that does not own the queue's slot, as a configuration endpoint would be."""
    return redis_cluster.url_not_owning(keys.timeline)


def cluster_queue(url: str, namespace: str, **settings: object) -> JobQueue:
    return JobQueue(
        RedisBackend.from_url(url, timeout_s=2), Settings(namespace=namespace, **settings)
    )
