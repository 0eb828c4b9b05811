"""Building the redis-py client from REDIS_URL: TLS and ACL users from the URL, refusals
that never repeat a password, and JOBS_REDIS_CLUSTER (no network: nothing connects)."""

from __future__ import annotations

import ssl

import pytest
import redis
from jobs_core import ConfigurationError, RedisBackend, Settings
from jobs_core.queue.backends import backend_from_settings
from jobs_core.queue.backends.redis_connect import check_url, cluster_client, plain_client


def test_rediss_url_gives_a_verified_tls_connection_with_the_acl_user() -> None:
    client = plain_client("rediss://queue-user:p%40ss@cache.example.com:6380/0", 3.0)
    pool = client.connection_pool
    assert issubclass(pool.connection_class, redis.SSLConnection)
    kwargs = pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"]) == ("cache.example.com", 6380)
    assert (kwargs["username"], kwargs["password"]) == ("queue-user", "p@ss")
    connection = pool.make_connection()
    assert connection.cert_reqs == ssl.CERT_REQUIRED  # the server's certificate is checked
    assert connection.check_hostname is True
    assert kwargs["socket_timeout"] == 3.0 and kwargs["retry_on_timeout"] is False


def test_tls_options_in_the_query_string_reach_the_connection() -> None:
    client = plain_client("rediss://h:6380?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required", 1.0)
    connection = client.connection_pool.make_connection()
    assert connection.ca_certs == "/etc/ca.pem" and connection.cert_reqs == ssl.CERT_REQUIRED


def test_plain_redis_url_is_not_tls() -> None:
    client = plain_client("redis://h:6379/0", 1.0)
    assert not issubclass(client.connection_pool.connection_class, redis.SSLConnection)


@pytest.mark.parametrize(
    "url",
    ["http://user:hunter2@h:6379", "h:6379", "redis://user:hunter2@:6379", "redis://h:port"],
)
def test_bad_urls_are_refused_without_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError, match="REDIS_URL") as info:
        check_url(url)
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigurationError):
        RedisBackend.from_url(url, timeout_s=1)


def test_a_cluster_has_only_database_0() -> None:
    with pytest.raises(ConfigurationError, match="database 0"):
        cluster_client("redis://h:6379/3", 1.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("", None), ("auto", None), ("true", True), ("TRUE", True), ("1", True), ("false", False),
     ("no", False)],
)  # fmt: skip
def test_jobs_redis_cluster(raw: str, expected: bool | None) -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://h:6379", "JOBS_REDIS_CLUSTER": raw})
    assert settings.redis_cluster is expected
    backend = backend_from_settings(settings)
    assert isinstance(backend, RedisBackend) and backend.cluster is expected


def test_jobs_redis_cluster_typo_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="JOBS_REDIS_CLUSTER"):
        Settings.from_env({"REDIS_URL": "redis://h", "JOBS_REDIS_CLUSTER": "ture"})


def test_the_url_and_its_password_stay_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({"REDIS_URL": "rediss://u:hunter2@h:6380"})
    assert "hunter2" not in repr(settings)
