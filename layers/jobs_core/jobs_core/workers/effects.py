"""The effect ledger: each effect without an idempotency key of its own happens at most once.

SES and the local mailbox have no idempotency key, and a webhook POST repeated
is one more delivery for the partner to dedupe. So before such an effect the
handler consults a ledger keyed by an *effect id* derived from the job id
(``<job id>/email/buyer``), and records the effect there once it has happened:

1. **claim** (one conditional write): the entry is created as ``pending`` with a
   random token and a hold deadline, unless it already exists. An entry that is
   ``done`` means the effect happened: the handler skips it. An entry that is
   ``pending`` and still held means another delivery of the same job is doing
   it right now (a lease that ran out mid-send): the handler retries later.
2. **effect**: the email is sent, the webhook posted.
3. **mark done** (one conditional write, on our token). If the effect failed
   instead, the claim is released so that a retry need not wait for the hold.

Why this order. Recording *after* the effect can only err towards a duplicate;
recording *before* it (``done`` first, then send) would turn a crash between
the two into an email that is never sent, which for "your funds were released"
is worse than a second copy. The pending claim in step 1 closes the common
duplicate case, two deliveries of one job running at once, at the cost of one
more write.

The remaining window: a process that dies after the provider accepted the
message and before step 3 leaves a ``pending`` entry; once its hold expires
(``hold_s``, default 120 s, longer than any send) a redelivery finds the effect
unrecorded and performs it again. That is one duplicate in the rare case of a
crash inside a few milliseconds, never a loss. Resend closes even that window
with its ``Idempotency-Key`` (we send the effect id); webhooks carry a stable
``webhook-id`` that the partner dedupes on. A failure to write step 3 (store
unreachable) is logged, not raised: raising would schedule a retry that could
repeat the effect once the hold expires.

Why not Powertools' idempotency utility: it fits one idempotent *function per
Lambda invocation*, ties the in-progress expiry to the Lambda context (outside
one, an interrupted record blocks retries until the whole record expires),
stores payload hashes we do not need, and has no local file store. This ledger
is three conditional writes on a two-attribute schema (``effect_id``,
``expires_at`` for TTL), with the same semantics in DynamoDB, in a local
directory and in memory.

Example::

    ledger = MemoryEffectLedger()
    run_once(ledger, "job-1/email/buyer", lambda: provider.send(msg), clock=SystemClock())
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ..clock import Clock
from ..errors import PermanentJobError, RetryableJobError

__all__ = [
    "Claim",
    "ClaimOutcome",
    "DynamoEffectLedger",
    "EffectLedger",
    "FileEffectLedger",
    "MemoryEffectLedger",
    "run_once",
]

log = logging.getLogger(__name__)

DEFAULT_HOLD_S = 120.0
DEFAULT_RETENTION_S = 30 * 86_400  # the TTL of ledger entries (DynamoDB ``expires_at``)

PENDING = "pending"
DONE = "done"


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # ours: perform the effect, then mark it done
    DONE = "done"  # it happened already: skip it
    BUSY = "busy"  # another delivery holds it now: retry after ``retry_after_s``


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: ClaimOutcome
    retry_after_s: float = 0.0


class EffectLedger(Protocol):
    """Three operations; implementations must be safe to call from several threads."""

    def claim(self, effect_id: str, *, token: str, now_ms: int, hold_ms: int) -> Claim: ...

    def mark_done(self, effect_id: str, *, token: str, now_ms: int) -> bool:
        """True when recorded; False when the claim was no longer ours (taken over)."""
        ...

    def release(self, effect_id: str, *, token: str) -> None: ...


def run_once(
    ledger: EffectLedger,
    effect_id: str,
    effect: Callable[[], object],
    *,
    clock: Clock,
    hold_s: float = DEFAULT_HOLD_S,
) -> bool:
    """Perform ``effect`` unless the ledger says it happened; True when performed now.

    Raises ``RetryableJobError`` while another delivery holds the effect; any
    exception of ``effect`` propagates after the claim is released.
    """
    token = secrets.token_hex(8)
    claim = ledger.claim(effect_id, token=token, now_ms=clock.now_ms(), hold_ms=int(hold_s * 1000))
    if claim.outcome is ClaimOutcome.DONE:
        log.info("effect %s already done; skipped", effect_id)
        return False
    if claim.outcome is ClaimOutcome.BUSY:
        raise RetryableJobError(
            f"effect {effect_id} is being performed by another delivery",
            delay_s=max(1.0, claim.retry_after_s),
        )
    try:
        effect()
    except BaseException:
        try:
            ledger.release(effect_id, token=token)
        except Exception:
            log.warning("could not release the claim on %s; it expires by itself", effect_id)
        raise
    try:
        if not ledger.mark_done(effect_id, token=token, now_ms=clock.now_ms()):
            log.warning("effect %s was taken over by another delivery while held", effect_id)
    except Exception:
        log.exception("effect %s happened but could not be recorded", effect_id)
    return True


def _decide(record: dict[str, Any] | None, now_ms: int) -> Claim | None:
    """None when the effect may be claimed; otherwise why not."""
    if record is None:
        return None
    if record.get("status") == DONE:
        return Claim(ClaimOutcome.DONE)
    lease_until = int(record.get("lease_until", 0))
    if lease_until > now_ms:
        return Claim(ClaimOutcome.BUSY, retry_after_s=(lease_until - now_ms) / 1000)
    return None  # a pending claim whose holder died: take it over


def _pending(token: str, now_ms: int, hold_ms: int) -> dict[str, Any]:
    return {"status": PENDING, "token": token, "lease_until": now_ms + hold_ms}


class MemoryEffectLedger:
    """The ledger in a dict; for tests and single-process local runs."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def claim(self, effect_id: str, *, token: str, now_ms: int, hold_ms: int) -> Claim:
        with self._lock:
            refusal = _decide(self.records.get(effect_id), now_ms)
            if refusal is not None:
                return refusal
            self.records[effect_id] = _pending(token, now_ms, hold_ms)
            return Claim(ClaimOutcome.CLAIMED)

    def mark_done(self, effect_id: str, *, token: str, now_ms: int) -> bool:
        with self._lock:
            record = self.records.get(effect_id)
            if record is None or record.get("token") != token:
                return False
            self.records[effect_id] = {"status": DONE, "token": token, "done_at": now_ms}
            return True

    def release(self, effect_id: str, *, token: str) -> None:
        with self._lock:
            record = self.records.get(effect_id)
            if record is not None and record.get("token") == token and record["status"] == PENDING:
                del self.records[effect_id]


class FileEffectLedger:
    """The ledger as one JSON file per effect in a directory; for local work.

    Survives restarts of the local processor. Operations take an exclusive
    ``flock`` on ``.lock`` in the directory, so several local processes agree.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()

    def _path(self, effect_id: str) -> Path:
        return self.directory / (quote(effect_id, safe="") + ".json")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(self.directory / ".lock", "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, effect_id: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._path(effect_id).read_text())
        except FileNotFoundError:
            return None
        return data

    def _write(self, effect_id: str, record: dict[str, Any]) -> None:
        path = self._path(effect_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"effect_id": effect_id, **record}))
        os.replace(tmp, path)

    def claim(self, effect_id: str, *, token: str, now_ms: int, hold_ms: int) -> Claim:
        with self._locked():
            refusal = _decide(self._read(effect_id), now_ms)
            if refusal is not None:
                return refusal
            self._write(effect_id, _pending(token, now_ms, hold_ms))
            return Claim(ClaimOutcome.CLAIMED)

    def mark_done(self, effect_id: str, *, token: str, now_ms: int) -> bool:
        with self._locked():
            record = self._read(effect_id)
            if record is None or record.get("token") != token:
                return False
            self._write(effect_id, {"status": DONE, "token": token, "done_at": now_ms})
            return True

    def release(self, effect_id: str, *, token: str) -> None:
        with self._locked():
            record = self._read(effect_id)
            if record is not None and record.get("token") == token and record["status"] == PENDING:
                self._path(effect_id).unlink(missing_ok=True)


# DynamoDB errors worth a retry; anything else from the ledger table is a configuration error.
_RETRYABLE_DYNAMO_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)


def dynamo_error(action: str, exc: Exception) -> RetryableJobError | PermanentJobError:
    """Map a boto3 DynamoDB error to the handler error it means."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):  # botocore connection/timeout errors
        return RetryableJobError(f"{action}: {type(exc).__name__}")
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _RETRYABLE_DYNAMO_CODES or status >= 500:
        return RetryableJobError(f"{action}: DynamoDB {code or status}")
    return PermanentJobError(f"{action}: DynamoDB {code or status}")


class DynamoEffectLedger:
    """The ledger in a DynamoDB table: partition key ``effect_id`` (S), TTL on ``expires_at`` (N).

    Uses a low-level boto3 client (thread-safe, unlike resources). IAM:
    ``dynamodb:PutItem``, ``UpdateItem``, ``DeleteItem``, ``GetItem`` on the table.
    """

    def __init__(
        self, client: Any, table_name: str, *, retention_s: int = DEFAULT_RETENTION_S
    ) -> None:
        self._client = client
        self.table_name = table_name
        self._retention_s = retention_s

    def _expires_at(self, now_ms: int) -> dict[str, str]:
        return {"N": str(now_ms // 1000 + self._retention_s)}

    def claim(self, effect_id: str, *, token: str, now_ms: int, hold_ms: int) -> Claim:
        from botocore.exceptions import ClientError

        try:
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    "effect_id": {"S": effect_id},
                    "status": {"S": PENDING},
                    "token": {"S": token},
                    "lease_until": {"N": str(now_ms + hold_ms)},
                    "expires_at": self._expires_at(now_ms),
                },
                ConditionExpression="attribute_not_exists(#id) OR (#st = :pending AND #lu < :now)",
                ExpressionAttributeNames={
                    "#id": "effect_id",
                    "#st": "status",
                    "#lu": "lease_until",
                },
                ExpressionAttributeValues={":pending": {"S": PENDING}, ":now": {"N": str(now_ms)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise dynamo_error(f"effect ledger claim of {effect_id}", exc) from exc
            item: dict[str, Any] | None = exc.response.get("Item") or self._get(effect_id)  # type: ignore[assignment]
            record = None if item is None else _plain(item)
            # The condition failed, so the entry is done or held; re-read only to tell which.
            return _decide(record, now_ms) or Claim(ClaimOutcome.BUSY, retry_after_s=1.0)
        except Exception as exc:
            raise dynamo_error(f"effect ledger claim of {effect_id}", exc) from exc
        return Claim(ClaimOutcome.CLAIMED)

    def _get(self, effect_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self.table_name, Key={"effect_id": {"S": effect_id}}, ConsistentRead=True
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    def mark_done(self, effect_id: str, *, token: str, now_ms: int) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client.update_item(
                TableName=self.table_name,
                Key={"effect_id": {"S": effect_id}},
                UpdateExpression="SET #st = :done, #da = :now, #ex = :ex REMOVE #lu",
                ConditionExpression="#tk = :token",
                ExpressionAttributeNames={
                    "#st": "status",
                    "#da": "done_at",
                    "#ex": "expires_at",
                    "#lu": "lease_until",
                    "#tk": "token",
                },
                ExpressionAttributeValues={
                    ":done": {"S": DONE},
                    ":now": {"N": str(now_ms)},
                    ":ex": self._expires_at(now_ms),
                    ":token": {"S": token},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, effect_id: str, *, token: str) -> None:
        from botocore.exceptions import ClientError

        with contextlib.suppress(ClientError):
            self._client.delete_item(
                TableName=self.table_name,
                Key={"effect_id": {"S": effect_id}},
                ConditionExpression="#tk = :token AND #st = :pending",
                ExpressionAttributeNames={"#tk": "token", "#st": "status"},
                ExpressionAttributeValues={":token": {"S": token}, ":pending": {"S": PENDING}},
            )


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item (``{"S": ...}`` / ``{"N": ...}`` values) as plain values."""
    out: dict[str, Any] = {}
    for key, value in item.items():
        if "S" in value:
            out[key] = value["S"]
        elif "N" in value:
            out[key] = int(value["N"])
    return out
