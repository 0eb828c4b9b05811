"""A throwaway Redis Cluster that the tests start, own and stop: masters (and replicas)
as ``redis-server --cluster-enabled yes`` processes on free ports, joined with
``redis-cli --cluster create``.

Like ``RedisServer`` it never connects to a Redis it did not start. It also moves a
slot between masters (``CLUSTER SETSLOT`` + ``MIGRATE``) and promotes a replica
(``CLUSTER FAILOVER``), so tests can reshard or fail over while a queue works.

Example::

    with RedisClusterServers(masters=3, replicas=1) as cluster:
        url = cluster.url_not_owning("{my-queue}:timeline")   # a node that answers MOVED
        cluster.move_slot(cluster.slot_of("{my-queue}:timeline"))
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Self

import redis
from local_stack.lifecycle import StartStopContext
from redis.cluster import key_slot

from tests.support.redis_server import RedisServer

__all__ = ["ClusterNodeInfo", "RedisClusterServers"]

_NODE_ARGS = (
    "--cluster-enabled", "yes",
    "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", "2000",
    # The bus port would be port + 10000, past 65535 for a high ephemeral port.
    "--cluster-port", "{free_port}",
    "--cluster-require-full-coverage", "no",
)  # fmt: skip
_READY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ClusterNodeInfo:
    """One node as ``CLUSTER NODES`` describes it."""

    node_id: str
    port: int
    is_master: bool
    master_id: str | None
    slots: tuple[tuple[int, int], ...]

    def owns(self, slot: int) -> bool:
        return any(lo <= slot <= hi for lo, hi in self.slots)


class RedisClusterServers(StartStopContext):
    """``masters`` masters with ``replicas`` replicas each, on 127.0.0.1, no persistence."""

    def __init__(self, *, masters: int = 3, replicas: int = 0) -> None:
        if masters < 3:
            raise ValueError("redis-cli --cluster create needs at least 3 masters")
        self._count = masters * (1 + replicas)
        self._replicas = replicas
        self.servers: list[RedisServer] = []

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found (it ships with redis-server / redis-tools)")
        try:
            for _ in range(self._count):
                self.servers.append(RedisServer(extra_args=_NODE_ARGS).start())
            addresses = [f"127.0.0.1:{s.port}" for s in self.servers]
            subprocess.run(
                [cli, "--cluster", "create", *addresses,
                 "--cluster-replicas", str(self._replicas), "--cluster-yes"],
                check=True, capture_output=True, timeout=_READY_TIMEOUT_S,
            )  # fmt: skip
            self.wait_until_stable()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()

    # -- what the tests ask ------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    def client(self, port: int) -> redis.Redis:
        """A plain (non-cluster) client of one node."""
        return redis.Redis(port=port, decode_responses=True, socket_timeout=5.0)

    def nodes(self) -> list[ClusterNodeInfo]:
        """The topology as the first reachable node sees it."""
        for port in self.ports:
            with contextlib.suppress(redis.RedisError):
                return _parse_nodes(self._command(port, "CLUSTER", "NODES"))
        raise RuntimeError("no cluster node answers")

    def masters(self) -> list[ClusterNodeInfo]:
        return [n for n in self.nodes() if n.is_master]

    @staticmethod
    def slot_of(key: str) -> int:
        return int(key_slot(key.encode()))

    def owner(self, slot: int) -> ClusterNodeInfo:
        return next(n for n in self.masters() if n.owns(slot))

    def url_not_owning(self, key: str, *, scheme: str = "redis") -> str:
        """The URL of a master that does not own ``key``'s slot (it answers MOVED)."""
        slot = self.slot_of(key)
        node = next(n for n in self.masters() if not n.owns(slot))
        return f"{scheme}://127.0.0.1:{node.port}"

    def replica_of(self, master: ClusterNodeInfo) -> ClusterNodeInfo:
        return next(n for n in self.nodes() if n.master_id == master.node_id)

    # -- what the tests do to it -------------------------------------------------------

    def move_slot(
        self, slot: int, *, to_port: int | None = None, keys_per_migrate: int = 100_000
    ) -> ClusterNodeInfo:
        """Move ``slot`` to another master (``to_port``, else the next one) while clients
        keep working: IMPORTING/MIGRATING, MIGRATE ``keys_per_migrate`` keys at a time
        (by default all in one, so no script sees half a queue), then SETSLOT NODE on
        every master. Returns the new owner."""
        source = self.owner(slot)
        target = next(
            n
            for n in self.masters()
            if n.node_id != source.node_id and (to_port is None or n.port == to_port)
        )
        self._command(target.port, "CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        self._command(source.port, "CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        while keys := self._command(
            source.port, "CLUSTER", "GETKEYSINSLOT", slot, keys_per_migrate
        ):
            self._command(
                source.port, "MIGRATE", "127.0.0.1", target.port, "", 0, 10_000, "KEYS", *keys
            )
        for master in self.masters():
            self._command(master.port, "CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
        self.wait_until_stable()
        return self.owner(slot)

    def failover(self, master: ClusterNodeInfo) -> ClusterNodeInfo:
        """Promote ``master``'s replica with ``CLUSTER FAILOVER``; returns the new master."""
        replica = self.replica_of(master)
        self._command(replica.port, "CLUSTER", "FAILOVER")
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            nodes = {n.node_id: n for n in self.nodes()}
            if nodes[replica.node_id].is_master and not nodes[master.node_id].is_master:
                self.wait_until_stable()
                return nodes[replica.node_id]
            time.sleep(0.05)
        raise RuntimeError(f"replica {replica.port} did not take over from {master.port}")

    def stop_master(self, master: ClusterNodeInfo) -> ClusterNodeInfo:
        """Stop ``master``'s process (SIGTERM: it is gone, its clients' connections drop)
        and wait until the cluster has elected its replica; returns the new master."""
        replica = self.replica_of(master)
        server = next(s for s in self.servers if s.port == master.port)
        server.stop()
        self.servers.remove(server)
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError, StopIteration):
                nodes = {n.node_id: n for n in self.nodes()}
                if nodes[replica.node_id].is_master:
                    self._wait_for_state_ok()
                    return nodes[replica.node_id]
            time.sleep(0.05)
        raise RuntimeError(f"replica {replica.port} was not elected after {master.port} stopped")

    def _wait_for_state_ok(self) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if {self._info(p).get("cluster_state") for p in self.ports} == {"ok"}:
                    return
            time.sleep(0.05)
        raise RuntimeError("the cluster did not recover")

    def wait_until_stable(self) -> None:
        """Until every node says ``cluster_state:ok`` and all agree on who owns what."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                states = {self._info(p).get("cluster_state") for p in self.ports}
                views = {_slot_map(self._command(p, "CLUSTER", "NODES")) for p in self.ports}
                if states == {"ok"} and len(views) == 1:
                    return
            time.sleep(0.05)
        raise RuntimeError("the cluster did not settle")

    # -- plumbing ----------------------------------------------------------------------

    def _command(self, port: int, *args: object) -> object:
        client = self.client(port)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def _info(self, port: int) -> dict[str, str]:
        raw = self._command(port, "CLUSTER", "INFO")
        text = raw if isinstance(raw, str) else str(raw)
        return dict(line.split(":", 1) for line in text.split() if ":" in line)


def _parse_nodes(raw: object) -> list[ClusterNodeInfo]:
    text = raw if isinstance(raw, str) else str(raw)
    nodes = []
    for line in text.strip().splitlines():
        fields = line.split()
        node_id, address, flags, master = fields[0], fields[1], fields[2], fields[3]
        port = int(address.split("@")[0].rsplit(":", 1)[1])
        slots = []
        for part in fields[8:]:
            if part.startswith("["):
                continue  # a slot being imported or migrated
            lo, _, hi = part.partition("-")
            slots.append((int(lo), int(hi or lo)))
        nodes.append(
            ClusterNodeInfo(
                node_id=node_id,
                port=port,
                is_master="master" in flags.split(","),
                master_id=None if master == "-" else master,
                slots=tuple(slots),
            )
        )
    return nodes


def _slot_map(raw: object) -> frozenset[tuple[str, tuple[tuple[int, int], ...]]]:
    return frozenset((n.node_id, n.slots) for n in _parse_nodes(raw) if n.is_master)
