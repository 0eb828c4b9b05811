"""redis-py's cluster client on a real cluster: detection at connect, the override, ACL
users in the URL, scripts loaded on the slot owner."""

from __future__ import annotations

import pytest
import redis
from jobs_core import BackendError, JobQueue, RedisBackend, Settings
from jobs_core.queue.backends import backend_from_settings
from jobs_core.queue.keys import QueueKeys

from tests.support.redis_cluster import RedisClusterServers

from .conftest import cluster_queue

RELEASE = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 10000}


def test_a_node_that_does_not_own_the_slot_is_enough(url: str, namespace: str) -> None:
    queue = cluster_queue(url, namespace)
    job_id = queue.enqueue_job("send_release_email", RELEASE)
    assert queue.get_job_status(job_id) is not None
    assert queue.get_queue_stats().ready == 1
    backend = queue.backend
    assert isinstance(backend, RedisBackend) and backend.cluster is True
    assert isinstance(backend.client, redis.RedisCluster)


def test_a_plain_server_keeps_the_plain_client(redis_url: str, namespace: str) -> None:
    queue = cluster_queue(redis_url, namespace)
    queue.enqueue_job("send_release_email", RELEASE)
    backend = queue.backend
    assert isinstance(backend, RedisBackend) and backend.cluster is False
    assert type(backend.client) is redis.Redis


def test_cluster_false_names_the_setting_and_writes_nothing(
    redis_cluster: RedisClusterServers, url: str, namespace: str, keys: QueueKeys
) -> None:
    settings = Settings.from_env(
        {"REDIS_URL": url, "JOBS_REDIS_CLUSTER": "false", "JOBS_NAMESPACE": namespace}
    )
    queue = JobQueue.from_settings(settings)
    with pytest.raises(BackendError, match="JOBS_REDIS_CLUSTER") as info:
        queue.enqueue_job("send_release_email", RELEASE)
    assert not info.value.transient
    raw = redis.RedisCluster.from_url(url, decode_responses=True)
    assert raw.exists(keys.timeline) == 0


def test_cluster_true_skips_detection(url: str, namespace: str) -> None:
    backend = backend_from_settings(
        Settings.from_env({"REDIS_URL": url, "JOBS_REDIS_CLUSTER": "true"})
    )
    assert isinstance(backend, RedisBackend)
    assert backend.cluster is True  # known before any command is sent


def test_acl_user_without_info_is_detected_by_its_first_moved(
    redis_cluster: RedisClusterServers, namespace: str, keys: QueueKeys
) -> None:
    # ACLs are per node: the user exists on every node, limited to the queue's keys and
    # the commands the queue sends (no INFO, so the server will not say it is a cluster).
    user, password = f"q-{namespace}", "s3cret-pw"
    for port in redis_cluster.ports:
        redis_cluster.client(port).acl_setuser(
            user,
            enabled=True,
            passwords=[f"+{password}"],
            keys=[f"{keys.prefix}*"],
            # @dangerous holds INFO; the cluster client needs CLUSTER SLOTS and COMMAND.
            categories=["+@read", "+@write", "+@scripting", "-@dangerous"],
            commands=["+cluster|slots", "+command", "+ping"],
            reset=True,
        )
    url = redis_cluster.url_not_owning(keys.timeline).replace("//", f"//{user}:{password}@")
    with pytest.raises(redis.exceptions.NoPermissionError):
        redis.Redis.from_url(url).info("cluster")
    queue = cluster_queue(url, namespace)
    queue.enqueue_job("send_release_email", RELEASE)
    assert queue.get_queue_stats().ready == 1
    assert queue.backend.cluster is True  # type: ignore[attr-defined]


def test_wrong_password_is_not_transient(
    redis_cluster: RedisClusterServers, namespace: str, keys: QueueKeys
) -> None:
    url = redis_cluster.url_not_owning(keys.timeline).replace("//", "//nobody:wrong@")
    queue = cluster_queue(url, namespace, request_retries=0)
    with pytest.raises(BackendError) as info:
        queue.enqueue_job("send_release_email", RELEASE)
    assert not info.value.transient  # resending a refused password cannot help
    assert "wrong" not in str(info.value)  # the password is never repeated


def test_scripts_are_loaded_on_the_slot_owner(
    redis_cluster: RedisClusterServers, url: str, namespace: str, keys: QueueKeys
) -> None:
    from jobs_core.queue import scripts

    for port in redis_cluster.ports:
        redis_cluster.client(port).script_flush()
    queue = cluster_queue(url, namespace)
    queue.enqueue_job("send_release_email", RELEASE)  # NOSCRIPT on the owner, then EVAL
    owner = redis_cluster.owner(redis_cluster.slot_of(keys.timeline))
    loaded = {
        m.port: redis_cluster.client(m.port).script_exists(scripts.ENQUEUE.sha)[0]
        for m in redis_cluster.masters()
    }
    assert loaded == {m.port: m.port == owner.port for m in redis_cluster.masters()}


def test_read_only_scripts_go_straight_to_the_owner(
    redis_cluster: RedisClusterServers, url: str, namespace: str, keys: QueueKeys
) -> None:
    queue = cluster_queue(url, namespace)
    queue.enqueue_job("send_release_email", RELEASE)
    queue.get_queue_stats()  # loads the script
    for port in redis_cluster.ports:
        redis_cluster.client(port).config_resetstat()
    for _ in range(3):
        queue.get_queue_stats()
    owner = redis_cluster.owner(redis_cluster.slot_of(keys.timeline))
    stats = {p: redis_cluster.client(p).info("commandstats") for p in redis_cluster.ports}
    assert stats[owner.port]["cmdstat_evalsha_ro"]["calls"] == 3
    # No node was asked where EVALSHA_RO goes (COMMAND GETKEYS would be one more command).
    assert not any("cmdstat_command|getkeys" in s for s in stats.values())
    assert sum(s.get("cmdstat_evalsha_ro", {}).get("calls", 0) for s in stats.values()) == 3
