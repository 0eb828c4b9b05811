"""Session-wide real servers for the whole suite; folder conftests add the rest."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from tests.support.redis_cluster import RedisClusterServers
from tests.support.redis_server import RedisServer
from tests.support.upstash_server import UpstashServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server process that this test session started (never a shared one)."""
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """URL of the session's own Redis, e.g. ``redis://127.0.0.1:40123/0``."""
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A Redis Cluster this session started: 3 masters with a replica each (about 3 s).

    Tests may move slots and fail masters over; each leaves the cluster stable."""
    with RedisClusterServers(masters=3, replicas=1) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def upstash_server(redis_server: RedisServer) -> Iterator[UpstashServer]:
    """The Upstash REST stand-in in front of the session's own Redis.

    It is shared: a test that injects faults should call ``reset()`` first.
    """
    with UpstashServer(redis_server.url, token=secrets.token_urlsafe(16)) as server:
        yield server


@pytest.fixture
def clean_redis(redis_server: RedisServer) -> RedisServer:
    """The session's own Redis, emptied (FLUSHALL) before the test."""
    redis_server.flushall()
    return redis_server
