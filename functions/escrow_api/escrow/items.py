"""The escrow table's items: the key layout and each record's item, both ways.

One DynamoDB table, partition key ``pk``, sort key ``sk``, TTL ``expires_at``; every
item also has ``kind``::

    pk                       sk                            what
    ESCROW#<id>              ESCROW                        the escrow (state, version, parties, ...)
    ESCROW#<id>              HIST#<version, 10 digits>     one row per transition (history)
    OUTBOX#<shard 0..3>      <created ms, 13 digits>#<dedupe key>   a job not yet enqueued
    IDEM#<sha256(sub, key)>  IDEM                          an Idempotency-Key's answer (TTL 24 h)
    STRIPE_EVENT#<evt id>    STRIPE_EVENT                  a Stripe event already applied (TTL 30 d)
    RECON#<shard 0..3>       <escrow id>                   the reconciler's list: an open escrow,
                                                           or one closed (TTL 30 d after closing)

The escrow and its history share a partition, so ``GET /api/escrow/{id}`` is one Query.
Outbox entries live in a few shard partitions so the sweep finds them with one Query
each, without a scan or an index; they are deleted once enqueued, so those partitions
hold only what is pending.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from jobs_core import JobType

from .idempotency import IdempotencyRecord
from .models import Escrow, HistoryEntry, Party
from .outbox import OutboxEntry, outbox_shard
from .state import FINAL_STATES, Action, EscrowState

if TYPE_CHECKING:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

ESCROW = "ESCROW#"
ESCROW_SK = "ESCROW"
HISTORY_SK = "HIST#"
OUTBOX = "OUTBOX#"
IDEM = "IDEM#"
IDEM_SK = "IDEM"
EVENT = "STRIPE_EVENT#"
EVENT_SK = "STRIPE_EVENT"

EVENT_TTL_S = 30 * 86_400
RECON = "RECON#"
RECON_TTL_S = 30 * 86_400  # the longest look back a reconcile run may ask for


# -- item <-> record ----------------------------------------------------------------------


def escrow_to_item(e: Escrow) -> dict[str, Any]:
    return {
        "pk": ESCROW + e.escrow_id,
        "sk": ESCROW_SK,
        "kind": "escrow",
        "escrow_id": e.escrow_id,
        "state": e.state.value,
        "version": e.version,
        "amount": e.amount,
        "currency": e.currency,
        "buyer_id": e.buyer.id,
        "buyer_email": e.buyer.email,
        "buyer_name": e.buyer.name,
        "seller_id": e.seller.id,
        "seller_email": e.seller.email,
        "seller_name": e.seller.name,
        "payment_intent_id": e.payment_intent_id,
        "created_by": e.created_by,
        "created_ms": e.created_ms,
        "updated_ms": e.updated_ms,
        "description": e.description,
        "webhook_url": e.webhook_url,
        "webhook_secret_ref": e.webhook_secret_ref,
        "pending_action": e.pending_action.value if e.pending_action else None,
        "pending_from": e.pending_from.value if e.pending_from else None,
        "pending_since_ms": e.pending_since_ms,
        "stripe_action": e.stripe_action,
        "dispute_reason": e.dispute_reason,
        "resolution_note": e.resolution_note,
        # Money as Stripe reports it (minor units), and the authorisation and chargeback.
        "captured_amount": e.captured_amount,
        "refunded_amount": e.refunded_amount,
        "capture_before_ms": e.capture_before_ms,
        "extended_authorization": e.extended_authorization,
        "chargeback_id": e.chargeback_id,
        "chargeback_status": e.chargeback_status,
        "chargeback_amount": e.chargeback_amount,
    }


def escrow_from_item(item: Mapping[str, Any]) -> Escrow:
    pending_action = item.get("pending_action")
    pending_from = item.get("pending_from")
    return Escrow(
        escrow_id=item["escrow_id"],
        state=EscrowState(item["state"]),
        version=int(item["version"]),
        amount=int(item["amount"]),
        currency=item["currency"],
        buyer=Party(item["buyer_id"], item["buyer_email"], item.get("buyer_name")),
        seller=Party(item["seller_id"], item["seller_email"], item.get("seller_name")),
        payment_intent_id=item["payment_intent_id"],
        created_by=item["created_by"],
        created_ms=int(item["created_ms"]),
        updated_ms=int(item["updated_ms"]),
        description=item.get("description"),
        webhook_url=item.get("webhook_url"),
        webhook_secret_ref=item.get("webhook_secret_ref"),
        pending_action=Action(pending_action) if pending_action else None,
        pending_from=EscrowState(pending_from) if pending_from else None,
        pending_since_ms=_opt_int(item.get("pending_since_ms")),
        stripe_action=item.get("stripe_action"),
        dispute_reason=item.get("dispute_reason"),
        resolution_note=item.get("resolution_note"),
        captured_amount=int(item.get("captured_amount") or 0),
        refunded_amount=int(item.get("refunded_amount") or 0),
        capture_before_ms=_opt_int(item.get("capture_before_ms")),
        extended_authorization=item.get("extended_authorization"),
        chargeback_id=item.get("chargeback_id"),
        chargeback_status=item.get("chargeback_status"),
        chargeback_amount=_opt_int(item.get("chargeback_amount")),
    )


def reconcile_to_item(e: Escrow) -> dict[str, Any]:
    """The escrow's entry in the reconciler's list, written with every change of it."""
    closed = e.updated_ms if e.state in FINAL_STATES else None
    return {
        "pk": RECON + str(outbox_shard(e.escrow_id)),
        "sk": e.escrow_id,
        "kind": "reconcile",
        "state": e.state.value,
        "closed_ms": closed,
        "expires_at": None if closed is None else closed // 1000 + RECON_TTL_S,
    }


def history_to_item(h: HistoryEntry) -> dict[str, Any]:
    return {
        "pk": ESCROW + h.escrow_id,
        "sk": f"{HISTORY_SK}{h.version:010d}",
        "kind": "history",
        "escrow_id": h.escrow_id,
        "version": h.version,
        "action": h.action.value,
        "from_state": h.from_state.value if h.from_state else None,
        "to_state": h.to_state.value,
        "actor": h.actor,
        "at_ms": h.at_ms,
        "request_id": h.request_id,
        "reason": h.reason,
        "stripe_action": h.stripe_action,
    }


def history_from_item(item: Mapping[str, Any]) -> HistoryEntry:
    from_state = item.get("from_state")
    return HistoryEntry(
        escrow_id=item["escrow_id"],
        version=int(item["version"]),
        action=Action(item["action"]),
        from_state=EscrowState(from_state) if from_state else None,
        to_state=EscrowState(item["to_state"]),
        actor=item["actor"],
        at_ms=int(item["at_ms"]),
        request_id=item.get("request_id"),
        reason=item.get("reason"),
        stripe_action=item.get("stripe_action"),
    )


def outbox_to_item(e: OutboxEntry) -> dict[str, Any]:
    return {
        "pk": OUTBOX + str(e.shard),
        "sk": e.sort_key,
        "kind": "outbox",
        "job_type": e.job_type.value,
        "payload": json.dumps(e.payload, separators=(",", ":"), sort_keys=True),
        "dedupe_key": e.dedupe_key,
        "escrow_id": e.escrow_id,
        "created_ms": e.created_ms,
        "correlation_id": e.correlation_id,
        "due_ms": e.due_ms,
    }


def outbox_from_item(item: Mapping[str, Any]) -> OutboxEntry:
    return OutboxEntry(
        job_type=JobType(item["job_type"]),
        payload=json.loads(item["payload"]),
        dedupe_key=item["dedupe_key"],
        escrow_id=item["escrow_id"],
        created_ms=int(item["created_ms"]),
        correlation_id=item.get("correlation_id"),
        due_ms=_opt_int(item.get("due_ms")),
    )


def idem_to_item(r: IdempotencyRecord) -> dict[str, Any]:
    return {
        "pk": IDEM + r.scope,
        "sk": IDEM_SK,
        "kind": "idempotency",
        "request_hash": r.request_hash,
        "status": r.status,
        "lock_token": r.lock_token,
        "locked_until_ms": r.locked_until_ms,
        "expires_at": r.expires_at_s,
        "status_code": r.status_code,
        "response_body": r.response_body,
    }


def idem_from_item(item: Mapping[str, Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        scope=str(item["pk"]).removeprefix(IDEM),
        request_hash=item["request_hash"],
        status=item["status"],
        lock_token=item["lock_token"],
        locked_until_ms=int(item["locked_until_ms"]),
        expires_at_s=int(item["expires_at"]),
        status_code=_opt_int(item.get("status_code")),
        response_body=item.get("response_body"),
    )


# -- attribute values ---------------------------------------------------------------------


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def attributes(values: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """DynamoDB attribute values (boto3's ``TypeSerializer``: strings, numbers, booleans,
    lists, maps, sets) of the non-None entries: an absent attribute reads back as None, so
    nulls are not stored. Floats are refused (use ``Decimal``), as boto3 refuses them."""
    serialize = _serializer().serialize
    return {prefix + k: serialize(v) for k, v in values.items() if v is not None}


def plain(item: Mapping[str, Any]) -> dict[str, Any]:
    """Python values of an item (boto3's ``TypeDeserializer``); whole numbers become ``int``."""
    deserialize = _deserializer().deserialize
    return {name: _integral(deserialize(av)) for name, av in item.items()}


@cache
def _serializer() -> TypeSerializer:
    from boto3.dynamodb.types import TypeSerializer

    return TypeSerializer()


@cache
def _deserializer() -> TypeDeserializer:
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def _integral(value: Any) -> Any:
    """``Decimal('7')`` as ``7``, also inside lists, maps and sets; other values as they are."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, set):
        return {_integral(v) for v in value}
    return value


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
