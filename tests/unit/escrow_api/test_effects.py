"""Which jobs each transition writes to the outbox, with valid payloads and stable dedupe keys."""

from __future__ import annotations

import pytest
from escrow.effects import side_effects
from escrow.models import Escrow, Party
from escrow.state import Action, EscrowState
from jobs_core import PAYLOAD_MODELS, JobType

S = EscrowState
NOW = 1_795_834_800_000


def escrow(state: EscrowState, *, webhook: bool = True) -> Escrow:
    return Escrow(
        escrow_id="esc_1",
        state=state,
        version=3,
        amount=10000,
        currency="JPY",
        buyer=Party("b", "buyer@example.com", "Bea"),
        seller=Party("s", "seller@example.com"),
        payment_intent_id="pi_1",
        created_by="b",
        created_ms=NOW,
        updated_ms=NOW,
        webhook_url="https://partner.example.com/h" if webhook else None,
        webhook_secret_ref="partner-secret" if webhook else None,
    )


J = JobType
CASES = [
    (Action.CREATE, None, S.PENDING, [J.AUDIT_LOG_CREATED]),
    (
        Action.FUND,
        S.PENDING,
        S.FUNDED,
        [J.SEND_PAYMENT_CONFIRMED_EMAIL, J.WEBHOOK_ESCROW_STATUS_CHANGED, J.AUDIT_LOG_CREATED],
    ),
    (Action.CANCEL, S.PENDING, S.CANCELLED, [J.WEBHOOK_ESCROW_STATUS_CHANGED, J.AUDIT_LOG_CREATED]),
    (
        Action.RELEASE,
        S.FUNDED,
        S.RELEASED,
        [J.SEND_RELEASE_EMAIL, J.WEBHOOK_ESCROW_STATUS_CHANGED, J.AUDIT_LOG_CREATED],
    ),
    (
        Action.REFUND,
        S.DISPUTED,
        S.REFUNDED,
        [J.SEND_REFUND_EMAIL, J.WEBHOOK_ESCROW_STATUS_CHANGED, J.AUDIT_LOG_CREATED],
    ),
    (
        Action.DISPUTE,
        S.FUNDED,
        S.DISPUTED,
        [J.SEND_DISPUTE_EMAIL, J.WEBHOOK_ESCROW_STATUS_CHANGED, J.AUDIT_LOG_CREATED],
    ),
    (
        Action.RESOLVE_RELEASE,
        S.DISPUTED,
        S.RELEASED,
        [J.NOTIFY_DISPUTE_RESOLVED, J.AUDIT_LOG_CREATED],
    ),
    (
        Action.RESOLVE_REFUND,
        S.DISPUTED,
        S.REFUNDED,
        [J.NOTIFY_DISPUTE_RESOLVED, J.AUDIT_LOG_CREATED],
    ),
]


@pytest.mark.parametrize(("action", "before", "after", "jobs"), CASES)
def test_jobs_per_action_validate_against_their_models(
    action: Action, before: EscrowState | None, after: EscrowState, jobs: list[JobType]
) -> None:
    entries = side_effects(
        action, before, escrow(after), actor="b", now_ms=NOW, request_id="req-1", reason="why"
    )
    assert [e.job_type for e in entries] == jobs
    for entry in entries:
        PAYLOAD_MODELS[entry.job_type].model_validate(dict(entry.payload))
        assert entry.escrow_id == "esc_1"
        assert entry.correlation_id == "req-1"
        assert entry.dedupe_key.startswith("escrow-esc_1-")
        assert entry.dedupe_key.endswith("-" + entry.job_type.value)
    assert len({e.dedupe_key for e in entries}) == len(entries)


def test_without_a_partner_webhook_no_webhook_job() -> None:
    entries = side_effects(
        Action.RELEASE, S.FUNDED, escrow(S.RELEASED, webhook=False),
        actor="b", now_ms=NOW, request_id=None,
    )  # fmt: skip
    assert [e.job_type for e in entries] == [J.SEND_RELEASE_EMAIL, J.AUDIT_LOG_CREATED]


def test_recipients_and_amounts() -> None:
    release = side_effects(
        Action.RELEASE, S.FUNDED, escrow(S.RELEASED), actor="b", now_ms=NOW, request_id=None
    )
    email = release[0].payload
    assert email["recipient_email"] == "seller@example.com"  # the seller is paid
    assert (email["amount"], email["currency"], email["transaction_id"]) == (10000, "JPY", "esc_1")
    refund = side_effects(
        Action.REFUND, S.FUNDED, escrow(S.REFUNDED), actor="s", now_ms=NOW, request_id=None
    )
    assert refund[0].payload["recipient_email"] == "buyer@example.com"
    dispute = side_effects(
        Action.DISPUTE, S.FUNDED, escrow(S.DISPUTED), actor="b", now_ms=NOW, request_id=None,
        reason="broken",
    )  # fmt: skip
    assert dispute[0].payload["buyer_email"] == "buyer@example.com"
    assert dispute[0].payload["seller_email"] == "seller@example.com"
    assert dispute[0].payload["reason"] == "broken"
    webhook = dispute[1].payload
    assert (webhook["status"], webhook["previous_status"]) == ("disputed", "funded")
    audit = dispute[2].payload
    assert (audit["state_before"], audit["state_after"], audit["actor"]) == (
        "funded",
        "disputed",
        "b",
    )


def test_dedupe_keys_are_stable_across_calls() -> None:
    def keys(now: int) -> list[str]:
        entries = side_effects(
            Action.RELEASE, S.FUNDED, escrow(S.RELEASED), actor="b", now_ms=now, request_id=None
        )
        return [e.dedupe_key for e in entries]

    assert keys(NOW) == keys(NOW + 60_000)
    assert keys(NOW) == [
        "escrow-esc_1-released-send_release_email",
        "escrow-esc_1-released-webhook_escrow_status_changed",
        "escrow-esc_1-released-audit_log_created",
    ]
