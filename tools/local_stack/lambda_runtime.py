"""Run a Lambda handler in-process the way the Lambda runtime would call it.

``FakeLambdaContext`` has what handlers and Powertools read (request id, function name
and ARN, memory, log group) and a real remaining-time budget: it counts down from the
function's timeout. ``LocalFunction`` imports the handler on first use and invokes it
with a fresh context per event.

    >>> ctx = FakeLambdaContext("escrow-jobs-local-monitor", timeout_s=15)
    >>> 14_000 < ctx.get_remaining_time_in_millis() <= 15_000
    True
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .template import ACCOUNT_ID, REGION, FunctionSpec

Handler = Callable[[Any, Any], Any]


class FakeLambdaContext:
    """The attributes of ``awslambdaric``'s context object; the clock is monotonic."""

    def __init__(
        self,
        function_name: str,
        *,
        timeout_s: float,
        memory_mb: int = 128,
        request_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._clock = clock
        self._deadline = clock() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))


@dataclass
class LocalFunction:
    """One function of the template, loaded lazily; ``invoke`` runs one event."""

    spec: FunctionSpec
    _handler: Handler | None = field(default=None, init=False, repr=False)
    _load_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    # How many events may run at once, as that many warm Lambda instances would. One for a
    # handler that keeps the current event in module state (the processor's operator API);
    # the escrow API keeps one resolver per thread, so it runs several.
    instances: int = 1
    _slots: threading.BoundedSemaphore | None = field(default=None, init=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    def handler(self) -> Handler:
        with self._load_lock:
            if self._handler is None:
                self._handler = getattr(self._module(), self.spec.attribute)
            return self._handler

    def _module(self) -> ModuleType:
        """The handler's module: as a package module of the repository (``functions.x.app``,
        which relative imports need), else as Lambda loads it, a top-level module of the
        task root (the CodeUri folder on ``sys.path``), under a name unique to the
        function since every function's file may be called ``app.py``."""
        try:
            return importlib.import_module(self.spec.module)
        except ImportError:
            code_dir, name = self.spec.code_dir, self.spec.handler_file
            if code_dir is None or not name:
                raise
        path = code_dir / (name.replace(".", "/") + ".py")
        unique = f"_lambda_{self.spec.logical_id}_{name.replace('.', '_')}"
        if str(code_dir) not in sys.path:
            sys.path.insert(0, str(code_dir))
        spec = importlib.util.spec_from_file_location(unique, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[unique] = module
        spec.loader.exec_module(module)
        return module

    def context(self) -> FakeLambdaContext:
        return FakeLambdaContext(
            self.spec.name, timeout_s=self.spec.timeout_s, memory_mb=self.spec.memory_mb
        )

    def invoke(self, event: Any, *, serial: bool = False) -> Any:
        """Call the handler with ``event`` and a new context; with ``serial``, on one of the
        function's ``instances`` (waiting for a free one)."""
        handler = self.handler()
        if not serial:
            return handler(event, self.context())
        with self._instance_slots():
            return handler(event, self.context())

    def _instance_slots(self) -> threading.BoundedSemaphore:
        with self._load_lock:
            if self._slots is None:
                self._slots = threading.BoundedSemaphore(max(1, self.instances))
            return self._slots
