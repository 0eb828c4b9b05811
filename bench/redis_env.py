"""A dedicated, CPU-pinned Redis for benchmarks, and command accounting.

Standard library only: the peer drivers import this module from venvs that hold
neither the project nor the same redis-py.

Layout (as in shared/PEERS.md): Redis runs on CPU 0, the clients on CPU 1, so a
run does not drift with the scheduler's mood. Billing is read from
``INFO commandstats``, whose ``calls`` also count each ``redis.call`` made inside
a Lua script.

    with redis_server() as url:
        before = command_stats(url)
        ...                                  # the work to bill
        billed = billed_delta(before, command_stats(url))
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlparse

REDIS_CPU = 0
CLIENT_CPU = 1
# The server's working directory starts with this; flushall() refuses any other server.
BENCH_DIR_PREFIX = "escrow-bench-redis-"

# Commands that reading or resetting the statistics sends, and never billed.
_NOT_BILLED = frozenset({"info", "config", "command"})

RespValue = bytes | int | str | None | list["RespValue"]


class RedisReplyError(RuntimeError):
    """Redis answered a command with an error reply."""


def _pinnable() -> bool:
    return hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2


def pin_client_process(pid: int = 0) -> bool:
    """Pin a process (default: this one) to the client CPU; False when not possible.

    Children started afterwards (drivers, worker processes) inherit the pinning.
    """
    if not _pinnable():
        return False
    try:
        os.sched_setaffinity(pid, {CLIENT_CPU})
    except OSError:
        return False
    return True


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_argv(port: int, workdir: str, pin: bool) -> list[str]:
    argv = [
        shutil.which("redis-server") or "redis-server",
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", workdir,
        "--daemonize", "no",
        "--logfile", "",
        "--loglevel", "warning",
    ]  # fmt: skip
    taskset = shutil.which("taskset")
    if pin and taskset and _pinnable():
        argv = [taskset, "-c", str(REDIS_CPU), *argv]
    return argv


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if redis_command(url, "PING", timeout=1.0) in ("PONG", b"PONG"):
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the bench process dies (Linux)."""
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@contextmanager
def redis_server(*, pin: bool = True, startup_timeout: float = 10.0) -> Iterator[str]:
    """Start a throw-away ``redis-server`` on a free loopback port; yield its URL.

    No persistence (``--save "" --appendonly no``); with ``pin`` and ``taskset``
    present, the server runs on CPU 0. The server is stopped and its directory
    removed on exit, and it also dies with this process (PR_SET_PDEATHSIG).

    >>> with redis_server() as url:  # doctest: +SKIP
    ...     url
    'redis://127.0.0.1:40123/0'
    """
    workdir = tempfile.mkdtemp(prefix=BENCH_DIR_PREFIX)
    try:
        for _attempt in range(5):
            port = free_port()
            url = f"redis://127.0.0.1:{port}/0"
            proc = subprocess.Popen(
                _server_argv(port, workdir, pin),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            if _wait_ready(url, proc, startup_timeout):
                break
            _stop(proc)
        else:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"redis-server did not start: {err.strip()}")
        try:
            yield url
        finally:
            _stop(proc)
            if proc.stderr:
                proc.stderr.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- a minimal RESP2 client (one connection per call: only for setup and statistics) ---


def _read_reply(stream: BinaryIO) -> RespValue:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed by Redis")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RedisReplyError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data = stream.read(size + 2)
        return data[:-2]
    if kind == b"*":
        count = int(body)
        return None if count < 0 else [_read_reply(stream) for _ in range(count)]
    raise ConnectionError(f"unexpected reply type {kind!r}")


def redis_command(url: str, *args: str | bytes | int, timeout: float = 10.0) -> RespValue:
    """Send one command on a fresh connection and return the decoded reply.

    Understands ``redis://[:password@]host:port/db``; bulk strings stay bytes.
    """
    parsed = urlparse(url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    db = int(parsed.path.lstrip("/") or 0)
    prelude: list[tuple[str | bytes | int, ...]] = []
    if parsed.password:
        user = unquote(parsed.username) if parsed.username else None
        prelude.append(
            ("AUTH", user, unquote(parsed.password)) if user else ("AUTH", unquote(parsed.password))
        )
    if db:
        prelude.append(("SELECT", db))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        stream = sock.makefile("rb")
        for command in (*prelude, args):
            parts = [a if isinstance(a, bytes) else str(a).encode() for a in command]
            sock.sendall(
                b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
            )
            reply = _read_reply(stream)
        return reply


def command_stats(url: str) -> dict[str, int]:
    """Calls per command since the server started (``INFO commandstats``).

    Keys are lower-case command names, sub-commands as ``client|setinfo``; calls
    made by Lua scripts are included.
    """
    raw = redis_command(url, "INFO", "commandstats")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    stats: dict[str, int] = {}
    for line in text.splitlines():
        if not line.startswith("cmdstat_"):
            continue
        name, _, fields = line[len("cmdstat_") :].partition(":")
        for field in fields.split(","):
            key, _, value = field.partition("=")
            if key == "calls":
                stats[name.lower()] = int(value)
    return stats


def billed_delta(
    before: Mapping[str, int], after: Mapping[str, int], *, ignore: Collection[str] = ()
) -> int:
    """Commands executed between two :func:`command_stats` snapshots.

    The statistics readers themselves (INFO, CONFIG incl. RESETSTAT, COMMAND) are
    not counted, nor any command named in ``ignore``.
    """
    total = 0
    for name, calls in after.items():
        if name.split("|", 1)[0] in _NOT_BILLED or name in ignore:
            continue
        total += max(0, calls - before.get(name, 0))
    return total


def is_bench_server(url: str) -> bool:
    """True when the server at ``url`` was started by :func:`redis_server`."""
    reply = redis_command(url, "CONFIG", "GET", "dir")
    if not isinstance(reply, list) or len(reply) != 2 or not isinstance(reply[1], bytes):
        return False
    return Path(reply[1].decode()).name.startswith(BENCH_DIR_PREFIX)


def flushall(url: str) -> None:
    """FLUSHALL, only on a server started by :func:`redis_server` (else ValueError)."""
    if not is_bench_server(url):
        raise ValueError(f"refusing to FLUSHALL {url}: not a server started by bench.redis_env")
    redis_command(url, "FLUSHALL")
