"""Queue monitor: every minute, read the queue statistics and publish them as metrics.

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

A Redis failure (``BackendError``) publishes ``MonitorRedisErrors=1``, logs an error,
and is raised again: the invocation did not do its job, so Lambda should count it
(its ``Errors`` metric, a failure destination if one is added). The depth metrics are
then missing for that minute, which is what the "monitor metrics missing" alarm
watches. The template sets this function's asynchronous retries to 0: the next
scheduled run, a minute later, is the retry.

In AWS the Upstash REST token is not in the environment: ``UPSTASH_TOKEN_PARAM``
names the Secrets Manager secret that holds it, read by ``Settings.from_env`` when the
queue is built, bypassing Powertools' cache (``_fetch_secret``): on the first run, and
again after a run whose Redis read failed, since the cached queue is dropped then (a
rotated token is picked up that way).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from jobs_core import AwsSecretResolver, BackendError, JobQueue, QueueStats, Settings

METRICS_NAMESPACE = "EscrowJobs"
METRICS_SERVICE = "queue-monitor"

QUEUE_DEPTH = "QueueDepth"
SCHEDULED_JOBS = "ScheduledJobs"
RUNNING_JOBS = "RunningJobs"
DEAD_LETTER_JOBS = "DeadLetterJobs"
OLDEST_READY_JOB_AGE = "OldestReadyJobAge"
MONITOR_REDIS_ERRORS = "MonitorRedisErrors"

DIM_SERVICE = "service"
DIM_QUEUE = "queue"
DIM_JOB_TYPE = "job_type"


logger = Logger()
# EphemeralMetrics, not Metrics: Metrics shares its metric set between every instance
# in the process (class attributes), so a processor's metrics imported in the same
# process would land in our lines. Ours flushes explicitly, several lines per run.
metrics = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=METRICS_SERVICE)

SecretFetcher = Callable[[str], str]


# Read only when the queue is (re)built, and never from Powertools' cache (max age 0):
# after a failure the point is to see a rotated value.
_fetch_secret: SecretFetcher = AwsSecretResolver(max_age_s=0).get


@cache
def get_queue() -> JobQueue:
    """The queue, built on first use and kept for the life of the execution environment."""
    return JobQueue.from_settings(Settings.from_env(os.environ, resolve_secret=_fetch_secret))


def publish_stats(sink: EphemeralMetrics, stats: QueueStats, *, queue: str) -> None:
    """Write the stats as EMF lines: the totals, then the ready depth of each job type."""
    sink.add_dimension(DIM_QUEUE, queue)
    sink.add_metric(QUEUE_DEPTH, MetricUnit.Count, stats.ready)
    sink.add_metric(SCHEDULED_JOBS, MetricUnit.Count, stats.scheduled)
    sink.add_metric(RUNNING_JOBS, MetricUnit.Count, stats.running)
    sink.add_metric(DEAD_LETTER_JOBS, MetricUnit.Count, stats.dead_letter)
    sink.add_metric(OLDEST_READY_JOB_AGE, MetricUnit.Seconds, round(stats.oldest_ready_age_s, 3))
    sink.add_metric(MONITOR_REDIS_ERRORS, MetricUnit.Count, 0)
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
        "readyByType": {t.value: s.ready for t, s in sorted(stats.by_type.items())},
    }


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge schedule (any event works): read the stats once, publish, answer."""
    queue = get_queue()
    namespace = queue.settings.namespace
    try:
        stats = queue.get_queue_stats()
    except BackendError as exc:
        get_queue.cache_clear()  # the next run reconnects and re-reads a rotated token
        publish_redis_error(metrics, queue=namespace)
        logger.exception(
            "queue stats unavailable",
            extra={"backend": exc.backend, "transient": exc.transient, "queue": namespace},
        )
        raise
    publish_stats(metrics, stats, queue=namespace)
    if stats.truncated:
        logger.warning("stats scan truncated: counts are lower bounds", extra={"queue": namespace})
    return summary(stats)
