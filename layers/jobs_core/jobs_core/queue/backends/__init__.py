"""Storage backends behind one small protocol; ``backend_from_settings`` picks one."""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING, Any

from ...config import Settings
from .base import Backend, ScriptArg

if TYPE_CHECKING:
    from .redis_tcp import RedisBackend


_MEMORY_LOCK = threading.Lock()


@cache
def _memory_server_unlocked() -> Any:
    import fakeredis

    return fakeredis.FakeServer()


def _memory_server() -> Any:
    # functools.cache lets concurrent first callers each build one: one server per process.
    with _MEMORY_LOCK:
        return _memory_server_unlocked()


def memory_backend() -> RedisBackend:
    """The embedded in-process Redis (fakeredis with Lua), shared by the whole process."""
    import fakeredis

    from .redis_tcp import RedisBackend

    return RedisBackend(
        fakeredis.FakeRedis(server=_memory_server(), decode_responses=True),
        name="memory",
        read_only_scripts=False,  # fakeredis has no EVALSHA_RO
    )


def backend_from_settings(settings: Settings) -> Backend:
    """Build the backend the settings name (imports only that backend's driver)."""
    if settings.backend == "upstash":
        from .upstash import UpstashBackend

        assert settings.upstash_url and settings.upstash_token  # checked by Settings
        return UpstashBackend.from_credentials(
            settings.upstash_url, settings.upstash_token, timeout_s=settings.request_timeout_s
        )
    if settings.backend == "redis":
        from .redis_tcp import RedisBackend

        assert settings.redis_url
        return RedisBackend.from_url(
            settings.redis_url, timeout_s=settings.request_timeout_s, cluster=settings.redis_cluster
        )
    return memory_backend()


def __getattr__(name: str) -> Any:
    # redis-py costs ~100 ms to import: a Lambda on Upstash never pays it.
    if name == "RedisBackend":
        from .redis_tcp import RedisBackend

        return RedisBackend
    raise AttributeError(name)


__all__ = ["Backend", "RedisBackend", "ScriptArg", "backend_from_settings", "memory_backend"]
