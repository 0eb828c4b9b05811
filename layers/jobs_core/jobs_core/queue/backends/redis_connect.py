"""Building the redis-py client for a ``REDIS_URL``: a plain client, or the cluster client
when the server runs as a Redis Cluster (ElastiCache Serverless, cluster-mode ElastiCache,
MemoryDB, a Redis OSS or Valkey cluster).

``cluster=None`` asks the server: one ``INFO cluster`` on the node the URL names
(``cluster_enabled:1``). ``True``/``False`` (``JOBS_REDIS_CLUSTER``) skip the question,
for a server that refuses ``INFO`` to the configured user. The URL carries everything
else redis-py reads from it: ``rediss://`` for TLS (certificates verified against the
system's CAs unless ``?ssl_cert_reqs=none``), ``user:password@`` for an ACL user.

The cluster client follows MOVED and ASK itself (the command did not run, so following is
no resend) but never resends after a timeout or a lost connection: those surface, are
translated by the backend, and ``scripts.run`` resends them under its own rules.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from ...errors import ConfigurationError

AnyRedis = redis.Redis | RedisCluster

SCHEMES = ("redis", "rediss", "unix")


def client_options(timeout_s: float) -> dict[str, Any]:
    """The options both clients share. Retries are ours (scripts.py): no driver resends."""
    return {
        "decode_responses": True,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": min(timeout_s, 2.0),
        # No health-check PING (a billed command every idle minute per function): a dead
        # connection fails its call as a transient error that scripts.run resends at once.
        "health_check_interval": 0,
        "socket_keepalive": True,
        "retry_on_timeout": False,
    }


def check_url(url: str) -> None:
    """Refuse a URL redis-py would misread; the message never repeats a password."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise ConfigurationError(f"REDIS_URL is not a valid URL: {exc}") from None
    if parts.scheme not in SCHEMES or not (parts.hostname or parts.scheme == "unix"):
        raise ConfigurationError(
            "REDIS_URL must look like redis://[user:password@]host[:port][/db] "
            f"or rediss://… for TLS (scheme {parts.scheme!r}, host {parts.hostname!r})"
        )


def is_cluster(client: redis.Redis) -> bool | None:
    """Whether the node behind ``client`` runs in cluster mode; None if it will not say."""
    try:
        info = client.info("cluster")
    except (redis.exceptions.NoPermissionError, redis.exceptions.ResponseError):
        return None  # INFO refused (ACL, a managed service): the first MOVED will tell
    return bool(int(info.get("cluster_enabled", 0)))


class QueueCluster(RedisCluster):
    """The cluster client, routing EVAL_RO/EVALSHA_RO by their first key as redis-py
    routes EVAL/EVALSHA; otherwise it would ask the server (COMMAND GETKEYS, one more
    command per call) where they go. A queue's keys share one hash tag: one slot."""

    def determine_slot(self, *args: Any) -> Any:
        command = str(args[0]).upper()
        if command in ("EVAL_RO", "EVALSHA_RO") and len(args) > 3 and int(args[2]) > 0:
            return self.keyslot(args[3])  # type: ignore[no-untyped-call]
        return super().determine_slot(*args)


def cluster_client(url: str, timeout_s: float) -> RedisCluster:
    """The cluster client for ``url`` (one node of the cluster: it discovers the rest)."""
    path_db = urlsplit(url).path.strip("/")
    if path_db not in ("", "0"):
        raise ConfigurationError("a Redis Cluster has only database 0: drop /N from REDIS_URL")
    return QueueCluster.from_url(
        url,
        retry=Retry(NoBackoff(), 0),
        # Only the queue's slot matters: a shard down elsewhere must not stop this queue.
        require_full_coverage=False,
        # Keep the configured (DNS) endpoint as the way back in after a failover.
        dynamic_startup_nodes=False,
        **client_options(timeout_s),
    )


def plain_client(url: str, timeout_s: float) -> redis.Redis:
    return redis.Redis.from_url(url, **client_options(timeout_s))


def connect(url: str, timeout_s: float, cluster: bool | None) -> tuple[AnyRedis, bool | None]:
    """The client for ``url`` and what is known of cluster mode (None: not known yet).

    With ``cluster=None`` this costs one ``INFO cluster`` (once per process)."""
    if cluster:
        return cluster_client(url, timeout_s), True
    plain = plain_client(url, timeout_s)
    if cluster is False:
        return plain, False
    detected = is_cluster(plain)
    if detected:
        plain.close()
        return cluster_client(url, timeout_s), True
    return plain, detected
