"""The monitor's metrics: the queue statistics as CloudWatch metrics, one run at a time.

One Redis round trip (``JobQueue.get_queue_stats()``), published with Powertools
Metrics in CloudWatch Embedded Metric Format (EMF): the metrics are JSON lines on
stdout, which CloudWatch Logs turns into metrics. No ``cloudwatch:PutMetricData``.

Metrics (namespace ``EscrowJobs``; these names, units and dimensions are what the
alarms and the dashboard in ``template.yaml`` refer to, and a test keeps them equal)

=====================  =======  ==============================  ==========================
name                   unit     dimensions                      value
=====================  =======  ==============================  ==========================
``QueueDepth``         Count    service, queue                  ready jobs, all types
``QueueDepth``         Count    service, queue, job_type        ready jobs of that type
                                                                (every type, zeros too)
``ScheduledJobs``      Count    service, queue                  delayed or awaiting retry
``RunningJobs``        Count    service, queue                  leased by a processor
``DeadLetterJobs``     Count    service, queue                  dead-letter queue size
``OldestReadyJobAge``  Seconds  service, queue                  age of the oldest ready job
                                                                (0 when none is ready)
``DisabledEndpoints``  Count    service, queue                  partners whose webhook
                                                                endpoint is disabled (410)
``MonitorRedisErrors`` Count    service, queue                  0 per good run, 1 per run
                                                                whose Redis read failed
=====================  =======  ==============================  ==========================

- ``service`` is always ``queue-monitor`` (``METRICS_SERVICE``), fixed in code so the
  alarms' dimensions cannot drift with an environment variable.
- ``queue`` is the queue namespace (``JOBS_NAMESPACE``): two stacks in one account
  (dev and prod) publish distinct metrics instead of mixing their numbers.
- ``job_type`` is a ``JobType`` value, e.g. ``send_release_email``.

The stats arrive in one EMF line for the totals plus one line per job type (EMF puts
one set of dimension values on a line). When the stats scan was truncated (more than
100 000 entries), the counts are lower bounds: the totals line carries the metadata
field ``stats_truncated`` and a warning is logged.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from jobs_core import QueueStats

METRICS_NAMESPACE = "EscrowJobs"
METRICS_SERVICE = "queue-monitor"

QUEUE_DEPTH = "QueueDepth"
SCHEDULED_JOBS = "ScheduledJobs"
RUNNING_JOBS = "RunningJobs"
DEAD_LETTER_JOBS = "DeadLetterJobs"
OLDEST_READY_JOB_AGE = "OldestReadyJobAge"
MONITOR_REDIS_ERRORS = "MonitorRedisErrors"
DISABLED_ENDPOINTS = "DisabledEndpoints"

DIM_SERVICE = "service"
DIM_QUEUE = "queue"
DIM_JOB_TYPE = "job_type"


# EphemeralMetrics, not Metrics: Metrics shares its metric set between every instance
# in the process (class attributes), so a processor's metrics imported in the same
# process would land in our lines. Ours flushes explicitly, several lines per run.
metrics = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=METRICS_SERVICE)


def publish_stats(sink: EphemeralMetrics, stats: QueueStats, *, queue: str) -> None:
    """Write the stats as EMF lines: the totals, then the ready depth of each job type."""
    sink.add_dimension(DIM_QUEUE, queue)
    sink.add_metric(QUEUE_DEPTH, MetricUnit.Count, stats.ready)
    sink.add_metric(SCHEDULED_JOBS, MetricUnit.Count, stats.scheduled)
    sink.add_metric(RUNNING_JOBS, MetricUnit.Count, stats.running)
    sink.add_metric(DEAD_LETTER_JOBS, MetricUnit.Count, stats.dead_letter)
    sink.add_metric(OLDEST_READY_JOB_AGE, MetricUnit.Seconds, round(stats.oldest_ready_age_s, 3))
    sink.add_metric(MONITOR_REDIS_ERRORS, MetricUnit.Count, 0)
    sink.add_metric(DISABLED_ENDPOINTS, MetricUnit.Count, stats.disabled_endpoints)
    if stats.truncated:
        sink.add_metadata("stats_truncated", True)
    sink.flush_metrics(raise_on_empty_metrics=True)
    for job_type, type_stats in sorted(stats.by_type.items()):
        sink.add_dimension(DIM_QUEUE, queue)
        sink.add_dimension(DIM_JOB_TYPE, job_type.value)
        sink.add_metric(QUEUE_DEPTH, MetricUnit.Count, type_stats.ready)
        sink.flush_metrics(raise_on_empty_metrics=True)


def publish_redis_error(sink: EphemeralMetrics, *, queue: str) -> None:
    """Write one EMF line saying this run could not read the queue."""
    sink.add_dimension(DIM_QUEUE, queue)
    sink.add_metric(MONITOR_REDIS_ERRORS, MetricUnit.Count, 1)
    sink.flush_metrics(raise_on_empty_metrics=True)


def summary(stats: QueueStats) -> dict[str, Any]:
    """What the invocation answers (shown by ``sam local invoke``)."""
    return {
        "ready": stats.ready,
        "scheduled": stats.scheduled,
        "running": stats.running,
        "deadLetter": stats.dead_letter,
        "oldestReadyAgeS": round(stats.oldest_ready_age_s, 3),
        "truncated": stats.truncated,
        "disabledEndpoints": stats.disabled_endpoints,
        "readyByType": {t.value: s.ready for t, s in sorted(stats.by_type.items())},
    }
