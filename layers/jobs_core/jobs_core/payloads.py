"""Payload models, one per job type.

Field names are snake_case; the original system's camelCase names are accepted
as aliases, so ``{"transactionId": "esc-123", "recipientEmail": ...}`` validates
unchanged. Unknown fields are refused: a typo must not pass silently.
Amounts are integers in minor units (10000 USD = $100.00).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, EmailStr, Field, StringConstraints
from pydantic.alias_generators import to_camel

EscrowId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True)]
MinorUnits = Annotated[int, Field(gt=0, lt=10**12)]
Reason = Annotated[str, StringConstraints(max_length=1000)]


class EscrowStatus(StrEnum):
    """States of an escrow, as carried by webhooks and audit rows."""

    PENDING = "pending"
    FUNDED = "funded"
    RELEASED = "released"
    REFUNDED = "refunded"
    DISPUTED = "disputed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class DisputeOutcome(StrEnum):
    RELEASED = "released"
    REFUNDED = "refunded"


class Payload(BaseModel):
    """Base of every payload: camelCase aliases, unknown fields refused, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    transaction_id: EscrowId


class AmountPayload(Payload):
    amount: MinorUnits
    currency: Currency = "USD"


class ReleaseEmailPayload(AmountPayload):
    """``send_release_email``: tells the seller the funds were released."""

    recipient_email: EmailStr
    recipient_name: str | None = None


class RefundEmailPayload(AmountPayload):
    """``send_refund_email``: tells the buyer the funds were refunded."""

    recipient_email: EmailStr
    recipient_name: str | None = None
    reason: Reason | None = None


class PaymentConfirmedEmailPayload(AmountPayload):
    """``send_payment_confirmed_email``: tells the buyer the payment is held in escrow."""

    recipient_email: EmailStr
    recipient_name: str | None = None


class DisputeEmailPayload(AmountPayload):
    """``send_dispute_email``: tells both parties a dispute was opened."""

    buyer_email: EmailStr
    seller_email: EmailStr
    reason: Reason | None = None


class StripeCapturePayload(AmountPayload):
    """``stripe_capture_payment``: capture an authorised PaymentIntent."""

    payment_intent_id: Annotated[str, StringConstraints(pattern=r"^pi_[A-Za-z0-9_]+$")]


OperationId = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/-]+$")
]


class StripeRefundPayload(Payload):
    """``stripe_refund_payment``: refund (all, or ``amount``) of a captured PaymentIntent.

    ``operation_id`` names this refund for good (default: the job id, which a retry and a
    DLQ replay keep); it goes into the refund's metadata, so a delivery after Stripe forgot
    the idempotency key finds the refund already made.
    """

    payment_intent_id: Annotated[str, StringConstraints(pattern=r"^pi_[A-Za-z0-9_]+$")]
    amount: MinorUnits | None = None
    currency: Currency = "USD"
    reason: Reason | None = None
    operation_id: OperationId | None = None


class NoticeKind(StrEnum):
    AUTHORIZATION_EXPIRING = "authorization_expiring"  # the capture deadline is near
    AUTHORIZATION_EXPIRED = "authorization_expired"  # Stripe cancelled the authorisation
    CHARGEBACK_OPENED = "chargeback_opened"
    CHARGEBACK_CLOSED = "chargeback_closed"


class NoticeRecipient(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["buyer", "seller", "admin"]
    email: EmailStr


class PaymentNoticePayload(AmountPayload):
    """``send_payment_notice_email``: what Stripe did to an escrow's payment, to each recipient.

    An ``authorization_expiring`` notice is delayed until shortly before ``deadline``;
    the worker reads ``payment_intent_id`` at Stripe first and sends nothing when the
    payment is no longer waiting for capture (released or refunded meanwhile).
    """

    notice: NoticeKind
    recipients: Annotated[list[NoticeRecipient], Field(min_length=1, max_length=3)]
    payment_intent_id: Annotated[str, StringConstraints(pattern=r"^pi_[A-Za-z0-9_]+$")] | None = (
        None
    )
    deadline: datetime | None = None
    outcome: Annotated[str, StringConstraints(max_length=64)] | None = None


class WebhookTarget(Payload):
    """Where a partner wants its events, and the name of the secret that signs them.

    The secret itself never enters the queue: ``webhook_secret_ref`` names it
    (a Secrets Manager / SSM name in AWS, an environment variable locally).
    """

    webhook_url: AnyHttpUrl
    webhook_secret_ref: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class EscrowStatusChangedPayload(WebhookTarget):
    """``webhook_escrow_status_changed``: POST a signed event to the partner."""

    status: EscrowStatus
    previous_status: EscrowStatus | None = None
    amount: MinorUnits | None = None
    currency: Currency = "USD"
    occurred_at: datetime | None = None
    # The escrow's version after the change: a partner discards an older status by it, and
    # the queue delivers an escrow's statuses in its order.
    escrow_version: Annotated[int, Field(ge=1)] | None = None


class DisputeResolvedPayload(AmountPayload):
    """``notify_dispute_resolved``: email both parties, and the partner webhook if any."""

    outcome: DisputeOutcome
    buyer_email: EmailStr
    seller_email: EmailStr
    webhook_url: AnyHttpUrl | None = None
    webhook_secret_ref: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = (
        None
    )
    note: Reason | None = None
    escrow_version: Annotated[int, Field(ge=1)] | None = None


class AuditLogPayload(Payload):
    """``audit_log_created``: one row in the audit table per intent."""

    action: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    actor: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    state_before: EscrowStatus | None = None
    state_after: EscrowStatus | None = None
    amount: MinorUnits | None = None
    currency: Currency = "USD"
    occurred_at: datetime | None = None
    request_id: str | None = None
