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
expire        send_payment_notice_email (both parties), webhook, audit_log_created
chargeback    send_payment_notice_email (admin), webhook, audit_log_created
facts         chargeback (on a captured escrow), chargeback_closed: a notice to the
              admin; stripe_refund, stripe_capture, authorization: audit_log_created
============  ========================================================================

``fund`` with a known capture deadline also writes a *delayed* notice to the buyer and
the admin, due ``warn_before_ms`` before the deadline (the worker skips it when the
payment was captured or cancelled meanwhile).

Every state is entered at most once per escrow (the machine has no cycles), so the
dedupe key ``escrow-<id>-<event>-<job type>`` names one effect of one escrow for good;
a fact can happen more than once (two dashboard refunds), so its event is named with
the escrow's version (``stripe_refund-v7``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobs_core import JobType

from .models import Escrow, iso
from .outbox import OutboxEntry, make_entry
from .state import FACTS, TRANSITIONS, Action, EscrowState


@dataclass(frozen=True, slots=True)
class Notices:
    """Who hears of Stripe's news, and when the capture-deadline reminder is due."""

    admin_email: str | None = None
    warn_before_ms: int = 48 * 3_600_000
    chargeback: bool = False  # a chargeback was opened by this change (a fact or a move)
    chargeback_outcome: str | None = None


def side_effects(
    action: Action,
    before: EscrowState | None,
    after: Escrow,
    *,
    actor: str,
    now_ms: int,
    request_id: str | None,
    reason: str | None = None,
    notices: Notices | None = None,
) -> list[OutboxEntry]:
    if action is Action.CREATE:
        event = "created"
    elif action in FACTS or (action is Action.CHARGEBACK and after.state == before):
        event = f"{action.value}-v{after.version}"
    else:
        event = TRANSITIONS[action].event
    e = after
    notes = notices or Notices()
    due_ms: dict[JobType, int] = {}
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
                    "escrow_version": e.version,
                },
            )
        )

    notice = _notice(action, e, notes)
    if notice is not None:
        jobs.append((JobType.SEND_PAYMENT_NOTICE_EMAIL, {**money, **notice}))
        if notice["notice"] == "authorization_expiring" and e.capture_before_ms:
            due_ms[JobType.SEND_PAYMENT_NOTICE_EMAIL] = e.capture_before_ms - notes.warn_before_ms

    partner_webhook = before != e.state and action not in (
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
                    "escrow_version": e.version,
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
            due_ms=due_ms.get(job_type),
        )
        for job_type, payload in jobs
    ]


def _notice(action: Action, e: Escrow, notes: Notices) -> dict[str, Any] | None:
    """The payment notice this change sends, as a payload fragment, or None."""
    buyer = {"role": "buyer", "email": e.buyer.email}
    seller = {"role": "seller", "email": e.seller.email}
    admin = [{"role": "admin", "email": notes.admin_email}] if notes.admin_email else []
    if action is Action.FUND and e.capture_before_ms:
        return {
            "notice": "authorization_expiring",
            "recipients": [buyer, *admin],
            "payment_intent_id": e.payment_intent_id,
            "deadline": iso(e.capture_before_ms),
        }
    if action is Action.EXPIRE:
        return {"notice": "authorization_expired", "recipients": [buyer, seller]}
    if notes.chargeback and admin:
        return {"notice": "chargeback_opened", "recipients": admin}
    if action is Action.CHARGEBACK_CLOSED and admin:
        return {
            "notice": "chargeback_closed",
            "recipients": admin,
            "outcome": notes.chargeback_outcome,
        }
    return None
