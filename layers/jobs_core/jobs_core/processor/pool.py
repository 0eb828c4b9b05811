"""A bounded pool of daemon worker threads that can give up on a stuck worker.

``ThreadPoolExecutor`` cannot do what the processor needs: a handler that hangs
keeps its worker forever (the pool silently shrinks), and its non-daemon threads
block interpreter exit. Here, ``abandon(thread)`` retires a stuck worker and starts
a replacement at once, so ``size`` live workers always take new work. The retired
thread is not killed (Python cannot kill a thread): it runs on in the background
and exits when, if ever, its call returns.

    pool = WorkerPool(8)
    pool.submit(lambda: print("hi"))
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

Work = Callable[[], None]


class WorkerPool:
    """At most ``size`` live (not abandoned) worker threads, started on first use."""

    def __init__(self, size: int, *, name: str = "jobs-worker") -> None:
        if size < 1:
            raise ValueError("a pool needs at least one worker")
        self.size = size
        self._name = name
        self._work: queue.SimpleQueue[Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._live: set[threading.Thread] = set()
        self._retired: set[threading.Thread] = set()
        self._spawned = 0
        self._closed = False

    @property
    def live(self) -> int:
        """Workers that take new work (abandoned ones excluded)."""
        with self._lock:
            return len(self._live)

    @property
    def abandoned(self) -> int:
        """Abandoned workers whose call has not returned yet."""
        with self._lock:
            return len(self._retired)

    def submit(self, work: Work) -> None:
        """Queue ``work``; it must not raise (exceptions are swallowed, the worker lives on)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("pool is shut down")
            while len(self._live) < self.size:
                self._spawn()
        self._work.put(work)

    def abandon(self, thread: threading.Thread) -> None:
        """Stop counting ``thread`` as a worker and start a replacement."""
        with self._lock:
            if thread not in self._live:
                return
            self._live.discard(thread)
            self._retired.add(thread)
            if not self._closed:
                self._spawn()

    def shutdown(self) -> None:
        """Let live workers exit once the queued work is done; does not wait for them."""
        with self._lock:
            self._closed = True
            count = len(self._live)
        for _ in range(count):
            self._work.put(None)

    def _spawn(self) -> None:  # with self._lock held
        self._spawned += 1
        thread = threading.Thread(
            target=self._loop, name=f"{self._name}-{self._spawned}", daemon=True
        )
        self._live.add(thread)
        thread.start()

    def _loop(self) -> None:
        me = threading.current_thread()
        while True:
            work = self._work.get()
            if work is None:
                with self._lock:
                    self._live.discard(me)
                return
            with contextlib.suppress(BaseException):  # work reports its own failures
                work()
            with self._lock:
                if me in self._retired:
                    self._retired.discard(me)
                    return
