"""``rediss://`` on a real TLS redis-server running as a cluster (one node holding every
slot, its certificate self-signed by ``openssl``): detected and used over TLS; an
untrusted certificate is a clear, non-transient error."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from jobs_core import BackendError, JobQueue, RedisBackend, Settings

from tests.support.redis_server import RedisServer, free_port

RELEASE = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 10000}


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """(TLS port, CA file) of a one-node TLS cluster."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    openssl = shutil.which("openssl")
    assert openssl, "openssl makes the test certificate"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    tls_port = free_port()
    args = [
        "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--tls-cluster", "yes",
        "--cluster-enabled", "yes", "--cluster-port", "{free_port}",
    ]  # fmt: skip
    with RedisServer(extra_args=args) as server:
        plain = redis.Redis(port=server.port, decode_responses=True)
        plain.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 10
        while plain.cluster("info")["cluster_state"] != "ok":
            assert time.monotonic() < deadline, "the TLS node did not take its slots"
            time.sleep(0.05)
        yield tls_port, cert


def test_rediss_with_its_ca_reaches_the_cluster_over_tls(tls_cluster: tuple[int, Path]) -> None:
    port, ca = tls_cluster
    backend = RedisBackend.from_url(f"rediss://127.0.0.1:{port}?ssl_ca_certs={ca}", timeout_s=2)
    queue = JobQueue(backend, Settings(namespace="tls-queue"))
    queue.enqueue_job("send_release_email", RELEASE)
    assert queue.get_queue_stats().ready >= 1
    assert backend.cluster is True
    nodes = backend.client.get_nodes()  # type: ignore[union-attr]
    assert nodes and all(
        issubclass(n.redis_connection.connection_pool.connection_class, redis.SSLConnection)
        for n in nodes
    )


def test_an_untrusted_certificate_is_refused_not_resent(tls_cluster: tuple[int, Path]) -> None:
    port, _ = tls_cluster
    backend = RedisBackend.from_url(f"rediss://127.0.0.1:{port}", timeout_s=2)  # system CAs
    queue = JobQueue(backend, Settings(namespace="tls-queue"))
    with pytest.raises(BackendError, match="TLS refused") as info:
        queue.get_queue_stats()
    assert not info.value.transient


def test_plain_tcp_to_the_tls_port_fails_cleanly(tls_cluster: tuple[int, Path]) -> None:
    port, _ = tls_cluster
    queue = JobQueue(
        RedisBackend.from_url(f"redis://127.0.0.1:{port}", timeout_s=1),
        Settings(namespace="tls-queue", request_retries=0),
    )
    with pytest.raises(BackendError):
        queue.get_queue_stats()
