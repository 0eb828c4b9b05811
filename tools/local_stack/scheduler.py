"""The EventBridge schedules, locally: each task on its own thread, every N seconds.

A task runs at start, then every ``every_s`` seconds, with the event an EventBridge
``rate(...)`` rule delivers. ``wake(name, event)`` runs it as soon as its current run
ends, with ``event`` instead (the processor's kick: ``{"source": "escrow-jobs.kick"}``);
wake-ups that arrive during a run are coalesced into one more run, as a kick to a busy
processor adds nothing. A run that raises is logged and the schedule goes on.
``stop()`` lets the running tasks finish and joins every thread.

    scheduler = Scheduler()
    scheduler.add("processor", 2.0, run_processor)    # run_processor(event) -> None
    scheduler.add("monitor", 60.0, run_monitor)
    scheduler.start()
    ...
    scheduler.stop()

The functions get a ``FakeLambdaContext`` (``lambda_runtime``): a remaining-time budget
counting down from the function's timeout in ``template.yaml``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .template import ACCOUNT_ID, REGION

log = logging.getLogger("local_stack.scheduler")

Event = Mapping[str, Any]


def scheduled_event(rule: str, *, now: float | None = None) -> dict[str, Any]:
    """The event an EventBridge ``rate(...)`` rule delivers."""
    stamp = time.time() if now is None else now
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp)),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule}"],
        "detail": {},
    }


@dataclass
class _Task:
    name: str
    every_s: float
    run: Callable[[Event], None]
    rule: str
    wake: threading.Event = field(default_factory=threading.Event)
    pending: Event | None = None
    thread: threading.Thread | None = None
    runs: int = 0


class Scheduler:
    def __init__(self) -> None:
        self._tasks: dict[str, _Task] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def add(
        self, name: str, every_s: float, run: Callable[[Event], None], *, rule: str | None = None
    ) -> None:
        if every_s <= 0:
            raise ValueError("every_s must be positive")
        self._tasks[name] = _Task(name, every_s, run, rule or name)

    def start(self) -> None:
        for task in self._tasks.values():
            task.thread = threading.Thread(
                target=self._loop, args=(task,), name=f"schedule-{task.name}"
            )
            task.thread.start()

    def __contains__(self, name: str) -> bool:
        return name in self._tasks

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def runs(self, name: str) -> int:
        return self._tasks[name].runs

    def wake(self, name: str, event: Event | None = None) -> bool:
        """Run ``name`` once more as soon as possible (with ``event``); False if unknown
        or stopping."""
        task = self._tasks.get(name)
        if task is None or self._stop.is_set():
            return False
        with self._lock:
            task.pending = event
        task.wake.set()
        return True

    def stop(self, timeout_s: float = 90.0) -> None:
        """Stop scheduling, let running tasks finish, join every thread."""
        self._stop.set()
        for task in self._tasks.values():
            task.wake.set()
        deadline = time.monotonic() + timeout_s
        for task in self._tasks.values():
            if task.thread is not None:
                task.thread.join(timeout=max(0.0, deadline - time.monotonic()))
                if task.thread.is_alive():
                    log.warning("the %s task did not finish in time", task.name)

    def _loop(self, task: _Task) -> None:
        while not self._stop.is_set():
            task.wake.clear()
            with self._lock:
                event, task.pending = task.pending, None
            try:
                task.run(event if event is not None else scheduled_event(task.rule))
            except Exception:
                log.exception("scheduled %s failed", task.name)
            task.runs += 1
            task.wake.wait(task.every_s)
