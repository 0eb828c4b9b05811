"""The kick and the fan-out: one async invoke each, and never a failure for the caller."""

from __future__ import annotations

import json

import pytest
from jobs_core import EnqueueResult, JobType, Settings
from jobs_core.processor.kick import FANOUT_SOURCE, KICK_SOURCE, Kicker, kick_processor
from jobs_core.queue.hints import MAX_HINT_BYTES, hints_for
from jobs_core.queue.specs import build_job

from .support import RecordingLambda

IDLE = EnqueueResult(ids=["01J"], processor_active=False)
BUSY = EnqueueResult(ids=["01J"], processor_active=True)


def test_kick_invokes_asynchronously_when_no_processor_is_active() -> None:
    client = RecordingLambda()
    kicker = Kicker("escrow-jobs-processor", client=client)

    assert kicker.kick(IDLE) is True

    [call] = client.calls
    assert call["FunctionName"] == "escrow-jobs-processor"
    assert call["InvocationType"] == "Event"
    assert json.loads(call["Payload"]) == {"source": KICK_SOURCE, "reason": "enqueue"}


def test_a_kick_carries_the_records_of_the_jobs_without_personal_data() -> None:
    settings = Settings(namespace="kick")
    audit = {"transactionId": "esc-1", "action": "released", "actor": "buyer-1"}
    email = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 100}
    jobs = (
        build_job((JobType.AUDIT_LOG_CREATED, audit), 1_764_000_000_000, settings),
        build_job((JobType.SEND_RELEASE_EMAIL, email), 1_764_000_000_000, settings),
    )
    client = RecordingLambda()
    result = EnqueueResult([j.id for j in jobs], False, [False, False], jobs)
    assert Kicker("fn", client=client).kick(result)
    event = json.loads(client.calls[0]["Payload"])
    assert event["hints"] == [
        {
            "member": f"audit_log_created|{jobs[0].id}",
            "score": "1763999999999.75",
            "record": jobs[0].record,
        }
    ]
    assert "user@example.com" not in client.calls[0]["Payload"].decode()


def test_a_kick_carries_records_up_to_its_size_cap() -> None:
    settings = Settings(namespace="kick")
    audit = {"transactionId": "esc-1", "action": "released", "actor": "a" * 250}
    jobs = tuple(
        build_job((JobType.AUDIT_LOG_CREATED, audit), 1_764_000_000_000 + i, settings)
        for i in range(400)
    )
    hints = hints_for(jobs)
    assert 0 < len(hints) < len(jobs)
    assert sum(len(h.record) for h in hints) <= MAX_HINT_BYTES


def test_no_kick_while_a_processor_holds_the_marker() -> None:
    client = RecordingLambda()
    assert Kicker("fn", client=client).kick(BUSY) is False
    assert client.calls == []


@pytest.mark.parametrize(
    "kicker",
    [Kicker("fn", enabled=False), Kicker(None), Kicker("")],
    ids=["disabled", "no-function", "empty-name"],
)
def test_no_kick_when_off_or_unconfigured(kicker: Kicker) -> None:
    client = RecordingLambda()
    kicker.client = client
    assert kicker.kick(IDLE) is False and kicker.fan_out(3) == 0
    assert client.calls == []


@pytest.mark.parametrize(
    "client",
    [RecordingLambda(fail=TimeoutError("read timeout")), RecordingLambda(status=500)],
    ids=["raises", "not-202"],
)
def test_a_failed_kick_is_swallowed(client: RecordingLambda) -> None:
    assert Kicker("fn", client=client).kick(IDLE) is False
    assert len(client.calls) == 1


def test_even_a_broken_client_factory_does_not_fail_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(timeout_s: float) -> None:
        raise RuntimeError("no credentials")

    monkeypatch.setattr("jobs_core.processor.kick._boto3_lambda_client", broken)
    assert Kicker("fn").kick(IDLE) is False


def test_fan_out_sends_generation_one_events() -> None:
    client = RecordingLambda()
    assert Kicker("fn", client=client).fan_out(3) == 3
    assert client.events() == [{"source": FANOUT_SOURCE, "generation": 1}] * 3


def test_from_environ_defaults_on_in_lambda_only() -> None:
    in_lambda = Kicker.from_environ(
        {"AWS_LAMBDA_FUNCTION_NAME": "api", "JOB_PROCESSOR_FUNCTION_NAME": "processor"}
    )
    assert in_lambda.active and in_lambda.function_name == "processor"
    assert in_lambda.timeout_s == 1.0
    local = Kicker.from_environ({"JOB_PROCESSOR_FUNCTION_NAME": "processor"})
    assert not local.active


@pytest.mark.parametrize(("raw", "enabled"), [("true", True), ("1", True), ("off", False)])
def test_from_environ_flag_wins(raw: str, enabled: bool) -> None:
    kicker = Kicker.from_environ(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "api",
            "JOB_PROCESSOR_FUNCTION_NAME": "processor",
            "JOBS_KICK_ENABLED": raw,
            "JOBS_KICK_TIMEOUT_S": "0.5",
        }
    )
    assert kicker.enabled is enabled and kicker.timeout_s == 0.5


def test_function_form() -> None:
    client = RecordingLambda()
    assert kick_processor(IDLE, enabled=True, function_name="fn", client=client) is True
    assert kick_processor(BUSY, enabled=True, function_name="fn", client=client) is False
    assert len(client.calls) == 1
