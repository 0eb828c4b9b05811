"""Start the processor Lambda asynchronously: the API's kick, and the processor's fan-out.

The kick cuts latency without a long-running worker: after an enqueue whose script saw
no processor-active marker (``EnqueueResult.processor_active`` is False), the API
invokes the processor with ``InvocationType="Event"`` (Lambda queues the event and
answers 202 at once), so work starts within about a second instead of at the next
scheduled minute. A kick is one short call: the client has tight connect/read timeouts
and no retries, and any error is logged and swallowed; the API's response never fails
because of it. boto3 is imported on the first kick, not at import time.

Configuration (``Kicker.from_environ(os.environ)``):

==================================  ==========================================  =========
variable                            meaning                                     default
==================================  ==========================================  =========
``JOB_PROCESSOR_FUNCTION_NAME``     the processor function's name or ARN        (none: off)
``JOBS_KICK_ENABLED``               ``true``/``false``                          true in Lambda
                                                                                (``AWS_LAMBDA_
                                                                                FUNCTION_NAME``
                                                                                set), else false
``JOBS_KICK_TIMEOUT_S``             connect and read timeout of the invoke      1.0
==================================  ==========================================  =========

    kicker = Kicker.from_environ(os.environ)          # once, in a cached factory
    result = queue.enqueue_batch(specs, read_marker=True)
    kicker.kick(result)                                # True when an invoke was sent

The events sent (the processor's handler recognises them by ``source``):
``{"source": "escrow-jobs.kick", "reason": "enqueue", "hints": [...]}`` and, for fan-out,
``{"source": "escrow-jobs.fanout", "generation": 1}``. A kick's ``hints`` are the jobs its
enqueue wrote, with their records, so the drain leases them without reading them
(``queue/hints.py``: jobs without personal data only).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..logging import logger
from ..queue import EnqueueResult

ENV_FUNCTION_NAME = "JOB_PROCESSOR_FUNCTION_NAME"
ENV_KICK_ENABLED = "JOBS_KICK_ENABLED"
ENV_KICK_TIMEOUT = "JOBS_KICK_TIMEOUT_S"
ENV_IN_LAMBDA = "AWS_LAMBDA_FUNCTION_NAME"

KICK_SOURCE = "escrow-jobs.kick"
FANOUT_SOURCE = "escrow-jobs.fanout"

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class LambdaInvoker(Protocol):
    """The one method of boto3's Lambda client that a kick uses."""

    def invoke(self, **kwargs: Any) -> Any: ...


@dataclass
class Kicker:
    """Invokes the processor function asynchronously; never raises.

    ``client`` may be injected (tests, or a shared boto3 client); otherwise a boto3
    Lambda client with ``timeout_s`` timeouts and no retries is built on first use.
    """

    function_name: str | None
    enabled: bool = True
    timeout_s: float = 1.0
    client: LambdaInvoker | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], *, client: LambdaInvoker | None = None
    ) -> Kicker:
        raw = environ.get(ENV_KICK_ENABLED, "").strip().lower()
        if raw in _TRUE:
            enabled = True
        elif raw in _FALSE:
            enabled = False
        else:
            enabled = bool(environ.get(ENV_IN_LAMBDA))  # on by default in AWS only
        try:
            timeout = float(environ.get(ENV_KICK_TIMEOUT, "") or 1.0)
        except ValueError:
            logger.warning("ignoring a non-numeric %s", ENV_KICK_TIMEOUT)
            timeout = 1.0
        name = environ.get(ENV_FUNCTION_NAME, "").strip() or None
        return cls(function_name=name, enabled=enabled, timeout_s=timeout, client=client)

    @property
    def active(self) -> bool:
        return self.enabled and bool(self.function_name)

    def kick(self, result: EnqueueResult | None = None, *, reason: str = "enqueue") -> bool:
        """Invoke the processor unless one is draining (``result.processor_active``) or
        kicking is off. True when the invoke was accepted."""
        if not self.active or (result is not None and result.processor_active):
            return False
        event: dict[str, Any] = {"source": KICK_SOURCE, "reason": reason}
        queued = result.queued if result is not None else []
        if queued:
            from ..queue.hints import hints_for  # pydantic's model: on the first kick

            event["hints"] = [h.model_dump() for h in hints_for(queued)]
        return self.invoke(event)

    def fan_out(self, count: int, *, generation: int = 1) -> int:
        """Start ``count`` more processors; returns how many invokes were accepted."""
        if not self.active:
            return 0
        event = {"source": FANOUT_SOURCE, "generation": generation}
        return sum(self.invoke(event) for _ in range(max(0, count)))

    def invoke(self, event: Mapping[str, Any]) -> bool:
        """One asynchronous invoke of the processor with ``event``; False on any error."""
        if not self.function_name:
            return False
        try:
            response = self._client().invoke(
                FunctionName=self.function_name,
                InvocationType="Event",
                Payload=json.dumps(event).encode(),
            )
            status = int(response.get("StatusCode", 0)) if isinstance(response, Mapping) else 0
            if status != 202:
                logger.warning("processor invoke answered %s, not 202", status)
                return False
            return True
        except Exception as exc:  # a kick must never fail its caller
            logger.warning(
                "could not invoke the processor",
                extra={"function": self.function_name, "error": f"{type(exc).__name__}: {exc}"},
            )
            return False

    def _client(self) -> LambdaInvoker:
        with self._lock:
            if self.client is None:
                self.client = _boto3_lambda_client(self.timeout_s)
            return self.client


def _boto3_lambda_client(timeout_s: float) -> LambdaInvoker:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"total_max_attempts": 1, "mode": "standard"},  # one try: best effort
    )
    return boto3.client("lambda", config=config)  # type: ignore[return-value]


def kick_processor(
    result: EnqueueResult | None,
    *,
    enabled: bool,
    function_name: str | None,
    client: LambdaInvoker | None = None,
    timeout_s: float = 1.0,
) -> bool:
    """Function form of ``Kicker.kick`` for one-off use (a ``Kicker`` reuses its client)."""
    kicker = Kicker(function_name, enabled=enabled, timeout_s=timeout_s, client=client)
    return kicker.kick(result)
