"""CloudWatch's side of the Embedded Metric Format, locally.

In AWS a function prints EMF JSON lines and CloudWatch Logs turns them into metrics.
Locally ``StdoutRouter`` catches what a scheduled invocation prints (per thread, so
concurrent invocations and the gateway's requests do not mix), ``parse_emf`` reads the
metric lines, and ``CloudWatchForwarder`` puts them into (moto's) CloudWatch with
``PutMetricData``; every other line is printed as it would have been. ``say`` prints the
stack's own lines on the real stdout.

    >>> line = ('{"_aws": {"Timestamp": 0, "CloudWatchMetrics": [{"Namespace": "N",'
    ...         ' "Dimensions": [["queue"]], "Metrics": [{"Name": "Depth", "Unit": "Count"}]}]},'
    ...         ' "queue": "q", "Depth": 3}')
    >>> [(d.namespace, d.name, d.dimensions, d.values) for d in parse_emf(line)]
    [('N', 'Depth', (('queue', 'q'),), (3.0,))]
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

log = logging.getLogger("local_stack.emf")


@dataclass(frozen=True, slots=True)
class MetricDatum:
    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]
    values: tuple[float, ...]
    timestamp_ms: int


def parse_emf(line: str) -> list[MetricDatum]:
    """The metrics of one EMF line; [] for any other line."""
    text = line.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return []
    try:
        doc = json.loads(text)
        meta = doc["_aws"]
        out = []
        for directive in meta["CloudWatchMetrics"]:
            for dimension_set in directive.get("Dimensions") or [[]]:
                dims = tuple((str(k), str(doc[k])) for k in dimension_set)
                for metric in directive["Metrics"]:
                    raw = doc.get(metric["Name"])
                    values = raw if isinstance(raw, list) else [raw]
                    out.append(
                        MetricDatum(
                            namespace=str(directive["Namespace"]),
                            name=str(metric["Name"]),
                            unit=str(metric.get("Unit") or "None"),
                            dimensions=dims,
                            values=tuple(float(v) for v in values if v is not None),
                            timestamp_ms=int(meta.get("Timestamp") or 0),
                        )
                    )
        return out
    except (KeyError, TypeError, ValueError):
        return []


class CloudWatchForwarder:
    """Puts ``MetricDatum``s into CloudWatch (a boto3 ``cloudwatch`` client)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def put(self, data: Iterable[MetricDatum]) -> int:
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for d in data:
            if not d.values:
                continue
            when = datetime.fromtimestamp(d.timestamp_ms / 1000, tz=UTC) if d.timestamp_ms else None
            item: dict[str, Any] = {
                "MetricName": d.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in d.dimensions],
                "Unit": d.unit,
                "Values": list(d.values),
            }
            if when is not None:
                item["Timestamp"] = when
            by_namespace.setdefault(d.namespace, []).append(item)
        sent = 0
        for namespace, items in by_namespace.items():
            for start in range(0, len(items), 500):
                self.client.put_metric_data(
                    Namespace=namespace, MetricData=items[start : start + 500]
                )
                sent += len(items[start : start + 500])
        return sent


class StdoutRouter(io.TextIOBase):
    """A ``sys.stdout`` replacement: writes go to the calling thread's capture buffer while
    it has one open (``capture()``), else to the real stream."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target
        self._local = threading.local()

    def write(self, text: str) -> int:
        buffer: io.StringIO | None = getattr(self._local, "buffer", None)
        if buffer is not None:
            return buffer.write(text)
        return self.target.write(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    @contextmanager
    def capture(self) -> Iterator[io.StringIO]:
        previous = getattr(self._local, "buffer", None)
        buffer = io.StringIO()
        self._local.buffer = buffer
        try:
            yield buffer
        finally:
            self._local.buffer = previous


@contextmanager
def routed_stdout() -> Iterator[StdoutRouter]:
    """Install a ``StdoutRouter`` as ``sys.stdout`` for the duration."""
    original = sys.stdout
    router = StdoutRouter(original)
    sys.stdout = router
    try:
        yield router
    finally:
        sys.stdout = original


def say(message: str) -> None:
    """A timestamped line for the developer, on the real stdout (past the router)."""
    stream = getattr(sys.stdout, "target", sys.stdout)
    try:
        stream.write(f"{time.strftime('%H:%M:%S')}  {message}\n")
        stream.flush()
    except (BrokenPipeError, ValueError):  # `make dev | tee log` and tee has gone
        pass


def split_output(text: str) -> tuple[list[MetricDatum], list[str]]:
    """Captured output as (metrics, the other lines)."""
    metrics: list[MetricDatum] = []
    other: list[str] = []
    for line in text.splitlines():
        found = parse_emf(line)
        if found:
            metrics += found
        elif line.strip():
            other.append(line)
    return metrics, other
