"""Jobs and payloads for the workers' integration tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobs_core import Job, JobType
from ulid import ULID

AUDIT_TABLE = "escrow-audit"
EFFECTS_TABLE = "escrow-effects"
SENDER = "Escrow <no-reply@escrow.example>"
PARTNER_SECRET_REF = "partner-acme"  # looked up as env var PARTNER_ACME (EnvSecretResolver)


def make_job(job_type: JobType, payload: dict[str, Any], **fields: Any) -> Job:
    """A job as the processor hands it over (payload as stored: plain JSON data)."""
    now = datetime.now(UTC)
    return Job(
        id=fields.pop("id", str(ULID())),
        type=job_type,
        payload=payload,
        created_at=fields.pop("created_at", now),
        next_run_at=now,
        **fields,
    )


def payloads(receiver_url: str, intent_id: str) -> dict[JobType, dict[str, Any]]:
    """One valid payload per job type (camelCase, as the original system sends them)."""
    webhook = {"webhookUrl": receiver_url, "webhookSecretRef": PARTNER_SECRET_REF}
    return {
        JobType.SEND_RELEASE_EMAIL: {
            "transactionId": "esc-1",
            "amount": 10000,
            "currency": "USD",
            "recipientEmail": "seller@example.com",
            "recipientName": "Sam <Seller>",
        },
        JobType.SEND_REFUND_EMAIL: {
            "transactionId": "esc-1",
            "amount": 10000,
            "currency": "USD",
            "recipientEmail": "buyer@example.com",
            "reason": "item <not> received",
        },
        JobType.SEND_DISPUTE_EMAIL: {
            "transactionId": "esc-1",
            "amount": 500,
            "currency": "JPY",
            "buyerEmail": "buyer@example.com",
            "sellerEmail": "seller@example.com",
            "reason": "damaged",
        },
        JobType.SEND_PAYMENT_CONFIRMED_EMAIL: {
            "transactionId": "esc-1",
            "amount": 10000,
            "currency": "USD",
            "recipientEmail": "buyer@example.com",
        },
        JobType.STRIPE_CAPTURE_PAYMENT: {
            "transactionId": "esc-1",
            "amount": 10000,
            "currency": "USD",
            "paymentIntentId": intent_id,
        },
        JobType.STRIPE_REFUND_PAYMENT: {"transactionId": "esc-1", "paymentIntentId": intent_id},
        JobType.WEBHOOK_ESCROW_STATUS_CHANGED: {
            "transactionId": "esc-1",
            "status": "released",
            "previousStatus": "funded",
            "amount": 10000,
            "currency": "USD",
            **webhook,
        },
        JobType.NOTIFY_DISPUTE_RESOLVED: {
            "transactionId": "esc-1",
            "amount": 10000,
            "currency": "USD",
            "outcome": "refunded",
            "buyerEmail": "buyer@example.com",
            "sellerEmail": "seller@example.com",
            **webhook,
        },
        JobType.AUDIT_LOG_CREATED: {
            "transactionId": "esc-1",
            "action": "release",
            "actor": "user:42",
            "stateBefore": "funded",
            "stateAfter": "released",
            "amount": 10000,
            "requestId": "req-abc",
        },
        JobType.SEND_PAYMENT_NOTICE_EMAIL: {
            "transactionId": "esc-1",
            "amount": 10000,
            "currency": "USD",
            "notice": "authorization_expiring",
            "recipients": [
                {"role": "buyer", "email": "buyer@example.com"},
                {"role": "admin", "email": "ops@example.com"},
            ],
            "paymentIntentId": intent_id,
            "deadline": "2026-12-08T09:00:00Z",
        },
    }
