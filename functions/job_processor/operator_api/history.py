"""The console's throughput chart: jobs per minute over the last hour, from CloudWatch.

The processor already publishes ``JobsProcessed``, ``JobsSucceeded``, ``JobsRetried``
and ``JobsDeadLettered`` (service ``job-processor``, queue = the namespace) per drain;
one ``GetMetricData`` call sums them per minute. No Redis command is spent on history.
Locally the stack answers this route itself, from the drains it has seen (in memory).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

METRICS_NAMESPACE = "EscrowJobs"
SERVICE = "job-processor"  # jobs_core.processor.metrics.METRICS_SERVICE (a test keeps them equal)
SERIES = {
    "processed": "JobsProcessed",
    "succeeded": "JobsSucceeded",
    "retried": "JobsRetried",
    "deadLettered": "JobsDeadLettered",
}
PERIOD_S = 60
MINUTES = 60


def empty_points(now: datetime) -> list[dict[str, Any]]:
    """The last hour's minutes, oldest first, every count 0."""
    end = now.replace(second=0, microsecond=0)
    return [
        {"at": (end - timedelta(minutes=MINUTES - 1 - i)).isoformat().replace("+00:00", "Z"),
         **dict.fromkeys(SERIES, 0)}
        for i in range(MINUTES)
    ]  # fmt: skip


class CloudWatchHistory:
    """``last_hour(queue)`` from CloudWatch; ``client`` builds a boto3 ``cloudwatch`` client
    (on first use, so a cold start that never serves the console does not pay for it)."""

    def __init__(
        self, client: Callable[[], Any], clock: Callable[[], datetime] | None = None
    ) -> None:
        self._factory = client
        self._client: Any = None
        self._clock = clock or (lambda: datetime.now(UTC))

    def last_hour(self, queue: str) -> dict[str, Any]:
        now = self._clock()
        points = empty_points(now)
        start = datetime.fromisoformat(points[0]["at"].replace("Z", "+00:00"))
        if self._client is None:
            self._client = self._factory()
        queries = [
            {
                "Id": f"m{i}",
                "Label": key,
                "MetricStat": {
                    "Metric": {
                        "Namespace": METRICS_NAMESPACE,
                        "MetricName": name,
                        "Dimensions": [
                            {"Name": "service", "Value": SERVICE},
                            {"Name": "queue", "Value": queue},
                        ],
                    },
                    "Period": PERIOD_S,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
            for i, (key, name) in enumerate(SERIES.items())
        ]
        answer = self._client.get_metric_data(
            MetricDataQueries=queries,
            StartTime=start,
            EndTime=now + timedelta(minutes=1),
            ScanBy="TimestampAscending",
        )
        by_minute = {p["at"]: p for p in points}
        for result in answer.get("MetricDataResults", []):
            key = result.get("Label")
            if key not in SERIES:
                continue
            for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []),
                                    strict=False):  # fmt: skip
                minute = stamp.astimezone(UTC).replace(second=0, microsecond=0)
                point = by_minute.get(minute.isoformat().replace("+00:00", "Z"))
                if point is not None:
                    point[key] += int(value)
        return {"source": "cloudwatch", "periodS": PERIOD_S, "points": points}
