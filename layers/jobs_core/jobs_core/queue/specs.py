"""What goes into the queue and what comes out of it: job specs, validated and encoded
for the enqueue script, the enqueue result, and the outcomes a settle records.

Pure: no I/O. ``JobQueue`` builds every job here before its one enqueue call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeAlias

from pydantic import BaseModel, ValidationError

from ..config import Settings
from ..errors import PayloadTooLargeError, PayloadValidationError, UnknownJobTypeError
from ..ids import dedupe_job_id, new_job_id
from ..models import (
    PAYLOAD_MODELS,
    ClaimedJob,
    EnqueueOptions,
    JobState,
    JobType,
    encode_record,
)

if TYPE_CHECKING:
    from ..payloads import Payload

MAX_ERROR_CHARS = 2000

# Strings: the payload models are imported on first use, not to spell these aliases.
PayloadInput: TypeAlias = "Mapping[str, Any] | Payload"
JobSpec: TypeAlias = (
    "tuple[JobType | str, PayloadInput]"
    " | tuple[JobType | str, PayloadInput, EnqueueOptions | Mapping[str, Any] | None]"
)


class NewJob(NamedTuple):
    """A validated job, encoded for the enqueue script. (A tuple: built once per enqueued
    job, it costs half of what a frozen dataclass does.)"""

    id: str
    type: JobType
    due_ms: int
    dedupe_key: str | None
    record: str
    route: str = ""  # the partner gate's entry ('' for jobs outside it)


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    ids: list[str]  # one per spec (a job with a dedupe key has the id derived from it)
    processor_active: bool  # a processor held its marker (only read when asked)
    # One per spec: True where its dedupe key's job existed already, so nothing was written.
    duplicates: list[bool] = field(default_factory=list)
    jobs: Sequence[NewJob] = ()  # one per spec, as built (written or not: see duplicates)

    @property
    def queued(self) -> list[NewJob]:
        """The jobs this request wrote (a kick carries them to the processor: hints.py)."""
        return [job for job, dup in zip(self.jobs, self.duplicates, strict=False) if not dup]


@dataclass(frozen=True, slots=True)
class ClaimResult:
    """What one claim took, and what its script saw of the rest of the timeline."""

    jobs: list[ClaimedJob]
    now_ms: int  # the queue clock the claim was sent with
    next_due_ms: int | None = None  # the next unclaimed job's due time; None: nothing else
    out_of_memory: bool = False  # Redis refused a write for memory (the claim still ran)
    reaped: int = 0  # expired leases made due again or dead-lettered
    dead_lettered: int = 0  # of those, out of attempts

    def due_in_s(self) -> float | None:
        """Seconds from the claim until the next job is due (0: due now); None if none is."""
        if self.next_due_ms is None:
            return None
        return max(0.0, (self.next_due_ms - self.now_ms) / 1000)


OutcomeKind = Literal["done", "retry", "dead", "release", "hold"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed job; ``settle`` records many in one call."""

    claimed: ClaimedJob
    kind: OutcomeKind
    error: str | None = None
    delay_s: float | None = None  # retry only: overrides the backoff
    started_ms: int | None = None


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]


def build_job(spec: JobSpec, now_ms: int, settings: Settings) -> NewJob:
    """Validate one spec and encode its record: nothing is written, so one bad spec
    can refuse a whole batch before the enqueue script runs."""
    job_type, payload = spec[0], spec[1]
    options = _options(spec[2] if len(spec) == 3 else None)
    jtype = _JOB_TYPES.get(job_type) if isinstance(job_type, str) else None
    if jtype is None:
        raise UnknownJobTypeError(f"unknown job type {job_type!r}", field="type")
    payload_json = _payload_json(jtype, payload)
    if len(payload_json) > settings.max_payload_bytes:
        raise PayloadTooLargeError(
            f"payload is {len(payload_json)} bytes; the limit is {settings.max_payload_bytes}",
            field="payload",
        )
    due = now_ms + int(options.delay_s * 1000)
    key = options.dedupe_key
    job_id = new_job_id(now_ms) if key is None else dedupe_job_id(key)
    record = encode_record(
        id=job_id,
        type=jtype,
        state=JobState.SCHEDULED if due > now_ms else JobState.QUEUED,
        attempts=0,
        max_attempts=options.max_attempts or settings.retry_policy(jtype.value).max_attempts,
        created_ms=now_ms,
        next_run_ms=due,
        payload_json=payload_json,
        dedupe_key=options.dedupe_key,
        correlation_id=options.correlation_id,
    )
    return NewJob(job_id, jtype, due, options.dedupe_key, record, route_of(jtype, payload_json))


# A member hashes as its value: one dict read finds the type from either.
_JOB_TYPES: dict[str, JobType] = {t.value: t for t in JobType}

# Job types held by the partner gate: one partner webhook each. (``notify_dispute_resolved``
# also emails both parties: it is not held back by a partner's endpoint.)
GATED_TYPES: frozenset[JobType] = frozenset({JobType.WEBHOOK_ESCROW_STATUS_CHANGED})
GATED_ARG = "|" + "|".join(sorted(t.value for t in GATED_TYPES)) + "|"


def partner_of(payload: Mapping[str, Any]) -> str:
    """A partner is named by its webhook secret reference (one secret per partner)."""
    return str(payload.get("webhook_secret_ref") or "")


def route_of(job_type: JobType, payload_json: str) -> str:
    """``<partner>\t<escrow>\t<version>\t`` for a gated job, else ``''``. Without an escrow
    version the job is not ordered behind its escrow's earlier statuses."""
    if job_type not in GATED_TYPES:
        return ""
    payload = json.loads(payload_json)
    partner = partner_of(payload)
    if any(c in partner for c in "\t\n\r"):
        raise PayloadValidationError(
            "webhook_secret_ref must not hold control characters", field="payload.webhookSecretRef"
        )
    version = payload.get("escrow_version")
    escrow = str(payload["transaction_id"]) if version is not None else ""
    return f"{partner}\t{escrow}\t{'' if version is None else int(version)}\t"


@cache
def _no_options() -> EnqueueOptions:
    return EnqueueOptions()  # on first use: the model is built then (defer_build)


def _options(raw: EnqueueOptions | Mapping[str, Any] | None) -> EnqueueOptions:
    if isinstance(raw, EnqueueOptions):
        return raw
    if not raw:
        return _no_options()
    values = {k: v for k, v in (raw or {}).items() if v is not None}
    try:
        return EnqueueOptions.model_validate(values)
    except ValidationError as exc:
        raise _validation_error(exc, "options") from None


def _payload_json(job_type: JobType, payload: PayloadInput) -> str:
    """Validate against the type's model; return canonical JSON (pydantic's Rust encoder)."""
    model = PAYLOAD_MODELS[job_type]
    is_dict = type(payload) is dict  # the usual case, and cheaper to tell than the ABCs
    if not is_dict and isinstance(payload, BaseModel):
        if not isinstance(payload, model):
            raise PayloadValidationError(
                f"{job_type.value} takes a {model.__name__}, not {type(payload).__name__}",
                field="payload",
            )
        validated = payload
    elif is_dict or isinstance(payload, Mapping):
        try:
            validated = model.model_validate(payload)
        except ValidationError as exc:
            raise _validation_error(exc, "payload") from None
    else:
        raise PayloadValidationError("payload must be a JSON object", field="payload")
    return validated.model_dump_json(exclude_none=True)


def _validation_error(exc: ValidationError, root: str) -> PayloadValidationError:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    field = ".".join([root, *(str(part) for part in first["loc"])])
    return PayloadValidationError(
        f"{field}: {first['msg']}", field=field, errors=[dict(e) for e in errors]
    )
