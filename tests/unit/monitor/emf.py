"""Read CloudWatch Embedded Metric Format lines back into metrics, checking their shape.

Used by the monitor tests and the template tests (which compare the alarms with what
the monitor really emits). A line that carries ``_aws`` must be valid EMF: every
dimension and metric it declares must have a value at the top level, as CloudWatch
requires, or the metric would silently not exist.

    metrics = parse_emf(captured_stdout)
    [depth] = [m for m in metrics if m.name == "QueueDepth" and "job_type" not in m.dimensions]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EmfMetric:
    namespace: str
    name: str
    unit: str
    dimensions: tuple[tuple[str, str], ...]  # sorted (name, value) pairs
    values: tuple[float, ...]

    @property
    def dims(self) -> dict[str, str]:
        return dict(self.dimensions)

    @property
    def key(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """The identity CloudWatch gives a metric: namespace, name, dimensions."""
        return (self.namespace, self.name, self.dimensions)


def parse_emf(text: str) -> list[EmfMetric]:
    """Every metric of every EMF line in ``text`` (other lines, e.g. logs, are skipped)."""
    found: list[EmfMetric] = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" in blob:
            found.extend(_metrics_of(blob))
    return found


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON lines of ``text`` that are not EMF (Powertools Logger output)."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        if isinstance(blob, dict) and "_aws" not in blob:
            lines.append(blob)
    return lines


def _metrics_of(blob: dict[str, Any]) -> list[EmfMetric]:
    meta = blob["_aws"]
    assert isinstance(meta.get("Timestamp"), int), "EMF needs an integer millisecond Timestamp"
    out = []
    for directive in meta["CloudWatchMetrics"]:
        namespace = directive["Namespace"]
        assert isinstance(namespace, str) and namespace
        for dimension_set in directive["Dimensions"]:
            for dim in dimension_set:
                assert isinstance(blob.get(dim), str), f"dimension {dim!r} has no string value"
            dims = tuple(sorted((d, blob[d]) for d in dimension_set))
            for definition in directive["Metrics"]:
                name = definition["Name"]
                raw = blob.get(name)
                assert raw is not None, f"metric {name!r} declared without a value"
                values = tuple(float(v) for v in (raw if isinstance(raw, list) else [raw]))
                out.append(EmfMetric(namespace, name, definition.get("Unit", "None"), dims, values))
    return out
