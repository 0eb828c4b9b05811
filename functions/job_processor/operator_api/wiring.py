"""Everything the processor's handler needs, built from the environment on first use.

Environment (besides the queue's own settings, see ``jobs_core.config``, and the
processor's ``JOB_PROCESSOR_*`` knobs, see ``jobs_core.ProcessorConfig``):

=============================  ==================================================
``JOB_PROCESSOR_TOKEN_PARAM``  in AWS: the SSM parameter (a name starting with "/"
                               or an SSM ARN) or Secrets Manager secret holding the
                               operator token; read through Powertools parameters,
                               cached 5 minutes
``JOB_PROCESSOR_SECRET_TOKEN`` locally: the token itself (ignored when the param is set)
``JOB_PROCESSOR_FUNCTION_NAME`` the function fan-out invokes (default: this function)
``UPSTASH_TOKEN_PARAM``        the Secrets Manager secret with the Upstash REST token
                               (as the monitor reads it), unless the token is set
=============================  ==================================================

Nothing is built at import time; ``services()`` builds it all on the first event and
keeps it for the life of the execution environment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from jobs_core import Settings, route_layer_loggers

from .auth import Fetch, TokenCheck, fetch_parameter
from .history import CloudWatchHistory

if TYPE_CHECKING:
    from jobs_core import (
        HandlerRegistry,
        JobQueue,
        Kicker,
        LambdaInvoker,
        Processor,
        ProcessorConfig,
    )

ENV_TOKEN_PARAM = "JOB_PROCESSOR_TOKEN_PARAM"  # noqa: S105 (a variable name)
ENV_TOKEN = "JOB_PROCESSOR_SECRET_TOKEN"  # noqa: S105
ENV_FUNCTION_NAME = "JOB_PROCESSOR_FUNCTION_NAME"
ENV_SELF_NAME = "AWS_LAMBDA_FUNCTION_NAME"


@dataclass(frozen=True)
class Services:
    queue: JobQueue
    processor: Processor
    token: TokenCheck
    fanout: Kicker
    config: ProcessorConfig
    history: CloudWatchHistory


def build_services(
    environ: Mapping[str, str],
    *,
    handlers: HandlerRegistry | None = None,
    queue: JobQueue | None = None,
    lambda_client: LambdaInvoker | None = None,
    fetch: Fetch = fetch_parameter,
    cloudwatch: Callable[[], Any] | None = None,
) -> Services:
    """Everything the handler needs, from ``environ``; tests inject the rest."""
    # The queue, the processor, its kicker and the workers load here, on the first event,
    # not at import: an import that builds nothing has nothing of theirs to pay for.
    from jobs_core import JobQueue, Kicker, Processor, ProcessorConfig

    env = dict(environ)
    config = ProcessorConfig.from_environ(env)
    queue = queue or JobQueue.from_settings(Settings.from_env(env, resolve_secret=fetch))
    route_layer_loggers()
    processor = Processor(queue, handlers if handlers is not None else default_handlers(env),
                          config=config)  # fmt: skip
    fanout = Kicker(
        function_name=env.get(ENV_FUNCTION_NAME) or env.get(ENV_SELF_NAME),
        enabled=config.max_fanout > 0,
        client=lambda_client,
    )
    token = TokenCheck(env.get(ENV_TOKEN_PARAM) or None, env.get(ENV_TOKEN) or None, fetch)
    history = CloudWatchHistory(cloudwatch or _cloudwatch_client)
    return Services(queue, processor, token, fanout, config, history)


def default_handlers(environ: Mapping[str, str] | None = None) -> HandlerRegistry:
    """``jobs_core.default_handlers``, loaded on first use (with the processor's modules)."""
    from jobs_core import default_handlers as registry

    return registry(environ)


def _cloudwatch_client() -> Any:
    import boto3  # imported on first use: only the console's chart needs it

    return boto3.client("cloudwatch")


@cache
def services() -> Services:
    """Built on the first event and kept for the life of the execution environment."""
    return build_services(os.environ)
