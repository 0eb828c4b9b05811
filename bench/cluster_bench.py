"""One shard over redis-py's cluster client beside one Redis over the plain client: prints
a table; not a test.

    python -m bench.cluster_bench                 # 3000 jobs, 3 interleaved rounds
    python -m bench.cluster_bench --jobs 1000 --repeat 1

A queue is one hash slot, so it lives on one shard whatever the cluster's size: the
cluster rows are one shard's capacity, the unit for sizing (README, "Sizing a cluster").
It starts a plain ``redis-server`` and a 3-master cluster (``--cluster-enabled yes`` +
``redis-cli --cluster create``), every server on CPU 0 where the machine allows, this
process on CPU 1. The cluster URL names a node that does not own the queue's slot, as a
configuration endpoint would. Measured per round: one-by-one ``enqueue_job`` and a drain
by claim 100 + settle 100; the ratio is cluster / plain (the cluster client's overhead).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import redis
from jobs_core import JobQueue, RedisBackend, Settings
from jobs_core.queue.keys import QueueKeys

from bench.ours_driver import AUDIT, drain
from bench.redis_env import (
    _die_with_parent,
    _server_argv,
    _stop,
    free_port,
    pin_client_process,
    redis_server,
)

CLUSTER_ARGS = ("--cluster-enabled", "yes", "--cluster-node-timeout", "5000")


@contextmanager
def cluster_node(workdir: str) -> Iterator[int]:
    port, bus = free_port(), free_port()
    argv = [*_server_argv(port, workdir, True), *CLUSTER_ARGS, "--cluster-port", str(bus)]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if redis.Redis(port=port, socket_timeout=0.5).ping():
                    break
            except redis.RedisError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("a cluster node did not start") from None
                time.sleep(0.02)
        yield port
    finally:
        _stop(proc)


@contextmanager
def redis_cluster(masters: int = 3) -> Iterator[list[int]]:
    """A throw-away cluster of ``masters`` masters; yields their ports."""
    with ExitStack() as stack:
        ports = []
        for _ in range(masters):
            workdir = tempfile.mkdtemp(prefix="escrow-bench-cluster-")
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            ports.append(stack.enter_context(cluster_node(workdir)))
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while any(redis.Redis(port=p).cluster("info")["cluster_state"] != "ok" for p in ports):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not settle")
            time.sleep(0.05)
        yield ports


def url_not_owning(ports: list[int], namespace: str) -> str:
    """A node that answers MOVED for the queue's keys."""
    for port in ports:
        try:
            redis.Redis(port=port).exists(QueueKeys(namespace).timeline)
        except redis.exceptions.MovedError:
            return f"redis://127.0.0.1:{port}"
    raise RuntimeError("no node redirects: is this a cluster?")


def measure(url: str, namespace: str, jobs: int, *, cluster: bool) -> dict[str, float]:
    backend = RedisBackend.from_url(url, timeout_s=10)
    queue = JobQueue(backend, Settings(namespace=namespace))
    queue.enqueue_job("audit_log_created", AUDIT)  # connect, detect, load the scripts
    drain(queue, 100)
    t0 = time.perf_counter()
    for _ in range(jobs):
        queue.enqueue_job("audit_log_created", AUDIT)
    enqueue_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    done = drain(queue, 100)
    drain_s = time.perf_counter() - t0
    assert done == jobs, (done, jobs)
    assert backend.cluster is cluster  # detected at connect
    backend.close()
    return {"enqueue_per_s": jobs / enqueue_s, "drain_per_s": jobs / drain_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    pinned = pin_client_process()
    plain: list[dict[str, float]] = []
    cluster: list[dict[str, float]] = []
    with redis_server() as plain_url, redis_cluster() as ports:
        for i in range(args.repeat):
            print(f"round {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            plain.append(
                measure(plain_url, f"bench-plain-{uuid.uuid4().hex[:6]}", args.jobs, cluster=False)
            )
            ns = f"bench-cluster-{uuid.uuid4().hex[:6]}"
            cluster.append(measure(url_not_owning(ports, ns), ns, args.jobs, cluster=True))
    layout = "servers on CPU 0, client on CPU 1" if pinned else "no CPU pinning"
    print(f"\n== One shard: {args.jobs} no-op jobs, median of {args.repeat} rounds, {layout}")
    print(f"{'':<44} {'plain client':>13} {'cluster client':>15} {'ratio':>7}")
    for title, key in (
        ("one-by-one enqueue /s", "enqueue_per_s"),
        ("drain, claim 100 + settle 100 /s", "drain_per_s"),
    ):
        p = statistics.median(r[key] for r in plain)
        c = statistics.median(r[key] for r in cluster)
        print(f"{title:<44} {p:>13,.0f} {c:>15,.0f} {c / p:>7.2f}")
    print("(cluster: 3 masters, the URL names a node that does not own the queue's slot)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
