"""The console's throughput chart, locally: the processor's drains of the last hour, per
minute, kept in memory from the EMF lines the stack already reads (no Redis command).

In AWS the processor answers ``GET /api/jobs/history`` from CloudWatch; here the gateway
answers it from this, behind the same operator token.

    >>> history = ThroughputHistory(clock=lambda: 120.0)
    >>> history.record([MetricDatum("EscrowJobs", "JobsSucceeded", "Count",
    ...     (("service", "job-processor"), ("queue", "q")), (3.0,), 0)])
    >>> history.last_hour("q")["points"][-1]["succeeded"]
    3
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from .emf import MetricDatum

NAMESPACE = "EscrowJobs"
SERVICE = "job-processor"
SERIES_OF_METRIC = {
    "JobsProcessed": "processed",
    "JobsSucceeded": "succeeded",
    "JobsRetried": "retried",
    "JobsDeadLettered": "deadLettered",
}
KEEP_MINUTES = 60


class ThroughputHistory:
    """Per-minute sums of the processor's totals lines, for the last ``KEEP_MINUTES``."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._minutes: dict[tuple[str, int], dict[str, int]] = {}

    def record(self, data: Iterable[MetricDatum]) -> None:
        now_minute = int(self._clock() // 60)
        with self._lock:
            for datum in data:
                series = SERIES_OF_METRIC.get(datum.name)
                dims = dict(datum.dimensions)
                if series is None or datum.namespace != NAMESPACE or "job_type" in dims:
                    continue
                if dims.get("service") != SERVICE:
                    continue
                minute = datum.timestamp_ms // 60_000 if datum.timestamp_ms else now_minute
                counts = self._minutes.setdefault(
                    (dims.get("queue", ""), minute), dict.fromkeys(SERIES_OF_METRIC.values(), 0)
                )
                counts[series] += int(sum(datum.values))
            for key in [k for k in self._minutes if k[1] <= now_minute - KEEP_MINUTES]:
                del self._minutes[key]

    def last_hour(self, queue: str) -> dict[str, Any]:
        """The shape the processor's CloudWatch answer has: 60 minutes, oldest first."""
        now_minute = int(self._clock() // 60)
        points = []
        with self._lock:
            for minute in range(now_minute - KEEP_MINUTES + 1, now_minute + 1):
                at = datetime.fromtimestamp(minute * 60, tz=UTC).isoformat()
                counts = self._minutes.get((queue, minute)) or {}
                points.append(
                    {"at": at.replace("+00:00", "Z")}
                    | {s: counts.get(s, 0) for s in SERIES_OF_METRIC.values()}
                )
        return {"source": "local stack (in memory)", "periodS": 60, "points": points}
