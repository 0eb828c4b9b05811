"""Redis over TCP with redis-py: local, ElastiCache, MemoryDB, Valkey, self-hosted, plain or
clustered (see ``redis_connect``); also fakeredis.

A queue's keys share one hash tag, so on a cluster every script runs on the node owning
that slot: the cluster client routes ``EVALSHA`` by its keys, and the ``EVAL`` sent on
``NOSCRIPT`` loads the script on that same node (a promoted replica learns it that way).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import redis
import redis.exceptions as rex

from ...errors import BackendError, ConfigurationError, ScriptNotLoadedError
from .base import ScriptArg
from .redis_connect import AnyRedis, check_url, cluster_client, connect

T = TypeVar("T")

# The command did not run, and will once the cluster settles: resending is safe. A script
# that reaches for a key of a slot being migrated is stopped before that command runs.
# ClusterError is also redis-py's "TTL exhausted": it followed redirections and TRYAGAIN
# for as long as it would, and nothing ran.
_CLUSTER_TRANSIENT = (
    rex.TryAgainError,
    rex.ClusterError,
    rex.AskError,
    rex.ReadOnlyError,
)
_TLS_REFUSED = "CERTIFICATE_VERIFY_FAILED"  # resending cannot make a certificate trusted
_SLOT_IN_MOTION = ("non local key", "TRYAGAIN", "CLUSTERDOWN", "MOVED", "ASK ")


class RedisBackend:
    """Runs scripts on a redis-py client (``decode_responses=True``); inject any client,
    plain or ``RedisCluster``, or build one with ``from_url`` (connects on first use).

    ``read_only_scripts=False`` runs the read-only forms as plain EVALSHA/EVAL, for
    servers without EVALSHA_RO (fakeredis, the embedded Redis; Redis before 7).
    """

    def __init__(
        self,
        client: AnyRedis | None = None,
        *,
        name: str = "redis",
        read_only_scripts: bool = True,
    ) -> None:
        self.name = name
        self.read_only_scripts = read_only_scripts
        self._client = client
        self._connect: Callable[[], tuple[AnyRedis, bool | None]] | None = None
        self._url = ""
        self._timeout_s = 0.0
        self._cluster: bool | None = isinstance(client, redis.RedisCluster) or None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, timeout_s: float, cluster: bool | None = None) -> RedisBackend:
        """A backend for ``url``; ``cluster`` None detects cluster mode at connect."""
        check_url(url)
        backend = cls()
        backend._url, backend._timeout_s, backend._cluster = url, timeout_s, cluster
        backend._connect = lambda: connect(url, timeout_s, cluster)
        return backend

    @property
    def client(self) -> AnyRedis:
        """The redis-py client (connecting, and detecting cluster mode, if not done yet)."""
        return self._call(self._ensure_client)

    @property
    def cluster(self) -> bool | None:
        """Whether the client is the cluster client (None: not connected yet)."""
        return self._cluster

    def evalsha(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        return self._call(lambda: self._ensure_client().evalsha(sha, len(keys), *keys, *args))

    def eval(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        return self._call(lambda: self._ensure_client().eval(source, len(keys), *keys, *args))

    def evalsha_ro(self, sha: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        if not self.read_only_scripts:
            return self.evalsha(sha, keys, args)
        return self._call(lambda: self._ensure_client().evalsha_ro(sha, len(keys), *keys, *args))

    def eval_ro(self, source: str, keys: Sequence[str], args: Sequence[ScriptArg]) -> Any:
        if not self.read_only_scripts:
            return self.eval(source, keys, args)
        return self._call(lambda: self._ensure_client().eval_ro(source, len(keys), *keys, *args))

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _ensure_client(self) -> AnyRedis:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                assert self._connect is not None, "closed, or built without a client"
                self._client, self._cluster = self._connect()
            return self._client

    def _switch_to_cluster(self) -> bool:
        """A plain client of unknown mode got MOVED: the server is a cluster node after all.
        True when the backend now holds the cluster client."""
        if self._cluster is not None or not self._url:
            return False
        with self._lock:
            old, self._client = self._client, cluster_client(self._url, self._timeout_s)
            self._cluster = True
        if old is not None:
            old.close()
        return True

    def _call(self, fn: Callable[[], T]) -> T:
        try:
            try:
                return fn()
            except rex.MovedError:
                if not self._switch_to_cluster():
                    raise
                return fn()  # MOVED: the command did not run, so this is no resend
        except rex.NoScriptError as exc:
            raise ScriptNotLoadedError(self.name, str(exc)) from exc
        except ConfigurationError:
            raise
        except rex.MovedError as exc:
            if self._cluster:  # the cluster client gave up following redirections
                raise BackendError(self.name, f"slot moving: {exc}", transient=True) from exc
            raise BackendError(
                self.name,
                f"the server is a Redis Cluster node (MOVED {exc}): set JOBS_REDIS_CLUSTER=true "
                "or leave it unset to detect it",
            ) from exc
        except (rex.AuthenticationError, rex.AuthorizationError) as exc:
            raise BackendError(self.name, f"refused: {exc}") from exc
        except _CLUSTER_TRANSIENT as exc:
            raise BackendError(self.name, f"cluster in motion: {exc}", transient=True) from exc
        except (rex.ConnectionError, rex.TimeoutError) as exc:
            if _TLS_REFUSED in str(exc):  # a certificate this client does not trust
                raise BackendError(self.name, f"TLS refused: {exc}") from exc
            raise BackendError(self.name, f"unreachable: {exc}", transient=True) from exc
        except rex.RedisClusterException as exc:
            # Raised by the cluster client when no node of the cluster could be reached.
            raise BackendError(self.name, f"cluster unreachable: {exc}", transient=True) from exc
        except rex.RedisError as exc:
            transient = any(marker in str(exc) for marker in _SLOT_IN_MOTION)
            raise BackendError(self.name, str(exc), transient=transient) from exc
