"""Claim hints: the records a kick carries, so the drain it starts leases them unread.

An enqueue that finds no processor draining kicks one (``processor.kick``), and the kick
carries what that enqueue queued: each job's timeline member, the score the enqueue gave
it (``keys.enqueued_score``) and its record. The kicked drain's first claim sends member
and score; a job the claim finds exactly so (no claim, requeue or operator has moved it
since: those write whole-millisecond scores) is leased without its record being read,
which saves a lone job the claim's MGET. Any other job is read as usual, so a kick that
arrives late, or twice, is harmless: a job is leased once, by the claim that finds it.

A hint is trusted as the queue is: only the escrow API may send a kick (the stack's
``KickTheProcessor`` grant; the processor's own fan-out carries none), and the API may
write any job anyway.

Only jobs without personal data are carried. An email job's record holds addresses, and
an invoke payload sits in Lambda's event queue (up to the processor's five-minute event
age), outside the stores we redact and expire; those jobs cost the one read more.
Records are carried up to ``MAX_HINT_BYTES`` in all (an async invoke takes 256 KB).
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

from ..logging import logger
from ..models import PAYLOAD_MODELS, JobType
from .keys import enqueued_score
from .specs import NewJob

MAX_HINT_BYTES = 64_000
MAX_HINTS = 100


class ClaimHint(BaseModel):
    """A queued job whose record the claimer holds: as the enqueue wrote it."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    member: str = Field(pattern=r"^[a-z_]{1,64}\|[0-9a-f-]{1,64}$")  # '<type>|<id>'
    score: str = Field(pattern=r"^[0-9]{1,16}\.75$")  # keys.enqueued_score
    record: str = Field(min_length=2, max_length=MAX_HINT_BYTES)


def _mentions_email(annotation: Any) -> bool:
    if annotation is EmailStr:
        return True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return any(_mentions_email(f.annotation) for f in annotation.model_fields.values())
    return any(_mentions_email(arg) for arg in typing.get_args(annotation))


@cache
def carries_personal_data(job_type: JobType) -> bool:
    """Whether ``job_type``'s payload holds an email address (anywhere in its model)."""
    return _mentions_email(PAYLOAD_MODELS[job_type])


def hints_for(jobs: Iterable[NewJob]) -> list[ClaimHint]:
    """The hints a kick carries for ``jobs`` (the ones an enqueue wrote)."""
    hints: list[ClaimHint] = []
    size = 0
    for job in jobs:
        if carries_personal_data(job.type):
            continue
        size += len(job.record)
        if size > MAX_HINT_BYTES or len(hints) >= MAX_HINTS:
            break
        member = f"{job.type.value}|{job.id}"
        hints.append(ClaimHint(member=member, score=enqueued_score(job.due_ms), record=job.record))
    return hints


def parse_hints(raw: object) -> list[ClaimHint]:
    """The hints of a kick event; none (and a warning) if they are malformed: a drain
    without hints only reads the records."""
    if not raw:
        return []
    if not isinstance(raw, Sequence) or isinstance(raw, str) or len(raw) > MAX_HINTS:
        logger.warning("ignoring a kick's malformed hints")
        return []
    try:
        return [ClaimHint.model_validate(item) for item in raw]
    except ValidationError as exc:
        logger.warning("ignoring a kick's malformed hints", extra={"errors": exc.error_count()})
        return []
