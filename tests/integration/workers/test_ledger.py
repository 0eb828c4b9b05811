"""The effect ledger's decisions, the same in DynamoDB (moto) and in a local directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from jobs_core import ManualClock, RetryableJobError
from jobs_core.workers.effects import (
    ClaimOutcome,
    DynamoEffectLedger,
    EffectLedger,
    FileEffectLedger,
    MemoryEffectLedger,
    run_once,
)

from tests.integration.workers.conftest import Aws
from tests.integration.workers.helpers import EFFECTS_TABLE

NOW = 1_767_225_600_000
HOLD = 120_000


@pytest.fixture(params=["dynamodb", "file", "memory"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EffectLedger]:
    if request.param == "dynamodb":
        aws: Aws = request.getfixturevalue("aws")
        yield DynamoEffectLedger(aws.dynamodb, EFFECTS_TABLE)
    elif request.param == "file":
        yield FileEffectLedger(tmp_path / "effects")
    else:
        yield MemoryEffectLedger()


def test_claim_busy_done(ledger: EffectLedger) -> None:
    assert ledger.claim("j1/email/buyer", token="a", now_ms=NOW, hold_ms=HOLD).outcome is (
        ClaimOutcome.CLAIMED
    )
    busy = ledger.claim("j1/email/buyer", token="b", now_ms=NOW + 20_000, hold_ms=HOLD)
    assert busy.outcome is ClaimOutcome.BUSY
    assert busy.retry_after_s == pytest.approx(100.0)
    assert ledger.mark_done("j1/email/buyer", token="a", now_ms=NOW + 1_000)
    for later in (NOW + 2_000, NOW + 10 * HOLD):
        assert ledger.claim("j1/email/buyer", token="c", now_ms=later, hold_ms=HOLD).outcome is (
            ClaimOutcome.DONE
        )
    # another effect of the same job is independent
    assert ledger.claim("j1/email/seller", token="d", now_ms=NOW, hold_ms=HOLD).outcome is (
        ClaimOutcome.CLAIMED
    )


def test_released_claim_can_be_taken_at_once(ledger: EffectLedger) -> None:
    ledger.claim("j2/webhook", token="a", now_ms=NOW, hold_ms=HOLD)
    ledger.release("j2/webhook", token="b")  # not ours: ignored
    assert ledger.claim("j2/webhook", token="c", now_ms=NOW, hold_ms=HOLD).outcome is (
        ClaimOutcome.BUSY
    )
    ledger.release("j2/webhook", token="a")
    assert ledger.claim("j2/webhook", token="c", now_ms=NOW, hold_ms=HOLD).outcome is (
        ClaimOutcome.CLAIMED
    )


def test_an_expired_claim_is_taken_over_and_the_old_holder_cannot_finish(
    ledger: EffectLedger,
) -> None:
    """The holder died after claiming (maybe after sending): the redelivery performs the effect."""
    ledger.claim("j3/email/recipient", token="dead", now_ms=NOW, hold_ms=HOLD)
    takeover = ledger.claim("j3/email/recipient", token="new", now_ms=NOW + HOLD + 1, hold_ms=HOLD)
    assert takeover.outcome is ClaimOutcome.CLAIMED
    assert not ledger.mark_done("j3/email/recipient", token="dead", now_ms=NOW + HOLD + 2)
    assert ledger.mark_done("j3/email/recipient", token="new", now_ms=NOW + HOLD + 3)


def test_run_once_performs_once_and_releases_on_failure(ledger: EffectLedger) -> None:
    clock = ManualClock(NOW)
    calls: list[str] = []

    def failing() -> None:
        calls.append("fail")
        raise RetryableJobError("provider down")

    with pytest.raises(RetryableJobError):
        run_once(ledger, "j4/email/recipient", failing, clock=clock)
    assert run_once(ledger, "j4/email/recipient", lambda: calls.append("ok"), clock=clock)
    assert not run_once(ledger, "j4/email/recipient", lambda: calls.append("again"), clock=clock)
    assert calls == ["fail", "ok"]


def test_run_once_asks_to_retry_while_another_delivery_holds_it(ledger: EffectLedger) -> None:
    clock = ManualClock(NOW)
    ledger.claim("j5/webhook", token="other", now_ms=NOW, hold_ms=HOLD)
    with pytest.raises(RetryableJobError, match="another delivery") as caught:
        run_once(ledger, "j5/webhook", lambda: None, clock=clock)
    assert caught.value.delay_s == pytest.approx(120.0)


def test_dynamodb_entries_carry_the_ttl(aws: Aws) -> None:
    ledger = DynamoEffectLedger(aws.dynamodb, EFFECTS_TABLE, retention_s=86_400)
    ledger.claim("j6/webhook", token="a", now_ms=NOW, hold_ms=HOLD)
    ledger.mark_done("j6/webhook", token="a", now_ms=NOW + 5_000)
    entry = aws.ledger_entry("j6/webhook")
    assert entry is not None
    assert entry["status"] == {"S": "done"}
    assert int(entry["expires_at"]["N"]) == (NOW + 5_000) // 1000 + 86_400
    assert "lease_until" not in entry
