"""The local Lambda runtime pieces: context budget, handler loading, schedules, EMF, Stripe
signatures."""

from __future__ import annotations

import io
import json
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import stripe
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from local_stack import emf
from local_stack.lambda_runtime import FakeLambdaContext, LocalFunction
from local_stack.scheduler import Scheduler, scheduled_event
from local_stack.stripe_server import signed_event, stripe_event, stripe_signature
from local_stack.template import FunctionSpec

WAIT_S = 10.0  # a liveness bound for thread hand-offs, not a timing assertion


def test_context_counts_down_from_the_timeout() -> None:
    now = [100.0]
    ctx = FakeLambdaContext("fn", timeout_s=60, memory_mb=512, clock=lambda: now[0])
    assert ctx.get_remaining_time_in_millis() == 60_000
    now[0] += 59.5
    assert ctx.get_remaining_time_in_millis() == 500
    now[0] += 10
    assert ctx.get_remaining_time_in_millis() == 0
    assert ctx.invoked_function_arn == "arn:aws:lambda:us-east-1:123456789012:function:fn"
    assert ctx.memory_limit_in_mb == 512
    assert ctx.log_group_name == "/aws/lambda/fn"
    assert ctx.aws_request_id


def _echo(event: Any, context: Any) -> dict[str, Any]:
    return {"event": event, "remaining": context.get_remaining_time_in_millis()}


def test_local_function_imports_and_invokes() -> None:
    spec = FunctionSpec(
        "Fn", "fn", __name__, "_echo", timeout_s=3, memory_mb=128, reserved_concurrency=None
    )
    function = LocalFunction(spec)
    result = function.invoke({"a": 1}, serial=True)
    assert result["event"] == {"a": 1}
    assert 0 < result["remaining"] <= 3000


def test_scheduler_runs_at_start_on_wake_with_the_event_and_stops() -> None:
    events: list[Mapping[str, Any]] = []
    ran = threading.Semaphore(0)

    def run(event: Mapping[str, Any]) -> None:
        events.append(event)
        ran.release()
        if len(events) == 2:
            raise RuntimeError("a failing run does not stop the schedule")

    scheduler = Scheduler()
    scheduler.add("proc", 3600, run, rule="r1")
    scheduler.start()
    try:
        assert ran.acquire(timeout=WAIT_S)
        assert events[0]["source"] == "aws.events"
        assert events[0]["resources"][0].endswith(":rule/r1")
        assert scheduler.wake("proc", {"source": "escrow-jobs.kick"})
        assert ran.acquire(timeout=WAIT_S)
        assert events[1] == {"source": "escrow-jobs.kick"}
        assert scheduler.wake("proc")
        assert ran.acquire(timeout=WAIT_S)
        assert events[2]["detail-type"] == "Scheduled Event"
        assert not scheduler.wake("unknown")
    finally:
        scheduler.stop()
    assert scheduler.stopping
    assert not scheduler.wake("proc")
    assert not any(t.name == "schedule-proc" for t in threading.enumerate())


def test_scheduled_event_shape() -> None:
    event = scheduled_event("rule-x", now=0)
    assert event["time"] == "1970-01-01T00:00:00Z"
    assert event["detail"] == {}
    assert event["account"] == "123456789012"


def _emf_lines() -> str:
    sink = EphemeralMetrics(namespace="EscrowJobs", service="queue-monitor")
    buffer = io.StringIO()
    original, sys.stdout = sys.stdout, buffer
    try:
        sink.add_dimension("queue", "q1")
        sink.add_metric("QueueDepth", MetricUnit.Count, 3)
        sink.add_metric("OldestReadyJobAge", MetricUnit.Seconds, 1.5)
        sink.flush_metrics(raise_on_empty_metrics=True)
    finally:
        sys.stdout = original
    return buffer.getvalue()


def test_parse_emf_reads_what_powertools_prints() -> None:
    text = _emf_lines() + "a plain log line\n"
    metrics, other = emf.split_output(text)
    assert other == ["a plain log line"]
    by_name = {m.name: m for m in metrics}
    depth = by_name["QueueDepth"]
    assert depth.namespace == "EscrowJobs"
    assert dict(depth.dimensions) == {"service": "queue-monitor", "queue": "q1"}
    assert (depth.unit, depth.values) == ("Count", (3.0,))
    assert by_name["OldestReadyJobAge"].unit == "Seconds"
    assert emf.parse_emf('{"not": "emf"}') == []
    assert emf.parse_emf('{"_aws": "broken"}') == []


def test_forwarder_groups_by_namespace() -> None:
    calls: list[dict[str, Any]] = []

    class Client:
        def put_metric_data(self, **kwargs: Any) -> None:
            calls.append(kwargs)

    metrics, _ = emf.split_output(_emf_lines())
    assert emf.CloudWatchForwarder(Client()).put(metrics) == 2
    [call] = calls
    assert call["Namespace"] == "EscrowJobs"
    assert {d["MetricName"] for d in call["MetricData"]} == {"QueueDepth", "OldestReadyJobAge"}


def test_stdout_router_captures_per_thread() -> None:
    target = io.StringIO()
    router = emf.StdoutRouter(target)
    other_thread_done = threading.Event()

    def elsewhere() -> None:
        router.write("from another thread\n")
        other_thread_done.set()

    with router.capture() as captured:
        router.write("captured line\n")
        threading.Thread(target=elsewhere).start()
        assert other_thread_done.wait(WAIT_S)
    router.write("after\n")
    assert captured.getvalue() == "captured line\n"
    assert target.getvalue() == "from another thread\nafter\n"


def test_stripe_signature_is_what_the_sdk_verifies() -> None:
    secret = "whsec_test_secret"
    event = stripe_event(
        "payment_intent.amount_capturable_updated",
        {"id": "pi_1", "object": "payment_intent", "metadata": {"escrow_id": "esc_1"}},
    )
    body, headers = signed_event(event, secret)
    verified = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], secret)
    assert verified["type"] == "payment_intent.amount_capturable_updated"
    assert verified["data"]["object"]["metadata"]["escrow_id"] == "esc_1"
    assert json.loads(body)["id"].startswith("evt_")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_other")
    assert stripe_signature(b"x", secret, timestamp=5).startswith("t=5,v1=")


def test_a_handler_with_top_level_imports_loads_as_lambda_loads_it(tmp_path: Path) -> None:
    """Lambda imports ``app`` from the CodeUri folder; siblings are top-level modules."""
    for name, answer in (("one", 1), ("two", 2)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"helper_{name}.py").write_text(f"ANSWER = {answer}\n")
        (folder / "app.py").write_text(
            f"from helper_{name} import ANSWER\n\ndef handler(event, context):\n    return ANSWER\n"
        )
    loaded = [
        LocalFunction(
            FunctionSpec(name, name, f"not_a_package.{name}.app", "handler", timeout_s=3,
                         memory_mb=128, reserved_concurrency=None, code_dir=tmp_path / name,
                         handler_file="app")
        )
        for name in ("one", "two")
    ]  # fmt: skip
    assert [f.invoke({}) for f in loaded] == [1, 2]  # two app.py files, two modules
