"""The exception hierarchy of jobs_core. Imports nothing from the package.

Every error the layer raises is a ``JobsCoreError``; callers catch the branch
they can act on. Driver errors (redis-py, httpx, the Upstash SDK) are wrapped
once, at the backend boundary, into ``BackendError`` with the cause chained.
"""

from __future__ import annotations


class JobsCoreError(Exception):
    """Base of every error raised by jobs_core."""


class ConfigurationError(JobsCoreError):
    """The settings are missing or contradict each other (e.g. no Redis in Lambda)."""


class BackendError(JobsCoreError):
    """Redis could not be reached or answered with an error.

    ``backend`` names the backend (``upstash``, ``redis``, ``memory``) so an
    operator reading the log knows which service failed.
    """

    def __init__(
        self, backend: str, message: str, *, status: int | None = None, transient: bool = False
    ) -> None:
        self.backend = backend
        self.status = status
        # True when the command may not have run (connection lost, timeout, 5xx): resending
        # may help, and every script is written so that a resend does not double its effect.
        self.transient = transient
        detail = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"[{backend}] {message}{detail}")


class ScriptNotLoadedError(BackendError):
    """The server does not know the script's SHA (NOSCRIPT); the caller resends it with EVAL."""


class InvalidJobError(JobsCoreError):
    """A job was refused before anything was written: unknown type, bad payload, too large."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class InvalidArgumentError(InvalidJobError):
    """An argument of a queue operation is malformed (an actor, an escrow id, a state)."""


class UnknownJobTypeError(InvalidJobError):
    """The job type is not one of the known job types."""


class PayloadValidationError(InvalidJobError):
    """The payload does not match its job type's model."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        errors: list[dict[str, object]] | None = None,
    ) -> None:
        self.errors = errors or []
        super().__init__(message, field=field)


class PayloadTooLargeError(InvalidJobError):
    """The serialized payload exceeds the configured size limit."""


class JobNotFoundError(JobsCoreError):
    """No job (or dead-letter entry) has that id."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"job {job_id} not found")


class JobStateError(JobsCoreError):
    """The job exists but its state does not allow the action (e.g. cancel a running job)."""

    def __init__(self, job_id: str, state: str, action: str) -> None:
        self.job_id, self.state, self.action = job_id, state, action
        super().__init__(f"cannot {action} job {job_id}: it is {state}")


class LeaseLostError(JobsCoreError):
    """The caller's lease on a job expired and was taken over, or the job was settled already.

    The stale holder must stop: writing its result would overwrite the new holder's state.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"lease on job {job_id} was lost")


class RetryableJobError(JobsCoreError):
    """Raised by a handler: the effect may succeed later. ``delay_s`` overrides the backoff."""

    def __init__(self, message: str, *, delay_s: float | None = None) -> None:
        self.delay_s = delay_s
        super().__init__(message)


class PermanentJobError(JobsCoreError):
    """Raised by a handler: retrying cannot help; the job goes to the dead-letter queue."""


class EndpointGoneError(PermanentJobError):
    """Raised by a webhook handler on HTTP 410: the partner's endpoint is gone. The queue
    disables the partner and holds its webhooks (none dead-lettered) until re-enabled."""
