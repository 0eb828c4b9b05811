"""The template's functions in this process: loaded, routed, scheduled and invoked.

``FunctionHost`` holds one ``LocalFunction`` per function of ``template.yaml``, hands the
gateway its routes, runs the schedules (``scheduler``): the processor every 2 s (and at
once when kicked), the monitor at the template's rate, and answers the Lambda Invoke
API, so the API's kick and the processor's fan-out reach the processor. What a
scheduled or invoked function prints is captured: EMF lines go to CloudWatch, the rest
is printed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from . import emf
from .api_events import GatewayRoute
from .config import STACK_NAME
from .lambda_runtime import LocalFunction
from .scheduler import Scheduler
from .template import Template
from .throughput import ThroughputHistory

log = logging.getLogger("local_stack.functions")


# Warm instances per function, each running one event at a time (as Lambda does): the
# escrow API serves several requests at once; the processor's operator API keeps its
# current event in module state, so it takes one.
WARM_INSTANCES = {"EscrowApiFunction": 8}


class FunctionHost:
    def __init__(self, template: Template) -> None:
        self.template = template
        self.functions: dict[str, LocalFunction] = {}
        self.scheduler = Scheduler()
        self.forwarder: emf.CloudWatchForwarder | None = None
        self._router_cm: contextlib.AbstractContextManager[emf.StdoutRouter] | None = None
        self._router: emf.StdoutRouter | None = None
        self._last_monitor: str | None = None
        self.throughput = ThroughputHistory()  # the console's chart, from the drains' EMF

    def routes(self) -> list[GatewayRoute]:
        specs = self.template.functions()
        self.functions = {
            logical: LocalFunction(spec, instances=WARM_INSTANCES.get(logical, 1))
            for logical, spec in specs.items()
        }
        return [
            GatewayRoute(r.method, r.path, self.functions[r.function], r.authorized)
            for r in self.template.routes()
        ]

    def load(self, environ: MutableMapping[str, str]) -> None:
        for function in self.functions.values():
            function.handler()  # import now: a broken handler fails the start, not a request
        if environ.get("JOBS_BACKEND") == "memory":
            from jobs_core import memory_backend

            # Create the process's one embedded Redis now, on this thread: built lazily by
            # the first two functions at once (the processor and the monitor threads), a
            # cached factory without a lock can hand each its own empty server.
            memory_backend()

    def start(self, *, process_every_s: float, monitor_every_s: float | None) -> None:
        """Route stdout through the EMF router, then start the schedules."""
        self._router_cm = emf.routed_stdout()
        self._router = self._router_cm.__enter__()
        rates: dict[str, float] = {}
        for schedule in self.template.schedules():
            rates[schedule.function] = min(rates.get(schedule.function, 1e9), schedule.every_s)
        for logical, every in rates.items():
            function = self.functions[logical]
            if logical == "JobProcessorFunction":
                every = process_every_s
            elif logical == "MonitorFunction" and monitor_every_s:
                every = monitor_every_s
            self.scheduler.add(
                logical,
                every,
                self._runner(function),
                rule=f"{STACK_NAME}-{logical}-schedule",
            )
        self.scheduler.start()

    def restore_stdout(self) -> None:
        cm, self._router_cm = self._router_cm, None
        if cm is not None:
            cm.__exit__(None, None, None)

    def _runner(self, function: LocalFunction) -> Callable[[Mapping[str, Any]], None]:
        def run(event: Mapping[str, Any]) -> None:
            self._invoke_captured(function, dict(event))

        return run

    def _invoke_captured(self, function: LocalFunction, event: dict[str, Any]) -> Any:
        """Invoke with stdout captured: EMF lines go to CloudWatch, the rest is printed."""
        assert self._router is not None
        with self._router.capture() as buffer:
            try:
                result = function.invoke(event, serial=True)
            finally:
                self._forward(buffer.getvalue())
        self._summarise(function, event, result)
        return result

    def _forward(self, text: str) -> None:
        metrics, other = emf.split_output(text)
        self.throughput.record(metrics)
        if metrics and self.forwarder is not None:
            try:
                self.forwarder.put(metrics)
            except Exception as exc:  # CloudWatch is a convenience here, never fatal
                log.warning("could not put metrics into CloudWatch: %s", exc)
        assert self._router is not None
        for line in other:
            self._router.target.write(line + "\n")

    def _summarise(self, function: LocalFunction, event: Mapping[str, Any], result: Any) -> None:
        if not isinstance(result, Mapping):
            return
        if function.spec.logical_id == "JobProcessorFunction" and result.get("processed"):
            why = {"escrow-jobs.kick": "kick", "escrow-jobs.fanout": "fan-out"}.get(
                str(event.get("source")), "schedule"
            )
            emf.say(
                f"processor ({why}): {result['processed']} job(s): "
                f"{result.get('succeeded', 0)} succeeded, {result.get('retried', 0)} to retry, "
                f"{result.get('deadLettered', 0)} dead-lettered"
            )
        elif function.spec.logical_id == "MonitorFunction" and "ready" in result:
            line = (
                f"monitor: {result['ready']} ready, {result.get('scheduled', 0)} scheduled, "
                f"{result.get('running', 0)} running, {result.get('deadLetter', 0)} dead-lettered"
            )
            if line != self._last_monitor:
                self._last_monitor = line
                emf.say(line)

    # -- the Lambda Invoke API (the processor kick and fan-out land here) ----------------

    def lambda_invoke(self, name: str, payload: bytes, kind: str) -> tuple[int, bytes]:
        short = name.split(":function:", 1)[-1].split(":", 1)[0]
        function = next(
            (f for f in self.functions.values() if short in (f.name, f.spec.logical_id)), None
        )
        if function is None:
            error = {"Type": "User", "Message": f"Function not found: {name}"}
            return 404, json.dumps(error).encode()
        try:
            event = json.loads(payload or b"{}")
        except ValueError:
            return 400, json.dumps({"Type": "User", "Message": "invalid JSON payload"}).encode()
        if kind == "DryRun":
            return 204, b""
        if kind == "Event":
            # A warm instance drains everything queued, so a kick or fan-out to a busy
            # processor is one more run at most: the scheduler coalesces them.
            if not self.scheduler.wake(function.spec.logical_id, event):
                threading.Thread(
                    target=self._invoke_captured, args=(function, event), daemon=True
                ).start()
            return 202, b""
        result = self._invoke_captured(function, event)
        return 200, json.dumps(result).encode()
