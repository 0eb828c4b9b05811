"""Lambda entry point of the queue monitor: ``app.lambda_handler``, every minute.

The task root is this folder: this file and the ``queue_monitor`` package beside it
(the metrics and what they mean are in ``queue_monitor/metrics.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from jobs_core import BackendError, capture_lambda_handler
from queue_monitor.metrics import metrics, publish_redis_error, publish_stats, summary
from queue_monitor.source import get_queue

logger = Logger()


@capture_lambda_handler
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
