"""The escrow table: one DynamoDB table, partition key ``pk``, sort key ``sk``, TTL ``expires_at``.

Item layout (every item also has ``kind``)::

    pk                       sk                            what
    ESCROW#<id>              ESCROW                        the escrow (state, version, parties, ...)
    ESCROW#<id>              HIST#<version, 10 digits>     one row per transition (history)
    OUTBOX#<shard 0..3>      <created ms, 13 digits>#<dedupe key>   a job not yet enqueued
    IDEM#<sha256(sub, key)>  IDEM                          an Idempotency-Key's answer (TTL 24 h)
    STRIPE_EVENT#<evt id>    STRIPE_EVENT                  a Stripe event already applied (TTL 30 d)

The escrow and its history share a partition, so ``GET /api/escrow/{id}`` is one Query.
Outbox entries live in a few shard partitions so the sweep finds them with one Query
each, without a scan or an index; they are deleted once enqueued, so those partitions
hold only what is pending.

Every change of an escrow is one ``TransactWriteItems``: the escrow item (conditioned on
the state and version it was read with), its history row, its outbox entries, and the
idempotency record or Stripe event marker, all or nothing.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from jobs_core import JobType

from .models import Escrow, HistoryEntry, Party
from .outbox import OUTBOX_SHARDS, OutboxEntry
from .state import Action, EscrowState

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

ESCROW = "ESCROW#"
ESCROW_SK = "ESCROW"
HISTORY_SK = "HIST#"
OUTBOX = "OUTBOX#"
IDEM = "IDEM#"
IDEM_SK = "IDEM"
EVENT = "STRIPE_EVENT#"
EVENT_SK = "STRIPE_EVENT"

IDEMPOTENCY_TTL_S = 24 * 3600
EVENT_TTL_S = 30 * 86_400
BATCH_WRITE_MAX = 25


# -- records that are not escrows --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What one ``Idempotency-Key`` (scoped to its caller) was used for, and its answer."""

    scope: str  # sha256 of caller and key
    request_hash: str
    status: Literal["in_progress", "completed"]
    lock_token: str
    locked_until_ms: int
    expires_at_s: int
    status_code: int | None = None
    response_body: str | None = None

    def is_live(self, now_ms: int) -> bool:
        """Still binding: not expired, and either completed or locked by a running request."""
        if self.expires_at_s * 1000 <= now_ms:
            return False
        return self.status == "completed" or self.locked_until_ms > now_ms


@dataclass(frozen=True, slots=True)
class IdempotencyWrite:
    """An idempotency record to put in a transaction.

    ``take`` puts it only where no live record exists (a first use, or an expired or
    abandoned one); otherwise the put is conditioned on ``owner_token`` (our own lock).
    """

    record: IdempotencyRecord
    take: bool = True
    owner_token: str | None = None


class TransactionConflictError(Exception):
    """A condition in a transaction failed; ``failed`` names the items (escrow, idem, event)."""

    def __init__(self, failed: set[str]) -> None:
        self.failed = failed
        super().__init__(f"condition failed on: {', '.join(sorted(failed)) or 'unknown'}")


# -- the store ----------------------------------------------------------------------------


class EscrowStore:
    """Reads and all-or-nothing writes on the escrow table (boto3 low-level client).

    >>> store = EscrowStore(boto3.client("dynamodb"), "escrow-table")  # doctest: +SKIP
    >>> store.get_escrow("esc_01J...")                                 # doctest: +SKIP
    """

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self.client = client
        self.table = table_name

    @classmethod
    def create(cls, table_name: str, *, region: str | None = None) -> EscrowStore:
        """A store with a client tuned for a request path (short timeouts, few retries).

        ``AWS_ENDPOINT_URL_DYNAMODB`` (read by boto3 itself) points it at a local DynamoDB.
        """
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "standard", "max_attempts": 3},
        )
        return cls(boto3.client("dynamodb", region_name=region, config=config), table_name)

    # -- reads ----------------------------------------------------------------------------

    def get_escrow(self, escrow_id: str) -> Escrow | None:
        out = self.client.get_item(
            TableName=self.table, Key=_key(ESCROW + escrow_id, ESCROW_SK), ConsistentRead=True
        )
        item = out.get("Item")
        return escrow_from_item(_plain(item)) if item else None

    def load(
        self, escrow_id: str | None, idem_scope: str | None
    ) -> tuple[Escrow | None, IdempotencyRecord | None]:
        """The escrow and the idempotency record in one round trip (BatchGetItem)."""
        keys: list[dict[str, Any]] = []
        if escrow_id:
            keys.append(_key(ESCROW + escrow_id, ESCROW_SK))
        if idem_scope:
            keys.append(_key(IDEM + idem_scope, IDEM_SK))
        if not keys:
            return None, None
        items = self._batch_get(keys)
        escrow = idem = None
        for item in items:
            if item["sk"] == ESCROW_SK:
                escrow = escrow_from_item(item)
            elif item["sk"] == IDEM_SK:
                idem = idem_from_item(item)
        return escrow, idem

    def get_idempotency(self, scope: str) -> IdempotencyRecord | None:
        out = self.client.get_item(
            TableName=self.table, Key=_key(IDEM + scope, IDEM_SK), ConsistentRead=True
        )
        item = out.get("Item")
        return idem_from_item(_plain(item)) if item else None

    def get_escrow_with_history(self, escrow_id: str) -> tuple[Escrow, list[HistoryEntry]] | None:
        """The escrow and its history rows, oldest first, from one partition."""
        escrow: Escrow | None = None
        history: list[HistoryEntry] = []
        for item in self._query(ESCROW + escrow_id):
            if item["sk"] == ESCROW_SK:
                escrow = escrow_from_item(item)
            elif str(item["sk"]).startswith(HISTORY_SK):
                history.append(history_from_item(item))
        return (escrow, history) if escrow else None

    def pending_outbox(self, *, older_than_ms: int, limit: int) -> list[OutboxEntry]:
        """Outbox entries created before ``older_than_ms``, oldest first per shard."""
        entries: list[OutboxEntry] = []
        upper = f"{max(older_than_ms, 0):013d}"
        for shard in range(OUTBOX_SHARDS):
            for item in self._query(OUTBOX + str(shard), sk_below=upper):
                entries.append(outbox_from_item(item))
                if len(entries) >= limit:
                    return entries
        return entries

    # -- writes ---------------------------------------------------------------------------

    def write(
        self,
        escrow: Escrow,
        *,
        expected: Escrow | None,
        history: HistoryEntry | None = None,
        outbox: Sequence[OutboxEntry] = (),
        idem: IdempotencyWrite | None = None,
        idem_delete: str | None = None,
        stripe_event: tuple[str, str] | None = None,
        now_ms: int | None = None,
    ) -> None:
        """Write ``escrow`` and what goes with it in one transaction.

        ``expected`` is the escrow as read (its state and version are the condition), or
        None for a new escrow. ``stripe_event`` is ``(event id, event type)``, put only if
        not seen before. Raises ``TransactionConflictError`` naming what failed.
        """
        now = _now_ms() if now_ms is None else now_ms
        labels: list[str] = ["escrow"]
        escrow_put: dict[str, Any] = {
            "TableName": self.table,
            "Item": _item(escrow_to_item(escrow)),
        }
        if expected is None:
            escrow_put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            escrow_put["ConditionExpression"] = "#state = :state AND #version = :version"
            escrow_put["ExpressionAttributeNames"] = {"#state": "state", "#version": "version"}
            escrow_put["ExpressionAttributeValues"] = _item(
                {"state": expected.state.value, "version": expected.version}, prefix=":"
            )
        items: list[dict[str, Any]] = [{"Put": escrow_put}]
        if history is not None:
            labels.append("history")
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _item(history_to_item(history)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        for entry in outbox:
            labels.append("outbox")
            items.append({"Put": {"TableName": self.table, "Item": _item(outbox_to_item(entry))}})
        if idem is not None:
            labels.append("idem")
            items.append({"Put": self._idem_put(idem, now)})
        if idem_delete is not None:
            labels.append("idem")
            items.append(
                {"Delete": {"TableName": self.table, "Key": _key(IDEM + idem_delete, IDEM_SK)}}
            )
        if stripe_event is not None:
            labels.append("event")
            event_id, event_type = stripe_event
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": _item(
                            {
                                "pk": EVENT + event_id,
                                "sk": EVENT_SK,
                                "kind": "stripe_event",
                                "event_type": event_type,
                                "escrow_id": escrow.escrow_id,
                                "received_ms": now,
                                "expires_at": now // 1000 + EVENT_TTL_S,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        self._transact(items, labels)

    def _idem_put(self, idem: IdempotencyWrite, now_ms: int) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table, "Item": _item(idem_to_item(idem.record))}
        if idem.take:
            # No live record: never used, expired (TTL deletes lazily), or abandoned in flight.
            put["ConditionExpression"] = (
                "attribute_not_exists(pk) OR expires_at <= :now_s"
                " OR (#status = :in_progress AND locked_until_ms <= :now_ms)"
            )
            put["ExpressionAttributeNames"] = {"#status": "status"}
            put["ExpressionAttributeValues"] = _item(
                {"now_s": now_ms // 1000, "now_ms": now_ms, "in_progress": "in_progress"},
                prefix=":",
            )
        elif idem.owner_token is not None:
            put["ConditionExpression"] = "lock_token = :token"
            put["ExpressionAttributeValues"] = _item({"token": idem.owner_token}, prefix=":")
        return put

    def delete_outbox(self, entries: Sequence[OutboxEntry]) -> None:
        """Delete enqueued entries (BatchWriteItem, 25 a call, unprocessed ones resent)."""
        requests = [
            {"DeleteRequest": {"Key": _key(OUTBOX + str(e.shard), e.sort_key)}} for e in entries
        ]
        for start in range(0, len(requests), BATCH_WRITE_MAX):
            pending: Mapping[str, Any] = {self.table: requests[start : start + BATCH_WRITE_MAX]}
            for attempt in range(5):
                out = self.client.batch_write_item(RequestItems=pending)
                pending = out.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise RuntimeError("DynamoDB left outbox deletions unprocessed")

    # -- helpers --------------------------------------------------------------------------

    def _transact(self, items: list[dict[str, Any]], labels: list[str]) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.transact_write_items(
                TransactItems=items,  # type: ignore[arg-type]
                ClientRequestToken=uuid.uuid4().hex,
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons: list[Any] = list(exc.response.get("CancellationReasons") or [])
            failed = {
                labels[i]
                for i, reason in enumerate(reasons)
                if i < len(labels) and reason.get("Code") == "ConditionalCheckFailed"
            }
            if not failed and any(r.get("Code") not in (None, "None") for r in reasons):
                raise  # cancelled for another reason (conflict with another transaction, ...)
            raise TransactionConflictError(failed) from exc

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        request: Mapping[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(5):
            out = self.client.batch_get_item(RequestItems=request)
            items += [_plain(i) for i in out.get("Responses", {}).get(self.table, [])]
            request = out.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(0.02 * 2**attempt)
        raise RuntimeError("DynamoDB left keys unprocessed")

    def _query(self, pk: str, *, sk_below: str | None = None) -> Iterator[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "ConsistentRead": True,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
        }
        if sk_below is not None:
            kwargs["KeyConditionExpression"] = "pk = :pk AND sk < :below"
            kwargs["ExpressionAttributeValues"][":below"] = {"S": sk_below}
        while True:
            out = self.client.query(**kwargs)
            for item in out.get("Items", []):
                yield _plain(item)
            last = out.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


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
    )


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
    }


def outbox_from_item(item: Mapping[str, Any]) -> OutboxEntry:
    return OutboxEntry(
        job_type=JobType(item["job_type"]),
        payload=json.loads(item["payload"]),
        dedupe_key=item["dedupe_key"],
        escrow_id=item["escrow_id"],
        created_ms=int(item["created_ms"]),
        correlation_id=item.get("correlation_id"),
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


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _av(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"unsupported attribute value {type(value).__name__}")


def _item(values: Mapping[str, Any], *, prefix: str = "") -> dict[str, Any]:
    """Attribute values of the non-None entries (DynamoDB has no use for nulls here)."""
    return {prefix + k: _av(v) for k, v in values.items() if v is not None}


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, av in item.items():
        if "S" in av:
            out[name] = av["S"]
        elif "N" in av:
            out[name] = int(av["N"])
        elif "BOOL" in av:
            out[name] = av["BOOL"]
    return out


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)
