"""The job, its states and types, and the queue statistics. Knows nothing of storage.

A job record is stored as ``<header JSON>\n<payload JSON>``: the header holds the
state, attempts and integer millisecond timestamps; a Lua script that bumps
``attempts`` decodes and rewrites only the header, so it never re-encodes (and never
alters) the payload, and enqueue encodes the payload once. Compact JSON escapes
newlines inside strings, so the first newline always ends the header.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from . import payloads as p


class JobType(StrEnum):
    SEND_RELEASE_EMAIL = "send_release_email"
    SEND_REFUND_EMAIL = "send_refund_email"
    SEND_DISPUTE_EMAIL = "send_dispute_email"
    SEND_PAYMENT_CONFIRMED_EMAIL = "send_payment_confirmed_email"
    STRIPE_CAPTURE_PAYMENT = "stripe_capture_payment"
    STRIPE_REFUND_PAYMENT = "stripe_refund_payment"
    WEBHOOK_ESCROW_STATUS_CHANGED = "webhook_escrow_status_changed"
    NOTIFY_DISPUTE_RESOLVED = "notify_dispute_resolved"
    AUDIT_LOG_CREATED = "audit_log_created"
    SEND_PAYMENT_NOTICE_EMAIL = "send_payment_notice_email"


_PAYLOAD_MODEL_NAMES = {
    JobType.SEND_RELEASE_EMAIL: "ReleaseEmailPayload",
    JobType.SEND_REFUND_EMAIL: "RefundEmailPayload",
    JobType.SEND_DISPUTE_EMAIL: "DisputeEmailPayload",
    JobType.SEND_PAYMENT_CONFIRMED_EMAIL: "PaymentConfirmedEmailPayload",
    JobType.STRIPE_CAPTURE_PAYMENT: "StripeCapturePayload",
    JobType.STRIPE_REFUND_PAYMENT: "StripeRefundPayload",
    JobType.WEBHOOK_ESCROW_STATUS_CHANGED: "EscrowStatusChangedPayload",
    JobType.NOTIFY_DISPUTE_RESOLVED: "DisputeResolvedPayload",
    JobType.AUDIT_LOG_CREATED: "AuditLogPayload",
    JobType.SEND_PAYMENT_NOTICE_EMAIL: "PaymentNoticePayload",
}


class _PayloadModels(Mapping[JobType, "type[p.Payload]"]):
    """Each job type's payload model. The models (pydantic builds a validator per class,
    and email-validator comes with them) are imported on first use: a function that
    never validates a payload, such as the monitor, never pays for them."""

    def __init__(self) -> None:
        self._loaded: dict[JobType, type[p.Payload]] = {}

    def __getitem__(self, job_type: JobType) -> type[p.Payload]:
        model = self._loaded.get(job_type)  # on the enqueue path: one dict read
        if model is None:
            name = _PAYLOAD_MODEL_NAMES[job_type]
            from . import payloads

            model = self._loaded[job_type] = getattr(payloads, name)
        return model

    def __iter__(self) -> Iterator[JobType]:
        return iter(_PAYLOAD_MODEL_NAMES)

    def __len__(self) -> int:
        return len(_PAYLOAD_MODEL_NAMES)


PAYLOAD_MODELS: Mapping[JobType, type[p.Payload]] = _PayloadModels()


class JobState(StrEnum):
    QUEUED = "queued"  # due now, waiting for a processor
    SCHEDULED = "scheduled"  # delayed, or waiting for a retry
    RUNNING = "running"  # leased by a processor
    SUCCEEDED = "succeeded"
    DEAD = "dead"  # in the dead-letter queue
    CANCELLED = "cancelled"  # taken out of the queue by an operator before it ran
    # Waits for its partner (endpoint disabled by a 410, circuit open, at its limits), out
    # of the timeline and spending no attempt.
    HELD = "held"


def ms_to_dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


def dt_to_ms(dt: datetime | None) -> int | None:
    return None if dt is None else int(dt.timestamp() * 1000)


HISTORY_LIMIT = 10  # events kept per record; the Lua scripts that append say the same
HISTORY_ERROR_CHARS = 500  # an event's error text (the record's last_error keeps more)


class EventKind(StrEnum):
    """What one entry of a job's history records."""

    SUCCEEDED = "succeeded"  # an attempt whose handler returned
    RETRIED = "retried"  # an attempt that failed and is due again at next_run_at
    DEAD = "dead"  # an attempt that failed for good, or was the last one
    LEASE_EXPIRED = "lease_expired"  # an attempt whose processor stopped or ran out of time
    REPLAYED = "replayed"  # an operator queued the dead-lettered job again
    CANCELLED = "cancelled"  # an operator took the waiting job out of the queue
    RUN_NOW = "run_now"  # an operator made the waiting job due at once
    HELD = "held"  # an attempt met a 410: held with its partner's other webhooks


class JobEvent(BaseModel):
    """One entry of a job's history: an attempt (``attempt`` set) or an operator action
    (``actor`` set). Stored in the record header, oldest first, ``HISTORY_LIMIT`` kept."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    kind: EventKind
    at: datetime  # when the attempt ended, or the action happened
    attempt: int | None = None
    started_at: datetime | None = None
    processor: str | None = None  # the processor instance that ran the attempt
    error: str | None = None
    next_run_at: datetime | None = None  # when the job is due again after this event
    actor: str | None = None  # who acted (operator actions)
    # The replay request that queued the job again: a resent copy of that request finds it
    # here and does not replay the job a second time.
    request: str | None = None

    def to_data(self) -> dict[str, Any]:
        """The stored form: integer milliseconds, absent fields left out."""
        data: dict[str, Any] = {"kind": self.kind.value, "at": dt_to_ms(self.at)}
        for name in ("attempt", "processor", "error", "actor", "request"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        for name in ("started_at", "next_run_at"):
            value = getattr(self, name)
            if value is not None:
                data[name] = dt_to_ms(value)
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> JobEvent:
        return cls(
            kind=EventKind(data["kind"]),
            at=datetime.fromtimestamp(int(data["at"]) / 1000, tz=UTC),
            attempt=_opt_int(data.get("attempt")),
            started_at=ms_to_dt(_opt_int(data.get("started_at"))),
            processor=data.get("processor"),
            error=data.get("error"),
            next_run_at=ms_to_dt(_opt_int(data.get("next_run_at"))),
            actor=data.get("actor"),
            request=data.get("request"),
        )


def _history(raw: Any) -> tuple[JobEvent, ...]:
    # Lua's cjson writes an empty array as {}: anything but a list is no history.
    if not isinstance(raw, list):
        return ()
    return tuple(JobEvent.from_data(item) for item in raw if isinstance(item, dict))


class Job(BaseModel):
    """A job as the queue keeps it. ``payload`` is the validated payload as plain JSON data."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    type: JobType
    payload: dict[str, Any]
    state: JobState = JobState.QUEUED
    attempts: int = 0
    max_attempts: int = 3
    created_at: datetime
    next_run_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_error: str | None = None
    dedupe_key: str | None = None
    correlation_id: str | None = None
    history: tuple[JobEvent, ...] = ()  # attempts and operator actions, oldest first
    # The lease token whose settle wrote this record: lets a resent settle know it was applied.
    settled_by: str | None = Field(default=None, exclude=True)

    def typed_payload(self) -> p.Payload:
        """The payload as its job type's model (validated again: a record may predate a change)."""
        return PAYLOAD_MODELS[self.type].model_validate(self.payload)

    def to_record(self, *, payload_json: str | None = None) -> str:
        """The stored JSON form (see the module docstring). ``payload_json``: the payload's
        text as read from the record, written back as it was instead of encoded again."""
        return encode_record(
            id=self.id,
            type=self.type,
            state=self.state,
            attempts=self.attempts,
            max_attempts=self.max_attempts,
            created_ms=dt_to_ms(self.created_at),
            next_run_ms=dt_to_ms(self.next_run_at),
            started_ms=dt_to_ms(self.started_at),
            finished_ms=dt_to_ms(self.finished_at),
            last_error=self.last_error,
            dedupe_key=self.dedupe_key,
            correlation_id=self.correlation_id,
            settled_by=self.settled_by,
            history=self.history,
            payload_json=encode_payload(self.payload) if payload_json is None else payload_json,
        )

    def with_event(self, event: JobEvent, **update: Any) -> Job:
        """This job with ``event`` appended to its history (the oldest dropped past the
        limit) and ``update`` applied."""
        if event.error is not None and len(event.error) > HISTORY_ERROR_CHARS:
            event = event.model_copy(update={"error": event.error[:HISTORY_ERROR_CHARS]})
        history = (*self.history, event)[-HISTORY_LIMIT:]
        return self.model_copy(update={**update, "history": history})

    @classmethod
    def from_record(cls, raw: str, *, state: JobState | None = None) -> Job:
        header, _, payload_json = raw.partition("\n")
        data = json.loads(header)
        return cls(
            id=data["id"],
            type=JobType(data["type"]),
            payload=json.loads(payload_json),
            state=JobState(state or data["state"]),
            attempts=int(data["attempts"]),
            max_attempts=int(data["max_attempts"]),
            created_at=ms_to_dt(data["created_at"]),
            next_run_at=ms_to_dt(data["next_run_at"]),
            started_at=ms_to_dt(_opt_int(data.get("started_at"))),
            finished_at=ms_to_dt(_opt_int(data.get("finished_at"))),
            last_error=data.get("last_error"),
            dedupe_key=data.get("dedupe_key"),
            correlation_id=data.get("correlation_id"),
            settled_by=data.get("settled_by"),
            history=_history(data.get("history")),
        )


def encode_payload(payload: dict[str, Any]) -> str:
    """Canonical payload JSON (ASCII, so its length is its size in bytes)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def encode_record(
    *,
    id: str,
    type: JobType,
    state: JobState,
    attempts: int,
    max_attempts: int,
    created_ms: int | None,
    next_run_ms: int | None,
    payload_json: str,
    started_ms: int | None = None,
    finished_ms: int | None = None,
    last_error: str | None = None,
    dedupe_key: str | None = None,
    correlation_id: str | None = None,
    settled_by: str | None = None,
    history: tuple[JobEvent, ...] = (),
) -> str:
    """The one definition of the stored record; enqueue calls it without building a ``Job``.

    Written as a template (ids, types and states need no escaping; free text goes
    through ``json.dumps``): this runs once per enqueued job.
    """
    return (
        f'{{"id":"{id}","type":"{type.value}","state":"{state.value}",'
        f'"attempts":{attempts},"max_attempts":{max_attempts},'
        f'"created_at":{_num(created_ms)},"next_run_at":{_num(next_run_ms)},'
        f'"started_at":{_num(started_ms)},"finished_at":{_num(finished_ms)},'
        f'"last_error":{_text(last_error)},"dedupe_key":{_text(dedupe_key)},'
        f'"correlation_id":{_text(correlation_id)},"settled_by":{_text(settled_by)}'
        f"{_history_field(history)}}}\n{payload_json}"
    )


def _history_field(history: tuple[JobEvent, ...]) -> str:
    if not history:
        return ""  # enqueue writes none: the hot path stays as it was
    return ',"history":' + json.dumps([e.to_data() for e in history], separators=(",", ":"))


def _num(value: int | None) -> str:
    return "null" if value is None else str(int(value))


def _text(value: str | None) -> str:
    return "null" if value is None else json.dumps(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


class ClaimedJob(BaseModel):
    """A job leased to one processor. ``token`` fences every later call about it."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    job: Job
    token: str
    attempt: int  # this run's attempt number, starting at 1
    lease_deadline: datetime
    # The payload's text in the claimed record: the settle writes it back unchanged.
    payload_json: str | None = Field(default=None, repr=False)

    @property
    def id(self) -> str:
        return self.job.id


class TypeStats(BaseModel):
    model_config = ConfigDict(defer_build=True)

    ready: int = 0
    scheduled: int = 0
    running: int = 0
    oldest_ready_age_s: float = 0.0  # 0 when none of this type is ready
    paused_since: datetime | None = None  # set while the type is paused (not claimed)

    @property
    def paused(self) -> bool:
        return self.paused_since is not None


class QueueStats(BaseModel):
    """Depth per job type, the dead-letter size and the oldest ready job's age."""

    model_config = ConfigDict(defer_build=True)

    by_type: dict[JobType, TypeStats]
    dead_letter: int
    oldest_ready_age_s: float  # 0 when nothing is ready; paused types left out
    truncated: bool = False  # more entries than one stats scan reads: counts are lower bounds
    disabled_endpoints: int = 0  # partners whose webhook endpoint is disabled (a 410)

    @property
    def ready(self) -> int:
        return sum(s.ready for s in self.by_type.values())

    @property
    def scheduled(self) -> int:
        return sum(s.scheduled for s in self.by_type.values())

    @property
    def running(self) -> int:
        return sum(s.running for s in self.by_type.values())

    @property
    def paused_types(self) -> list[JobType]:
        return [t for t, s in sorted(self.by_type.items()) if s.paused]


class PartnerHealth(BaseModel):
    """A partner's webhook endpoint as the queue's gate sees it."""

    model_config = ConfigDict(defer_build=True)

    partner: str
    disabled: str | None = None  # why (e.g. "HTTP 410 Gone"), None when enabled
    disabled_at: datetime | None = None
    consecutive_failures: int = 0
    circuit_open_until: datetime | None = None  # None when the circuit is closed
    held: int = 0  # webhooks waiting for the partner, outside the timeline
    in_flight: int = 0

    @classmethod
    def from_reply(cls, r: list[Any]) -> PartnerHealth:
        """From ``list_partners.lua``'s seven values per partner."""
        return cls(
            partner=str(r[0]),
            disabled=str(r[1]) or None,
            disabled_at=ms_to_dt(int(r[2])) if str(r[2]) else None,
            consecutive_failures=int(r[3]),
            circuit_open_until=ms_to_dt(int(float(r[4]))) if float(r[4]) > 0 else None,
            held=int(r[5]),
            in_flight=int(r[6]),
        )


class EnqueueOptions(BaseModel):
    """Options of one enqueued job."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    dedupe_key: str | None = Field(
        default=None, min_length=1, max_length=256, pattern=r"^[^\s{}|]+$"
    )
    max_attempts: int | None = Field(default=None, ge=1, le=100)
    delay_s: float = Field(default=0.0, ge=0, le=30 * 86_400)
    correlation_id: str | None = Field(default=None, max_length=128)
