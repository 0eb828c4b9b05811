"""The escrow API's own metrics: the outbox that waits for Redis, after each sweep.

Published with Powertools Metrics in CloudWatch Embedded Metric Format (JSON lines on
stdout) by the outbox sweep every minute; the alarm ``OutboxOldestEntryAgeAlarm`` in
``template.yaml`` reads them (a test keeps the names equal).

=========================  =======  ===============  ======================================
name                       unit     dimensions       value
=========================  =======  ===============  ======================================
``OutboxBacklog``          Count    service, queue   entries older than the sweep's grace
                                                     (30 s) still waiting after the sweep
``OutboxOldestEntryAge``   Seconds  service, queue   age of the oldest of them (0 if none)
=========================  =======  ===============  ======================================

``service`` is ``escrow-api``; ``queue`` the queue namespace, as on the queue's metrics.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from .outbox import SweepReport

METRICS_NAMESPACE = "EscrowJobs"
METRICS_SERVICE = "escrow-api"
OUTBOX_BACKLOG = "OutboxBacklog"
OUTBOX_OLDEST_ENTRY_AGE = "OutboxOldestEntryAge"


def publish_outbox(report: SweepReport, *, queue: str, now_ms: int) -> None:
    """One EMF line: the backlog the sweep left and the age of its oldest entry."""
    sink = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=METRICS_SERVICE)
    sink.add_dimension("queue", queue)
    sink.add_metric(OUTBOX_BACKLOG, MetricUnit.Count, report.backlog)
    sink.add_metric(
        OUTBOX_OLDEST_ENTRY_AGE, MetricUnit.Seconds, round(report.oldest_age_s(now_ms), 3)
    )
    sink.flush_metrics(raise_on_empty_metrics=True)
