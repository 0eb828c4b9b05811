"""A small TCP proxy in front of a real Redis that injects network faults.

``hold_next_request(seconds)`` keeps the next chunk a client sends for ``seconds``
before passing it on, whatever the client does meanwhile: a client that times out and
resends on a new connection sees its resend run first, then the late original runs
(as after TCP back-off). ``drop_connections()`` cuts every open connection at once.

    with FaultProxy(redis_url) as proxy:
        client = redis.Redis.from_url(proxy.url)
        proxy.hold_next_request(1.5)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Self
from urllib.parse import urlsplit

from local_stack.lifecycle import StartStopContext


class FaultProxy(StartStopContext):
    """Forwards ``127.0.0.1:<port>`` to the Redis at ``upstream_url``, one thread pair per
    connection."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._lock = threading.Lock()
        self._holds: list[float] = []
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self.late_deliveries = 0  # held chunks passed on after their client gave up

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"

    def hold_next_request(self, seconds: float) -> None:
        with self._lock:
            self._holds.append(seconds)

    def drop_connections(self) -> None:
        with self._lock:
            doomed = list(self._sockets)
            self._sockets.clear()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def start(self) -> Self:
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()
        return self

    def stop(self) -> None:
        self._closed = True
        self._listener.close()
        self.drop_connections()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            while data := source.recv(65536):
                hold = 0.0
                if requests:
                    with self._lock:
                        hold = self._holds.pop(0) if self._holds else 0.0
                if hold:
                    time.sleep(hold)
                    self.late_deliveries += 1
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
