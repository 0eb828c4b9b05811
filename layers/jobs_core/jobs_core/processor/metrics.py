"""A drain's report as CloudWatch metrics in Embedded Metric Format (EMF), per invocation.

Powertools ``EphemeralMetrics`` writes JSON lines to stdout that CloudWatch Logs turns
into metrics (no ``PutMetricData`` call). These names, units and dimensions are what
alarms and dashboards refer to; ``test_processor_metrics`` keeps them equal to this table.

Namespace ``EscrowJobs``.

======================  ============  =========================  ==============================
name                    unit          dimensions                 value (per invocation)
======================  ============  =========================  ==============================
``JobsProcessed``       Count         service, queue             jobs run to an outcome (all
                                                                 but released)
``JobsSucceeded``       Count         service, queue             handler returned
``JobsRetried``         Count         service, queue             failed, due again later
``JobsDeadLettered``    Count         service, queue             permanent error, attempts used
                                                                 up, or no handler for the type
``JobsReleased``        Count         service, queue             claimed, not started in time:
                                                                 back in the queue, no attempt
``JobsTimedOut``        Count         service, queue             ran past the job timeout
                                                                 (also counted as retried/dead)
``LeasesLost``          Count         service, queue             ran, but the lease was taken
                                                                 over: the result was dropped
``DrainDuration``       Milliseconds  service, queue             the drain's wall time
``ProcessorFanOut``     Count         service, queue             processors this one started
``RedisOutOfMemory``    Count         service, queue             claims that found Redis
                                                                 refusing writes for memory
                                                                 (maxmemory, noeviction)
``JobsProcessed``       Count         service, queue, job_type   as above, per job type
``JobsSucceeded``       Count         service, queue, job_type
``JobsRetried``         Count         service, queue, job_type
``JobsDeadLettered``    Count         service, queue, job_type
``JobDuration``         Milliseconds  service, queue, job_type   one value per job (a sample
                                                                 of at most 1000 per type)
======================  ============  =========================  ==============================

- ``service`` is ``job-processor`` (``METRICS_SERVICE``), fixed in code so alarm
  dimensions cannot drift with an environment variable (as the monitor does).
- ``queue`` is the queue namespace (``Settings.namespace``): dev and prod stacks in one
  account publish distinct metrics.
- ``job_type`` is a ``JobType`` value; per-type lines are written only for the types
  that had jobs in this invocation. The totals line is written on every invocation,
  zeros included, so an alarm on ``JobsDeadLettered`` always has data.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from .report import DrainReport, Tally

METRICS_NAMESPACE = "EscrowJobs"
METRICS_SERVICE = "job-processor"

JOBS_PROCESSED = "JobsProcessed"
JOBS_SUCCEEDED = "JobsSucceeded"
JOBS_RETRIED = "JobsRetried"
JOBS_DEAD_LETTERED = "JobsDeadLettered"
JOBS_RELEASED = "JobsReleased"
JOBS_TIMED_OUT = "JobsTimedOut"
LEASES_LOST = "LeasesLost"
DRAIN_DURATION = "DrainDuration"
PROCESSOR_FAN_OUT = "ProcessorFanOut"
REDIS_OUT_OF_MEMORY = "RedisOutOfMemory"
JOB_DURATION = "JobDuration"

DIM_SERVICE = "service"
DIM_QUEUE = "queue"
DIM_JOB_TYPE = "job_type"


def new_sink() -> EphemeralMetrics:
    """A metrics sink of our own (``Metrics`` would share its set across the process)."""
    return EphemeralMetrics(namespace=METRICS_NAMESPACE, service=METRICS_SERVICE)


def publish_drain(
    report: DrainReport, *, queue: str, fanout: int = 0, sink: EphemeralMetrics | None = None
) -> None:
    """Write ``report`` as EMF lines: the totals, then one line per job type seen."""
    sink = sink or new_sink()
    total = report.total
    sink.add_dimension(DIM_QUEUE, queue)
    _counts(sink, total)
    sink.add_metric(JOBS_RELEASED, MetricUnit.Count, total.released)
    sink.add_metric(JOBS_TIMED_OUT, MetricUnit.Count, total.timed_out)
    sink.add_metric(LEASES_LOST, MetricUnit.Count, total.lease_lost)
    sink.add_metric(DRAIN_DURATION, MetricUnit.Milliseconds, round(report.elapsed_s * 1000, 1))
    sink.add_metric(PROCESSOR_FAN_OUT, MetricUnit.Count, fanout)
    sink.add_metric(REDIS_OUT_OF_MEMORY, MetricUnit.Count, report.redis_full)
    sink.add_metadata("stop_reason", report.stop_reason.value)
    sink.flush_metrics(raise_on_empty_metrics=True)
    for job_type, tally in sorted(report.by_type.items()):
        if tally.processed == 0:
            continue  # only released: nothing ran
        sink.add_dimension(DIM_QUEUE, queue)
        sink.add_dimension(DIM_JOB_TYPE, job_type.value)
        _counts(sink, tally)
        for value in tally.durations_ms:
            sink.add_metric(JOB_DURATION, MetricUnit.Milliseconds, round(value, 1))
        # Powertools writes a line by itself every 100 values: the last may leave none.
        if sink.metric_set:
            sink.flush_metrics(raise_on_empty_metrics=True)
        else:
            sink.clear_metrics()


def _counts(sink: EphemeralMetrics, tally: Tally) -> None:
    sink.add_metric(JOBS_PROCESSED, MetricUnit.Count, tally.processed)
    sink.add_metric(JOBS_SUCCEEDED, MetricUnit.Count, tally.succeeded)
    sink.add_metric(JOBS_RETRIED, MetricUnit.Count, tally.retried)
    sink.add_metric(JOBS_DEAD_LETTERED, MetricUnit.Count, tally.dead_lettered)
