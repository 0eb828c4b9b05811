"""A ``redis-server`` child process for the local stack, on a free loopback port.

No persistence (``--save ""``, no AOF): every ``make dev`` starts with an empty queue.
On Linux the child gets ``PR_SET_PDEATHSIG``, so it dies with the stack even when the
stack is killed with SIGKILL: no orphan redis-server is left behind.

    with RedisProcess() as redis:
        print(redis.url)          # redis://127.0.0.1:41234/0
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import redis

from .lifecycle import StartStopContext

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (a caller retries on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def _die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class RedisProcess(StartStopContext):
    def __init__(self, binary: str | None = None, *, startup_timeout_s: float = 10.0) -> None:
        self.binary = binary or redis_server_binary()
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("redis-server is not started")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def start(self) -> Self:
        if not self.binary:
            raise RuntimeError("no redis-server binary on PATH")
        self._dir = Path(tempfile.mkdtemp(prefix="escrow-jobs-redis-"))
        log_file = self._dir / "redis.log"
        for _ in range(3):  # a port taken between free_port() and bind: try another
            port = free_port()
            process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self._dir),
                    "--logfile",
                    str(log_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
            if self._ready(process, port):
                self.process, self.port = process, port
                return self
            _terminate(process)
        log = log_file.read_text(errors="replace")[-2000:] if log_file.exists() else ""
        self.stop()
        raise RuntimeError(f"redis-server did not start:\n{log}")

    def _ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            client = redis.Redis(port=port, socket_connect_timeout=0.2, socket_timeout=0.5)
            try:
                if client.ping():
                    return True
            except redis.RedisError:
                pass
            finally:
                client.close()
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            _terminate(process)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
