"""Which jobs each transition causes, as outbox entries with their dedupe keys.

============  ========================================================================
action        jobs (``webhook`` only when the escrow has a partner webhook)
============  ========================================================================
create        audit_log_created
fund          send_payment_confirmed_email (buyer), webhook, audit_log_created
cancel        webhook, audit_log_created
release       send_release_email (seller), webhook, audit_log_created
refund        send_refund_email (buyer), webhook, audit_log_created
dispute       send_dispute_email (both parties), webhook, audit_log_created
resolve_*     notify_dispute_resolved (both parties + partner webhook), audit_log_created
============  ========================================================================

Every state is entered at most once per escrow (the machine has no cycles), so the
dedupe key ``escrow-<id>-<event>-<job type>`` names one effect of one escrow for good.
"""

from __future__ import annotations

from typing import Any

from jobs_core import JobType

from .models import Escrow, iso
from .outbox import OutboxEntry, make_entry
from .state import TRANSITIONS, Action, EscrowState


def side_effects(
    action: Action,
    before: EscrowState | None,
    after: Escrow,
    *,
    actor: str,
    now_ms: int,
    request_id: str | None,
    reason: str | None = None,
) -> list[OutboxEntry]:
    event = "created" if action is Action.CREATE else TRANSITIONS[action].event
    e = after
    money: dict[str, Any] = {
        "transaction_id": e.escrow_id,
        "amount": e.amount,
        "currency": e.currency,
    }
    jobs: list[tuple[JobType, dict[str, Any]]] = []

    if action is Action.FUND:
        jobs.append(
            (
                JobType.SEND_PAYMENT_CONFIRMED_EMAIL,
                {**money, "recipient_email": e.buyer.email, "recipient_name": e.buyer.name},
            )
        )
    elif action is Action.RELEASE:
        jobs.append(
            (
                JobType.SEND_RELEASE_EMAIL,
                {**money, "recipient_email": e.seller.email, "recipient_name": e.seller.name},
            )
        )
    elif action is Action.REFUND:
        jobs.append(
            (
                JobType.SEND_REFUND_EMAIL,
                {
                    **money,
                    "recipient_email": e.buyer.email,
                    "recipient_name": e.buyer.name,
                    "reason": reason,
                },
            )
        )
    elif action is Action.DISPUTE:
        jobs.append(
            (
                JobType.SEND_DISPUTE_EMAIL,
                {
                    **money,
                    "buyer_email": e.buyer.email,
                    "seller_email": e.seller.email,
                    "reason": reason,
                },
            )
        )
    elif action in (Action.RESOLVE_RELEASE, Action.RESOLVE_REFUND):
        jobs.append(
            (
                JobType.NOTIFY_DISPUTE_RESOLVED,
                {
                    **money,
                    "outcome": e.state.value,
                    "buyer_email": e.buyer.email,
                    "seller_email": e.seller.email,
                    "webhook_url": e.webhook_url,
                    "webhook_secret_ref": e.webhook_secret_ref,
                    "note": reason,
                },
            )
        )

    partner_webhook = action not in (
        Action.CREATE,
        Action.RESOLVE_RELEASE,  # notify_dispute_resolved sends the partner webhook itself
        Action.RESOLVE_REFUND,
    )
    if partner_webhook and e.webhook_url and e.webhook_secret_ref:
        jobs.append(
            (
                JobType.WEBHOOK_ESCROW_STATUS_CHANGED,
                {
                    **money,
                    "webhook_url": e.webhook_url,
                    "webhook_secret_ref": e.webhook_secret_ref,
                    "status": e.state.value,
                    "previous_status": before.value if before else None,
                    "occurred_at": iso(now_ms),
                },
            )
        )

    jobs.append(
        (
            JobType.AUDIT_LOG_CREATED,
            {
                **money,
                "action": action.value,
                "actor": actor,
                "state_before": before.value if before else None,
                "state_after": e.state.value,
                "occurred_at": iso(now_ms),
                "request_id": request_id,
            },
        )
    )
    return [
        make_entry(
            job_type,
            {k: v for k, v in payload.items() if v is not None},
            escrow_id=e.escrow_id,
            event=event,
            now_ms=now_ms,
            correlation_id=request_id,
        )
        for job_type, payload in jobs
    ]
