"""The processor's settings, parsed from a mapping the caller passes (e.g. os.environ)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ConfigurationError

# Environment variable names (parsed from a mapping the caller passes; see ProcessorConfig).
ENV_CONCURRENCY = "JOB_PROCESSOR_CONCURRENCY"
ENV_BATCH_SIZE = "JOB_PROCESSOR_BATCH_SIZE"
ENV_JOB_TIMEOUT = "JOB_PROCESSOR_JOB_TIMEOUT_S"
ENV_SAFETY_MARGIN = "JOB_PROCESSOR_SAFETY_MARGIN_S"
ENV_LEASE_MARGIN = "JOB_PROCESSOR_LEASE_MARGIN_S"
ENV_IDLE_POLL_MIN = "JOB_PROCESSOR_IDLE_POLL_MIN_S"
ENV_IDLE_POLL_MAX = "JOB_PROCESSOR_IDLE_POLL_MAX_S"
ENV_IDLE_EXIT = "JOB_PROCESSOR_IDLE_EXIT_S"
ENV_MARKER_TTL = "JOB_PROCESSOR_MARKER_TTL_S"
ENV_MAX_FANOUT = "JOB_PROCESSOR_MAX_FANOUT"


_ENV_OF_FIELD = {
    "concurrency": ENV_CONCURRENCY,
    "batch_size": ENV_BATCH_SIZE,
    "job_timeout_s": ENV_JOB_TIMEOUT,
    "safety_margin_s": ENV_SAFETY_MARGIN,
    "lease_margin_s": ENV_LEASE_MARGIN,
    "idle_poll_min_s": ENV_IDLE_POLL_MIN,
    "idle_poll_max_s": ENV_IDLE_POLL_MAX,
    "idle_exit_s": ENV_IDLE_EXIT,
    "marker_ttl_s": ENV_MARKER_TTL,
    "max_fanout": ENV_MAX_FANOUT,
}


@dataclass(frozen=True, slots=True)
class ProcessorConfig:
    """The processor's knobs; ``from_environ`` reads them from a mapping such as os.environ.

    ==================================  ========  ==========================================
    variable                            default   meaning
    ==================================  ========  ==========================================
    ``JOB_PROCESSOR_CONCURRENCY``       8         handlers running at once per invocation
    ``JOB_PROCESSOR_BATCH_SIZE``        16        jobs per claim
    ``JOB_PROCESSOR_JOB_TIMEOUT_S``     15        a handler running longer is failed as
                                                  retryable (its thread abandoned)
    ``JOB_PROCESSOR_SAFETY_MARGIN_S``   3         budget kept back from the Lambda timeout
    ``JOB_PROCESSOR_LEASE_MARGIN_S``    15        lease beyond a batch's worst case
    ``JOB_PROCESSOR_IDLE_POLL_MIN_S``   0.1       first pause after an empty poll
    ``JOB_PROCESSOR_IDLE_POLL_MAX_S``   1.0       longest pause (the pause doubles)
    ``JOB_PROCESSOR_IDLE_EXIT_S``       0         a drain that did work polls on this long
                                                  idle; 0: it stops as soon as a claim sees
                                                  nothing due within its budget (new work
                                                  kicks a processor; a job due within the
                                                  budget is waited for either way)
    ``JOB_PROCESSOR_MARKER_TTL_S``      10        life of the processor-active marker
    ``JOB_PROCESSOR_MAX_FANOUT``        4         processors a drain may start (0: off);
                                                  match the reserved concurrency - 1
    ==================================  ========  ==========================================

    Sizing: with the Lambda timeout ``T``, jobs start until ``T - safety - job_timeout``;
    a timeout of at least schedule period + job timeout + margin (e.g. 90 s for a
    one-minute schedule) keeps a processor running at every moment of a busy period.
    """

    concurrency: int = 8  # handlers running at once in one invocation
    batch_size: int = 16  # jobs per claim (two rounds of the default pool)
    job_timeout_s: float = 15.0  # a handler running longer is failed as retryable
    safety_margin_s: float = 3.0  # budget kept back for the final settle and the metrics
    lease_margin_s: float = 15.0  # lease beyond the batch's worst case (settle + resends)
    idle_poll_min_s: float = 0.1  # first pause after an empty poll (doubles up to the max)
    idle_poll_max_s: float = 1.0
    idle_exit_s: float = 0.0  # a drain that did work polls on this long idle (0: stops)
    marker_ttl_s: float = 10.0  # life of the processor-active marker when set
    max_fanout: int = 4  # processors one drain may start when it leaves a backlog

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.batch_size < 1:
            raise ConfigurationError("processor concurrency and batch size must be at least 1")
        if self.job_timeout_s <= 0 or self.safety_margin_s < 0 or self.lease_margin_s < 0:
            raise ConfigurationError("processor timeouts and margins must be positive")
        if not 0 < self.idle_poll_min_s <= self.idle_poll_max_s:
            raise ConfigurationError("idle poll intervals must satisfy 0 < min <= max")
        if self.idle_exit_s < 0 or self.marker_ttl_s <= 0 or self.max_fanout < 0:
            raise ConfigurationError("idle exit, marker TTL and fan-out must not be negative")

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ProcessorConfig:
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = _ENV_OF_FIELD.get(f.name)
            raw = environ.get(name, "").strip() if name else ""
            if not raw:
                continue
            try:
                values[f.name] = int(raw) if f.type in ("int", int) else float(raw)
            except ValueError:
                raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
        return cls(**values)
