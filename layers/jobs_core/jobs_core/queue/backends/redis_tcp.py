"""Redis over TCP with redis-py: local, ElastiCache, self-hosted; also fakeredis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis
import redis.exceptions as rex

from ...errors import BackendError, ScriptNotLoadedError
from .base import ScriptArg

T = TypeVar("T")


class RedisBackend:
    """Runs scripts on a redis-py client (``decode_responses=True``); inject any client.

    ``read_only_scripts=False`` runs the read-only forms as plain EVALSHA/EVAL, for
    servers without EVALSHA_RO (fakeredis, the embedded Redis; Redis before 7).
    """

    def __init__(
        self, client: redis.Redis, *, name: str = "redis", read_only_scripts: bool = True
    ) -> None:
        self.name = name
        self._client = client
        self.read_only_scripts = read_only_scripts

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float) -> RedisBackend:
        # Retries are ours (scripts.py), so the driver must not resend on its own.
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=min(timeout_s, 2.0),
            health_check_interval=30,
            retry_on_timeout=False,
        )
        return cls(client)

    @property
    def client(self) -> redis.Redis:
        return self._client

    def evalsha(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        return self._call(lambda: self._client.evalsha(sha, len(keys), *keys, *args))

    def eval(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        return self._call(lambda: self._client.eval(source, len(keys), *keys, *args))

    def evalsha_ro(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        if not self.read_only_scripts:
            return self.evalsha(sha, keys, args)
        return self._call(lambda: self._client.evalsha_ro(sha, len(keys), *keys, *args))

    def eval_ro(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        if not self.read_only_scripts:
            return self.eval(source, keys, args)
        return self._call(lambda: self._client.eval_ro(source, len(keys), *keys, *args))

    def close(self) -> None:
        self._client.close()

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except rex.NoScriptError as exc:
            raise ScriptNotLoadedError(self.name, str(exc)) from exc
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            raise BackendError(self.name, f"unreachable: {exc}", transient=True) from exc
        except rex.RedisError as exc:
            raise BackendError(self.name, str(exc)) from exc
