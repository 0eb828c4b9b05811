"""Lambda entry point of the escrow API: ``app.lambda_handler``.

The task root is this folder: this file and the ``escrow`` package beside it (the
routes are in ``escrow/api.py``, the operations in ``escrow/service.py``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from escrow.api import current_resolver, reconcile_now, sweep_outbox_now
from jobs_core import (
    capture_lambda_handler,  # X-Ray: the request, annotated with its escrow id
    logger,  # the layer's Powertools logger: JSON, email addresses redacted
)


@capture_lambda_handler
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """An HTTP API v2 request, the outbox sweep's schedule (every minute), or the
    reconciler's (``{"task": "reconcile"}``: hourly, and ``escrow-jobs reconcile``)."""
    if event.get("task") == "reconcile":
        return reconcile_now(event, lambda: context.get_remaining_time_in_millis() / 1000)
    if event.get("source") == "aws.events":
        return sweep_outbox_now()
    return current_resolver().resolve(event, context)
