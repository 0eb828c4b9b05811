"""The audit log: one row per ``audit_log_created`` job, even when the job is delivered twice.

The row is keyed by the escrow (partition key ``escrow_id``) and the job id
(sort key ``event_id``) and written with the condition
``attribute_not_exists(event_id)``: a redelivered job finds its row and stops
there, without overwriting it. Audit rows are never updated.

Row attributes: ``escrow_id``, ``event_id``, ``action``, ``actor``,
``state_before``, ``state_after``, ``amount``, ``currency``, ``occurred_at``
(when the change happened, ISO 8601; the job's creation time if the payload has
none), ``recorded_at`` (when this row was written), ``request_id``,
``correlation_id``, ``job_type``. Absent values are omitted, not stored empty.

Locally, without a table, ``FileAuditLog`` writes one JSON file per row, created
exclusively, with the same at-most-once behaviour.

IAM: ``dynamodb:PutItem`` on the table.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ..models import Job
from ..payloads import AuditLogPayload
from .effects import dynamo_error

__all__ = ["AuditLog", "DynamoAuditLog", "FileAuditLog", "audit_row"]

log = logging.getLogger(__name__)


class AuditLog(Protocol):
    def write(self, row: dict[str, Any]) -> bool:
        """Write ``row`` unless one with its key exists; True when written now."""
        ...


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def audit_row(job: Job, payload: AuditLogPayload, *, now_ms: int) -> dict[str, Any]:
    """The row for one audit job, as plain values (``None`` values dropped)."""
    occurred = payload.occurred_at or job.created_at
    row: dict[str, Any] = {
        "escrow_id": payload.transaction_id,
        "event_id": job.id,
        "action": payload.action,
        "actor": payload.actor,
        "state_before": payload.state_before.value if payload.state_before else None,
        "state_after": payload.state_after.value if payload.state_after else None,
        "amount": payload.amount,
        "currency": payload.currency if payload.amount is not None else None,
        "occurred_at": _iso(occurred),
        "recorded_at": _iso(datetime.fromtimestamp(now_ms / 1000, tz=UTC)),
        "request_id": payload.request_id,
        "correlation_id": job.correlation_id,
        "job_type": job.type.value,
    }
    return {k: v for k, v in row.items() if v is not None}


class DynamoAuditLog:
    """Rows in a DynamoDB table (``escrow_id`` S / ``event_id`` S), through a low-level client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def write(self, row: dict[str, Any]) -> bool:
        from botocore.exceptions import ClientError

        item = {k: ({"N": str(v)} if isinstance(v, int) else {"S": str(v)}) for k, v in row.items()}
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(event_id)",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise dynamo_error(f"audit row {row['event_id']}", exc) from exc
        except Exception as exc:
            raise dynamo_error(f"audit row {row['event_id']}", exc) from exc
        return True


class FileAuditLog:
    """Rows as ``<dir>/<escrow id>/<event id>.json``, each created exclusively."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)

    def write(self, row: dict[str, Any]) -> bool:
        folder = self.directory / quote(row["escrow_id"], safe="")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (quote(row["event_id"], safe="") + ".json")
        # Write aside, then link into place: the link fails if the row exists, and a crash
        # mid-write leaves no half row behind under the final name.
        tmp = folder / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(row, indent=2, sort_keys=True))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        return True
