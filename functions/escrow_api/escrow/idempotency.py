"""Idempotency-Key: one record per caller and key, holding the answer a retry gets again.

A request with the header takes the record "in progress" in the same transaction as
its first write, and completes it with its answer in the last one. A retry with the
same key and body gets that answer again (``Idempotent-Replayed: true``); the same
key with another body is 422; a retry while the first is still running is 409. The
record lives ``IDEMPOTENCY_TTL_S`` (DynamoDB's TTL deletes it lazily, so expiry is
also checked on read).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel

from .auth import Caller
from .errors import BadRequestError, IdempotencyKeyReusedError, RequestInProgressError
from .messages import ApiRequest, ApiResponse

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_TTL_S = 24 * 3600

Clock = Callable[[], int]


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


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """The Idempotency-Key of one request: its scope (caller + key) and request hash."""

    scope: str
    request_hash: str
    token: str

    def record(
        self, now_ms: int, *, lock_s: float, response: ApiResponse | None = None
    ) -> IdempotencyRecord:
        return IdempotencyRecord(
            scope=self.scope,
            request_hash=self.request_hash,
            status="completed" if response else "in_progress",
            lock_token=self.token,
            locked_until_ms=now_ms + int(lock_s * 1000),
            expires_at_s=now_ms // 1000 + IDEMPOTENCY_TTL_S,
            status_code=response.status if response else None,
            response_body=response.json() if response else None,
        )


class RecordReader(Protocol):
    """The one table read a replay needs (``store.EscrowStore`` has it)."""

    def get_idempotency(self, scope: str) -> IdempotencyRecord | None: ...


def key_of(caller: Caller, req: ApiRequest, route: str, body: BaseModel) -> IdempotencyKey | None:
    """The request's Idempotency-Key, or None without the header; 400 for a bad key."""
    key = req.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable() or not key.isascii():
        raise BadRequestError(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters",
            field="Idempotency-Key",
        )
    scope = hashlib.sha256(f"{caller.sub}\n{key}".encode()).hexdigest()
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    request_hash = hashlib.sha256(f"{route}\n{canonical}".encode()).hexdigest()
    return IdempotencyKey(scope, request_hash, secrets.token_hex(16))


def replay(
    record: IdempotencyRecord | None, idem: IdempotencyKey, clock: Clock
) -> ApiResponse | None:
    """The stored answer for a retried request; 422 if the key was used differently."""
    if record is None or not record.is_live(clock()):
        return None
    if record.request_hash != idem.request_hash:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was used with a different request", field="Idempotency-Key"
        )
    if record.status != "completed" or record.status_code is None:
        raise RequestInProgressError(
            "a request with this Idempotency-Key is still in progress; retry shortly",
            field="Idempotency-Key",
        )
    return ApiResponse(
        record.status_code,
        json.loads(record.response_body or "{}"),
        {"Idempotent-Replayed": "true"},
    )


def replay_after_race(store: RecordReader, idem: IdempotencyKey, clock: Clock) -> ApiResponse:
    """The answer of the request that took the key first, which just won a write race."""
    found = replay(store.get_idempotency(idem.scope), idem, clock)
    if found is None:
        raise RequestInProgressError(
            "a request with this Idempotency-Key is in progress; retry shortly",
            field="Idempotency-Key",
        )
    return found


def completed(
    idem: IdempotencyKey | None, now_ms: int, response: ApiResponse
) -> IdempotencyWrite | None:
    """The record completed with ``response``, to write with the request's last change."""
    if idem is None:
        return None
    return IdempotencyWrite(idem.record(now_ms, lock_s=0, response=response))
