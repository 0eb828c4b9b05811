"""The reconciler, run as the schedule runs it: ``lambda_handler({"task": "reconcile"})``.

It reports nothing when the table and the local Stripe agree, finds the drifts injected
at Stripe (an authorisation cancelled there, a dashboard refund, whose events never
arrived), moves no money, and publishes ``EscrowDrift`` as the template's alarm reads it.
"""

from __future__ import annotations

from typing import Any

import pytest
from escrow.service import EscrowService
from jobs_core import JobQueue
from local_stack.stripe_server import StripeServer

from functions.escrow_api import app
from tests.integration.escrow_api.harness import (
    FakeLambdaContext,
    call,
    create_escrow,
    deliver_events,
    escrow_and_history,
    paid_escrow,
    released_escrow,
)
from tests.integration.escrow_api.test_routes import table_items
from tests.template.cfn import load_template, resources_of_type
from tests.unit.monitor.emf import EmfMetric, parse_emf


class Context(FakeLambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 15_000


def run_reconciler(capsys: pytest.CaptureFixture[str]) -> tuple[dict[str, Any], EmfMetric]:
    capsys.readouterr()
    report = app.lambda_handler({"task": "reconcile"}, Context())
    [drift] = [m for m in parse_emf(capsys.readouterr().out) if m.name == "EscrowDrift"]
    return report, drift


def every_kind_of_escrow(stripe_api: StripeServer, queue: JobQueue) -> list[str]:
    """Escrows in each state, each reached the way it is in real life, events delivered."""
    pending, _ = create_escrow(stripe_api)
    funded, _ = paid_escrow(stripe_api)
    released, released_intent = released_escrow(stripe_api, queue)
    refunded, _ = paid_escrow(stripe_api)
    assert call("refund", escrow_id=refunded).status == 200
    expired, expired_intent = paid_escrow(stripe_api)
    stripe_api.expire_authorization(expired_intent)
    stripe_api.dashboard_refund(released_intent, 2500)
    deliver_events(stripe_api)
    return [pending, funded, released, refunded, expired]


def test_nothing_to_report_when_all_agree(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    capsys: pytest.CaptureFixture[str],
) -> None:
    escrows = every_kind_of_escrow(stripe_api, queue)
    report, metric = run_reconciler(capsys)
    assert report["drifts"] == []
    assert (report["checked"], report["driftedEscrows"]) == (len(escrows), 0)
    assert metric.values == (0.0,)


def test_drift_injected_at_stripe_is_reported_and_nothing_is_moved(
    service: EscrowService,
    stripe_api: StripeServer,
    queue: JobQueue,
    capsys: pytest.CaptureFixture[str],
) -> None:
    every_kind_of_escrow(stripe_api, queue)
    cancelled, cancelled_intent = paid_escrow(stripe_api)
    refunded, refunded_intent = released_escrow(stripe_api, queue)
    stripe_api.cancel_authorization(cancelled_intent)  # in the dashboard; event lost
    stripe_api.dashboard_refund(refunded_intent, 3000)
    stripe_api.take_events()  # neither event ever arrives
    before, stripe_posts = table_items(), len(stripe_api.requests_to(""))

    report, metric = run_reconciler(capsys)

    drifts = {(d["escrow_id"], d["kind"], d["ours"], d["stripe"]) for d in report["drifts"]}
    assert drifts == {
        (cancelled, "state", "funded", "canceled"),
        (refunded, "refunded", "0", "3000"),
    }
    assert report["driftedEscrows"] == 2
    assert metric.values == (2.0,)
    assert table_items() == before  # it reports; it never writes
    assert len(stripe_api.requests_to("")) == stripe_posts  # and never moves money
    assert escrow_and_history(cancelled)[0]["state"] == "funded"


def test_the_drift_alarm_reads_the_metric_the_reconciler_emits(
    service: EscrowService,
    stripe_api: StripeServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, metric = run_reconciler(capsys)
    template = load_template()
    [alarm] = [
        a["Properties"]
        for a in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric.name
        and a["Properties"].get("TreatMissingData") == "notBreaching"
    ]
    namespace = service.queue.settings.namespace
    dims = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert alarm["Namespace"] == metric.namespace
    assert (alarm["Unit"], metric.unit) == ("Count", "Count")
    assert set(dims) == set(metric.dims)
    assert dims["service"] == metric.dims["service"]
    assert metric.dims["queue"] == namespace  # the alarm's queue is !Ref JobsNamespace
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_a_reconciler_that_stops_running_pages(
    service: EscrowService,
    stripe_api: StripeServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Every run publishes EscrowDrift, 0 included, so "no sample for two hours" means the
    # reconciler itself is down; missing data is breaching for that alarm alone.
    _, metric = run_reconciler(capsys)
    assert metric.values == (0.0,)
    template = load_template()
    [silent] = [
        a["Properties"]
        for a in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == metric.name
        and a["Properties"].get("TreatMissingData") == "breaching"
    ]
    dims = {d["Name"]: d["Value"] for d in silent["Dimensions"]}
    assert dims["service"] == metric.dims["service"]
    assert (silent["Namespace"], silent["Statistic"]) == (metric.namespace, "SampleCount")
    assert (silent["Threshold"], silent["ComparisonOperator"]) == (1, "LessThanThreshold")
    assert silent["Period"] * silent["EvaluationPeriods"] == 2 * 3600


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "table"])
def test_escrow_jobs_reconcile_invokes_the_function_and_shows_the_drift(
    service: EscrowService, stripe_api: StripeServer, env: dict[str, str], as_json: bool
) -> None:
    import io
    import json

    from escrow_jobs_cli.main import main
    from local_stack.http_gateway import HttpGateway

    escrow_id, intent_id = paid_escrow(stripe_api)
    stripe_api.expire_authorization(intent_id)
    stripe_api.take_events()  # the event is lost
    invoked: list[str] = []

    def lambda_invoke(name: str, payload: bytes, kind: str) -> tuple[int, bytes]:
        invoked.append(name)
        return 200, json.dumps(app.lambda_handler(json.loads(payload), Context())).encode()

    gateway = HttpGateway([], port=0, lambda_invoke=lambda_invoke).start()
    try:
        out = io.StringIO()
        argv = ["reconcile", "--function", "escrow-jobs-escrow-api", "--days", "3"]
        code = main(
            argv + (["--json"] if as_json else []),
            environ={**env, "AWS_ENDPOINT_URL_LAMBDA": gateway.url, "AWS_REGION": "us-east-1"},
            stdout=out,
            stderr=io.StringIO(),
        )
    finally:
        gateway.stop()
    assert code == 5  # some escrow disagrees with Stripe
    assert invoked == ["escrow-jobs-escrow-api"]
    if as_json:
        report = json.loads(out.getvalue())
        assert [(d["escrow_id"], d["kind"], d["stripe"]) for d in report["drifts"]] == [
            (escrow_id, "state", "canceled")
        ]
    else:
        text = out.getvalue()
        assert escrow_id in text and "canceled" in text
        assert "checked 1 escrow(s): 1 disagree with Stripe" in text


def test_escrow_jobs_reconcile_without_a_function_name_is_a_usage_error() -> None:
    import io

    from escrow_jobs_cli.main import main

    err = io.StringIO()
    assert main(["reconcile"], environ={}, stdout=io.StringIO(), stderr=err) == 2
    assert "ESCROW_API_FUNCTION_NAME" in err.getvalue()
