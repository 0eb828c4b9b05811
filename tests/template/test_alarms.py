"""The alarms and the dashboard watch metrics that really exist.

The monitor handler runs with the environment the template gives MonitorFunction
(parameters from samconfig.toml), its EMF output is read back, and every metric an
alarm or a dashboard widget names must be among the metrics printed: same namespace,
name, dimension names and values, and unit where the alarm states one. A typo in
either place would leave an alarm forever in INSUFFICIENT_DATA (or, with missing
data treated as breaching, forever paging).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from escrow.metrics import publish_outbox
from escrow.outbox import SweepReport
from escrow.reconcile import ReconcileReport
from escrow.reconcile import publish as publish_reconcile
from jobs_core.processor.metrics import publish_drain
from jobs_core.processor.report import DrainReport
from queue_monitor import metrics

from functions.monitor import app
from tests.template.cfn import Resolver, functions, resources_of_type, samconfig_parameters
from tests.unit.monitor.emf import EmfMetric, parse_emf
from tests.unit.monitor.lambda_support import CurrentStdout, FakeLambdaContext

MetricKey = tuple[str, str, tuple[tuple[str, str], ...]]  # namespace, name, sorted dims
ENVIRONMENTS = ["default", "prod"]  # the samconfig.toml environments


@pytest.fixture(params=ENVIRONMENTS)
def resolver(request: pytest.FixtureRequest, template: dict[str, Any]) -> Resolver:
    return Resolver(template, samconfig_parameters(request.param))


@pytest.fixture
def emitted(
    resolver: Resolver,
    template: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> dict[MetricKey, EmfMetric]:
    """Run the monitor (and publish one processor drain report) as deployed; return what
    was printed, by metric identity."""
    env = resolver.resolve(functions(template)["MonitorFunction"]["Environment"]["Variables"])
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("JOBS_BACKEND", "memory")  # the embedded Redis stands in for Upstash
    for name in ("UPSTASH_REDIS_REST_URL", "UPSTASH_TOKEN_PARAM", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.setattr(app.logger.registered_handler, "stream", CurrentStdout())
    factory = app.get_queue
    factory.cache_clear()
    try:
        app.lambda_handler({"source": "aws.events"}, FakeLambdaContext())
        publish_drain(DrainReport(), queue=env["JOBS_NAMESPACE"])
        # The escrow API's outbox metrics, as its sweep publishes them (same namespace).
        waiting = SweepReport(found=2, enqueued=0, invalid=0, backlog=2, oldest_waiting_ms=0)
        publish_outbox(waiting, queue=env["JOBS_NAMESPACE"], now_ms=400_000)
        publish_reconcile(ReconcileReport(), queue=env["JOBS_NAMESPACE"])
    finally:
        factory.cache_clear()
    metrics = parse_emf(capsys.readouterr().out)
    return {m.key: m for m in metrics}


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads: its own, or those of its metric-math queries."""
    props = alarm["Properties"]
    if "MetricName" in props:
        return [{k: props.get(k) for k in ("Namespace", "MetricName", "Dimensions", "Unit")}]
    out = []
    for query in props["Metrics"]:
        if "MetricStat" in query:
            stat = query["MetricStat"]
            out.append({**stat["Metric"], "Unit": stat.get("Unit")})
    return out


def key_of(metric: dict[str, Any], resolver: Resolver) -> MetricKey:
    dims = tuple(sorted((d["Name"], str(resolver.resolve(d["Value"])))
                        for d in metric.get("Dimensions", [])))  # fmt: skip
    return (metric["Namespace"], metric["MetricName"], dims)


def test_every_escrowjobs_alarm_watches_a_metric_the_code_emits(
    template: dict[str, Any], resolver: Resolver, emitted: dict[MetricKey, EmfMetric]
) -> None:
    checked = 0
    for name, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        for metric in alarm_metrics(alarm):
            if metric["Namespace"] != "EscrowJobs":
                continue
            key = key_of(metric, resolver)
            assert key in emitted, f"{name} watches {key}, which nothing emits"
            if metric.get("Unit"):
                assert metric["Unit"] == emitted[key].unit, f"{name}: unit differs"
            checked += 1
    assert checked >= 6


def test_lambda_alarms_watch_the_processor_and_the_escrow_api(template: dict[str, Any]) -> None:
    lambda_alarms = {
        (alarm["Properties"]["Dimensions"][0]["Value"]["Ref"], alarm["Properties"]["MetricName"])
        for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("Namespace") == "AWS/Lambda"
    }
    assert lambda_alarms == {
        (function, metric)
        for function in ("JobProcessorFunction", "EscrowApiFunction")
        for metric in ("Errors", "Throttles")
    }


def test_the_escrow_api_alarms(template: dict[str, Any]) -> None:
    """Errors, the 5xx share, p99 latency and throttles of the HTTP API, and the outbox."""
    on_api = [{"Name": "ApiId", "Value": {"Ref": "HttpApi"}}]
    latency = _alarm(template, "Latency", Namespace="AWS/ApiGateway")
    assert latency["ExtendedStatistic"] == "p99" and latency["Dimensions"] == on_api
    assert _default(template, latency["Threshold"]) == 3000

    rate = _alarm(template, "5xx")
    queries = {q["Id"]: q for q in rate["Metrics"]}
    assert {q["MetricStat"]["Metric"]["MetricName"] for q in queries.values()
            if "MetricStat" in q} == {"5xx", "Count"}  # fmt: skip
    for q in queries.values():
        if "MetricStat" in q:
            assert q["MetricStat"]["Metric"]["Dimensions"] == on_api
            assert q["MetricStat"]["Stat"] == "Sum"
    [expression] = [q for q in queries.values() if "Expression" in q]
    assert "100 * errors / requests" in expression["Expression"]
    assert _default(template, rate["Threshold"]) == 2

    throttled = _alarm(template, "ThrottledRequests")
    [metric_filter] = resources_of_type(template, "AWS::Logs::MetricFilter").values()
    props = metric_filter["Properties"]
    assert props["LogGroupName"] == {"Ref": "HttpApiAccessLogGroup"}
    assert '"429"' in props["FilterPattern"]
    [transformation] = props["MetricTransformations"]
    assert (transformation["MetricNamespace"], transformation["MetricName"]) == (
        throttled["Namespace"], throttled["MetricName"],
    )  # fmt: skip
    # The access log carries the status the filter reads.
    access = template["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"]["Format"]
    assert '"status":"$context.status"' in access

    outbox = _alarm(template, "OutboxOldestEntryAge")
    assert _default(template, outbox["Threshold"]) == 300
    assert outbox["Unit"] == "Seconds" and outbox["Statistic"] == "Maximum"


def _alarm(template: dict[str, Any], metric_name: str, **expected: Any) -> dict[str, Any]:
    """The one alarm on ``metric_name`` whose properties include ``expected``."""
    found = [
        a["Properties"]
        for a in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if any(m["MetricName"] == metric_name for m in alarm_metrics(a))
        and all(a["Properties"].get(k) == v for k, v in expected.items())
    ]
    assert len(found) == 1, f"expected one alarm on {metric_name} with {expected}: {found}"
    return found[0]


def _default(template: dict[str, Any], threshold: Any) -> float:
    return float(template["Parameters"][threshold["Ref"]]["Default"])


def test_the_alarms_the_issue_asks_for(template: dict[str, Any]) -> None:
    dlq = _alarm(template, "DeadLetterJobs", ComparisonOperator="GreaterThanThreshold",
                 Statistic="Maximum")  # fmt: skip
    assert _default(template, dlq["Threshold"]) == 10

    growing = _alarm(template, "DeadLetterJobs", Threshold=0)
    [expression] = [q for q in growing["Metrics"] if "Expression" in q]
    assert re.fullmatch(r"(DIFF|RATE)\(\w+\)", expression["Expression"])
    assert expression["ReturnData"] is True
    period = growing["Metrics"][0]["MetricStat"]["Period"]
    assert period * growing["EvaluationPeriods"] == 15 * 60

    depth = _alarm(template, "QueueDepth", ComparisonOperator="GreaterThanThreshold")
    assert _default(template, depth["Threshold"]) == 100
    assert {d["Name"] for d in depth["Dimensions"]} == {"service", "queue"}  # all types

    age = _alarm(template, "OldestReadyJobAge")
    assert _default(template, age["Threshold"]) == 300
    assert age["Unit"] == "Seconds"

    disabled = _alarm(template, "DisabledEndpoints", ComparisonOperator="GreaterThanThreshold")
    assert disabled["Threshold"] == 0  # one disabled partner endpoint pages

    missing = _alarm(template, "QueueDepth", TreatMissingData="breaching")
    assert missing["Statistic"] == "SampleCount"
    assert missing["ComparisonOperator"] == "LessThanThreshold"

    for metric in ("Errors", "Throttles"):
        for function in ("JobProcessorFunction", "EscrowApiFunction"):
            on = [{"Name": "FunctionName", "Value": {"Ref": function}}]
            _alarm(template, metric, Namespace="AWS/Lambda", Dimensions=on)


def test_every_alarm_pages_the_topic_and_says_when_it_recovers(template: dict[str, Any]) -> None:
    for name, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        assert props["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert props["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert props.get("AlarmDescription"), f"{name} tells the operator nothing"
        assert props.get("TreatMissingData") in {"breaching", "notBreaching"}, name


def test_the_dashboard_shows_metrics_that_exist(
    template: dict[str, Any], resolver: Resolver, emitted: dict[MetricKey, EmfMetric]
) -> None:
    [dashboard] = resources_of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = json.loads(resolver.resolve(dashboard["Properties"]["DashboardBody"]))
    titles = " ".join(w["properties"]["title"].lower() for w in body["widgets"])
    for topic in ("depth", "oldest", "dead-letter", "throughput"):
        assert topic in titles
    seen = 0
    for widget in body["widgets"]:
        for row in widget["properties"]["metrics"]:
            if isinstance(row[0], dict):  # an expression: SEARCH over per-type depth
                match = re.search(r"\{(\w+),([\w,]+)\} MetricName=\\?\"(\w+)\\?\"",
                                  row[0]["expression"])  # fmt: skip
                assert match, row[0]["expression"]
                namespace, dims, name = match.group(1), match.group(2).split(","), match.group(3)
                per_type = [k for k in emitted if k[:2] == (namespace, name)
                            and [d for d, _ in k[2]] == dims]  # fmt: skip
                assert per_type, f"no {name} with dimensions {dims} is emitted"
                continue
            namespace, name, *rest = [c for c in row if not isinstance(c, dict)]
            if namespace != "EscrowJobs":
                continue
            dims = tuple(sorted(zip(rest[::2], rest[1::2], strict=True)))
            assert (namespace, name, dims) in emitted, f"dashboard shows {name} {dims}: not emitted"
            seen += 1
    assert seen >= 8


def test_the_monitor_logs_under_the_service_name_its_metrics_carry(
    template: dict[str, Any],
) -> None:
    env = functions(template)["MonitorFunction"]["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == metrics.METRICS_SERVICE
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == metrics.METRICS_NAMESPACE
