"""jobs_core: the escrow side-effect job queue on Redis (Upstash REST, TCP, or embedded).

The names in ``__all__`` are the public API; Lambda functions import nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .backoff import backoff_delay
from .clock import Clock, ManualClock, SystemClock
from .config import Settings
from .errors import (
    BackendError,
    ConfigurationError,
    EndpointGoneError,
    InvalidArgumentError,
    InvalidJobError,
    JobNotFoundError,
    JobsCoreError,
    JobStateError,
    LeaseLostError,
    PayloadTooLargeError,
    PayloadValidationError,
    PermanentJobError,
    RetryableJobError,
    UnknownJobTypeError,
)
from .logging import logger, redact_emails, route_layer_loggers
from .models import (
    PAYLOAD_MODELS,
    ClaimedJob,
    EnqueueOptions,
    EventKind,
    Job,
    JobEvent,
    JobState,
    JobType,
    PartnerHealth,
    QueueStats,
    TypeStats,
)
from .secret_refs import AwsSecretResolver, resolver_from_env
from .tracing import annotate_escrow, capture_lambda_handler

if TYPE_CHECKING:
    from .defaults import (
        default_handlers,
        enqueue_job,
        enqueue_jobs,
        get_dead_letter_jobs,
        get_job_status,
        get_queue_stats,
        process_batch,
        process_next_job,
    )
    from .processor import HandlerRegistry, Processor, ProcessorConfig
    from .processor.kick import FANOUT_SOURCE, KICK_SOURCE, Kicker, LambdaInvoker, kick_processor
    from .processor.metrics import publish_drain
    from .processor.report import BatchResult, DrainReport, JobOutcome, JobResult, fanout_count
    from .queue import (
        LIST_STATES,
        AuditEntry,
        EnqueueResult,
        JobPage,
        JobQueue,
        JobSpec,
        ListState,
        Outcome,
        check_actor,
    )
    from .queue.backends import Backend, backend_from_settings, memory_backend
    from .queue.backends.redis_tcp import RedisBackend
    from .queue.hints import ClaimHint, parse_hints
    from .queue.scripts import SettleCode
    from .views import audit_view, event_view, iso, job_summary, job_view, redact_data, stats_view
    from .webhook_urls import Resolver, UnsafeDestinationError, check_webhook_url, system_resolver

# Imported on first use, so a Lambda pays at cold start only for what it touches: the
# monitor never loads the processor, the workers or their payload models; redis-py is
# heavy and a Lambda on Upstash never needs it. The queue (its operations, specs, key
# layout and the Lua scripts it reads) loads when the first event builds one, and the
# views only where something is shown (the operator API, the escrow API).
_LAZY = {
    **dict.fromkeys(
        (
            "LIST_STATES",
            "AuditEntry",
            "EnqueueResult",
            "JobPage",
            "JobQueue",
            "JobSpec",
            "ListState",
            "Outcome",
            "check_actor",
        ),
        ".queue",
    ),
    **dict.fromkeys(("Backend", "backend_from_settings", "memory_backend"), ".queue.backends"),
    "SettleCode": ".queue.scripts",
    **dict.fromkeys(("ClaimHint", "parse_hints"), ".queue.hints"),
    **dict.fromkeys(
        ("audit_view", "event_view", "iso", "job_summary", "job_view", "redact_data", "stats_view"),
        ".views",
    ),
    **dict.fromkeys(
        (
            "default_handlers",
            "enqueue_job",
            "enqueue_jobs",
            "get_dead_letter_jobs",
            "get_job_status",
            "get_queue_stats",
            "process_batch",
            "process_next_job",
        ),
        ".defaults",
    ),
    **dict.fromkeys(("HandlerRegistry", "Processor", "ProcessorConfig"), ".processor"),
    **dict.fromkeys(
        ("FANOUT_SOURCE", "KICK_SOURCE", "Kicker", "LambdaInvoker", "kick_processor"),
        ".processor.kick",
    ),
    "publish_drain": ".processor.metrics",
    **dict.fromkeys(
        ("BatchResult", "DrainReport", "JobOutcome", "JobResult", "fanout_count"),
        ".processor.report",
    ),
    "RedisBackend": ".queue.backends.redis_tcp",
    **dict.fromkeys(
        ("Resolver", "UnsafeDestinationError", "check_webhook_url", "system_resolver"),
        ".webhook_urls",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobs_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "FANOUT_SOURCE",
    "KICK_SOURCE",
    "LIST_STATES",
    "PAYLOAD_MODELS",
    "AuditEntry",
    "AwsSecretResolver",
    "Backend",
    "BackendError",
    "BatchResult",
    "ClaimHint",
    "ClaimedJob",
    "Clock",
    "ConfigurationError",
    "DrainReport",
    "EndpointGoneError",
    "EnqueueOptions",
    "EnqueueResult",
    "EventKind",
    "HandlerRegistry",
    "InvalidArgumentError",
    "InvalidJobError",
    "Job",
    "JobEvent",
    "JobNotFoundError",
    "JobOutcome",
    "JobPage",
    "JobQueue",
    "JobResult",
    "JobSpec",
    "JobState",
    "JobStateError",
    "JobType",
    "JobsCoreError",
    "Kicker",
    "LambdaInvoker",
    "LeaseLostError",
    "ListState",
    "ManualClock",
    "Outcome",
    "PartnerHealth",
    "PayloadTooLargeError",
    "PayloadValidationError",
    "PermanentJobError",
    "Processor",
    "ProcessorConfig",
    "QueueStats",
    "RedisBackend",
    "Resolver",
    "RetryableJobError",
    "Settings",
    "SettleCode",
    "SystemClock",
    "TypeStats",
    "UnknownJobTypeError",
    "UnsafeDestinationError",
    "annotate_escrow",
    "audit_view",
    "backend_from_settings",
    "backoff_delay",
    "capture_lambda_handler",
    "check_actor",
    "check_webhook_url",
    "default_handlers",
    "enqueue_job",
    "enqueue_jobs",
    "event_view",
    "fanout_count",
    "get_dead_letter_jobs",
    "get_job_status",
    "get_queue_stats",
    "iso",
    "job_summary",
    "job_view",
    "kick_processor",
    "logger",
    "memory_backend",
    "parse_hints",
    "process_batch",
    "process_next_job",
    "publish_drain",
    "redact_data",
    "redact_emails",
    "resolver_from_env",
    "route_layer_loggers",
    "stats_view",
    "system_resolver",
]
