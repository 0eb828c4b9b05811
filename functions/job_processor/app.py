"""Lambda entry point of the processor: ``app.lambda_handler``.

The task root is this folder: this file and the ``operator_api`` package beside it,
which tells the events apart (schedule, kick, fan-out: drain; HTTP: the operator API).
At import time nothing but the logger, the resolver and the routes exists; the queue
and its clients are built on the first event (``wiring.services()``, cached).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from jobs_core import capture_lambda_handler  # X-Ray: a subsegment per job, with its ids
from operator_api.events import handle
from operator_api.wiring import services


@capture_lambda_handler
def lambda_handler(event: Mapping[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(event, context, services())
