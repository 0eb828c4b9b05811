"""The processor: claim → dispatch → settle within a deadline, and the kick that starts one.

``drain``    the ``Processor`` (leases, the processor-active marker, the drain loop)
``batch``    one claimed batch: runners on the pool, job timeouts, outcomes, one settle
``pool``     the bounded worker threads that can give up on a stuck handler
``config``   the knobs and their ``JOB_PROCESSOR_*`` environment variables
``report``   what a drain did (per job, per batch, per drain); ``metrics`` turns it into EMF
``kick``     starting a processor Lambda asynchronously (the API's kick, the fan-out)
"""

from __future__ import annotations

from .batch import Handler, HandlerRegistry
from .config import ProcessorConfig
from .drain import MARKER_RELEASE_S, Processor

__all__ = [
    "MARKER_RELEASE_S",
    "Handler",
    "HandlerRegistry",
    "Processor",
    "ProcessorConfig",
]
