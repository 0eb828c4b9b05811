"""The escrow table's reads and writes (the items themselves are in ``items.py``).

Every change of an escrow is one ``TransactWriteItems``: the escrow item (conditioned on
the state and version it was read with), its history row, its outbox entries, and the
idempotency record or Stripe event marker, all or nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .idempotency import IdempotencyRecord, IdempotencyWrite
from .items import (
    ESCROW,
    ESCROW_SK,
    EVENT,
    EVENT_SK,
    EVENT_TTL_S,
    HISTORY_SK,
    IDEM,
    IDEM_SK,
    OUTBOX,
    RECON,
    attributes,
    escrow_from_item,
    escrow_to_item,
    history_from_item,
    history_to_item,
    idem_from_item,
    idem_to_item,
    key,
    outbox_from_item,
    outbox_to_item,
    plain,
    reconcile_to_item,
)
from .models import Escrow, HistoryEntry
from .outbox import OUTBOX_SHARDS, OutboxEntry

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BATCH_WRITE_MAX = 25
BATCH_GET_MAX = 100


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
            TableName=self.table, Key=key(ESCROW + escrow_id, ESCROW_SK), ConsistentRead=True
        )
        item = out.get("Item")
        return escrow_from_item(plain(item)) if item else None

    def load(
        self, escrow_id: str | None, idem_scope: str | None
    ) -> tuple[Escrow | None, IdempotencyRecord | None]:
        """The escrow and the idempotency record in one round trip (BatchGetItem)."""
        keys: list[dict[str, Any]] = []
        if escrow_id:
            keys.append(key(ESCROW + escrow_id, ESCROW_SK))
        if idem_scope:
            keys.append(key(IDEM + idem_scope, IDEM_SK))
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
            TableName=self.table, Key=key(IDEM + scope, IDEM_SK), ConsistentRead=True
        )
        item = out.get("Item")
        return idem_from_item(plain(item)) if item else None

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

    def escrows_to_reconcile(self, *, closed_since_ms: int) -> Iterator[Escrow]:
        """Every escrow not in a terminal state, and those closed since ``closed_since_ms``:
        one Query per reconcile shard, then the escrows (BatchGetItem, 100 a call)."""
        ids: list[str] = []
        for shard in range(OUTBOX_SHARDS):
            for item in self._query(RECON + str(shard)):
                closed = item.get("closed_ms")
                if closed is None or int(closed) >= closed_since_ms:
                    ids.append(str(item["sk"]))
        for start in range(0, len(ids), BATCH_GET_MAX):
            keys = [key(ESCROW + i, ESCROW_SK) for i in ids[start : start + BATCH_GET_MAX]]
            found = {e.escrow_id: e for e in map(escrow_from_item, self._batch_get(keys))}
            yield from (found[i] for i in ids[start : start + BATCH_GET_MAX] if i in found)

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
            "Item": attributes(escrow_to_item(escrow)),
        }
        if expected is None:
            escrow_put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            escrow_put["ConditionExpression"] = "#state = :state AND #version = :version"
            escrow_put["ExpressionAttributeNames"] = {"#state": "state", "#version": "version"}
            escrow_put["ExpressionAttributeValues"] = attributes(
                {"state": expected.state.value, "version": expected.version}, prefix=":"
            )
        items: list[dict[str, Any]] = [{"Put": escrow_put}]
        labels.append("reconcile")  # the reconciler's list: open, or closed lately
        items.append(
            {"Put": {"TableName": self.table, "Item": attributes(reconcile_to_item(escrow))}}
        )
        if history is not None:
            labels.append("history")
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": attributes(history_to_item(history)),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        for entry in outbox:
            labels.append("outbox")
            items.append(
                {"Put": {"TableName": self.table, "Item": attributes(outbox_to_item(entry))}}
            )
        if idem is not None:
            labels.append("idem")
            items.append({"Put": self._idem_put(idem, now)})
        if idem_delete is not None:
            labels.append("idem")
            items.append(
                {"Delete": {"TableName": self.table, "Key": key(IDEM + idem_delete, IDEM_SK)}}
            )
        if stripe_event is not None:
            labels.append("event")
            event_id, event_type = stripe_event
            items.append(
                {
                    "Put": {
                        "TableName": self.table,
                        "Item": attributes(
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
        put: dict[str, Any] = {
            "TableName": self.table,
            "Item": attributes(idem_to_item(idem.record)),
        }
        if idem.take:
            # No live record: never used, expired (TTL deletes lazily), or abandoned in flight.
            put["ConditionExpression"] = (
                "attribute_not_exists(pk) OR expires_at <= :now_s"
                " OR (#status = :in_progress AND locked_until_ms <= :now_ms)"
            )
            put["ExpressionAttributeNames"] = {"#status": "status"}
            put["ExpressionAttributeValues"] = attributes(
                {"now_s": now_ms // 1000, "now_ms": now_ms, "in_progress": "in_progress"},
                prefix=":",
            )
        elif idem.owner_token is not None:
            put["ConditionExpression"] = "lock_token = :token"
            put["ExpressionAttributeValues"] = attributes({"token": idem.owner_token}, prefix=":")
        return put

    def delete_outbox(self, entries: Sequence[OutboxEntry]) -> None:
        """Delete enqueued entries (BatchWriteItem, 25 a call, unprocessed ones resent)."""
        requests = [
            {"DeleteRequest": {"Key": key(OUTBOX + str(e.shard), e.sort_key)}} for e in entries
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
            items += [plain(i) for i in out.get("Responses", {}).get(self.table, [])]
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
                yield plain(item)
            last = out.get("LastEvaluatedKey")
            if not last:
                return
            kwargs["ExclusiveStartKey"] = last


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
