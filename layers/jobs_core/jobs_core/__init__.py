"""jobs_core: the escrow side-effect job queue on Redis (Upstash REST, TCP, or embedded).

The names in ``__all__`` are the public API; Lambda functions import nothing else.
"""

from __future__ import annotations

from .backends import Backend, RedisBackend, backend_from_settings, memory_backend
from .backoff import backoff_delay
from .clock import Clock, ManualClock, SystemClock
from .config import Settings
from .errors import (
    BackendError,
    ConfigurationError,
    InvalidJobError,
    JobNotFoundError,
    JobsCoreError,
    LeaseLostError,
    PayloadTooLargeError,
    PayloadValidationError,
    PermanentJobError,
    RetryableJobError,
    UnknownJobTypeError,
)
from .models import (
    PAYLOAD_MODELS,
    ClaimedJob,
    EnqueueOptions,
    Job,
    JobState,
    JobType,
    QueueStats,
    TypeStats,
)
from .queue import EnqueueResult, JobQueue, JobSpec, Outcome
from .scripts import SettleCode

__all__ = [
    "PAYLOAD_MODELS",
    "Backend",
    "BackendError",
    "ClaimedJob",
    "Clock",
    "ConfigurationError",
    "EnqueueOptions",
    "EnqueueResult",
    "InvalidJobError",
    "Job",
    "JobNotFoundError",
    "JobQueue",
    "JobSpec",
    "JobState",
    "JobType",
    "JobsCoreError",
    "LeaseLostError",
    "ManualClock",
    "Outcome",
    "PayloadTooLargeError",
    "PayloadValidationError",
    "PermanentJobError",
    "QueueStats",
    "RedisBackend",
    "RetryableJobError",
    "Settings",
    "SettleCode",
    "SystemClock",
    "TypeStats",
    "UnknownJobTypeError",
    "backend_from_settings",
    "backoff_delay",
    "memory_backend",
]
