"""The operator API's POST bodies, and their parsing into a 400 that names the field."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from jobs_core import JobType
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

JobId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class HttpError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        self.status, self.message, self.extra = status, message, extra
        super().__init__(message)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProcessBatchRequest(_Body):
    action: Literal["process-batch"]
    limit: int = Field(default=10, ge=1, le=100)
    types: list[JobType] | None = Field(default=None, min_length=1)


class _DeadLetterRequest(_Body):
    ids: list[JobId] | None = Field(default=None, min_length=1, max_length=1000)
    all: bool = Field(default=False, validate_default=True)
    limit: int = Field(default=100, ge=1, le=1000)

    @field_validator("all")
    @classmethod
    def _one_selector(cls, value: bool, info: ValidationInfo) -> bool:
        has_ids = info.data.get("ids") is not None
        if value == has_ids:
            raise ValueError("give either ids or all: true" + (", not both" if value else ""))
        return value


class ReplayDeadLetterRequest(_DeadLetterRequest):
    action: Literal["replay-dead-letter"]


class PurgeDeadLetterRequest(_DeadLetterRequest):
    action: Literal["purge-dead-letter"]


ProcessRequest = Annotated[
    ProcessBatchRequest | ReplayDeadLetterRequest | PurgeDeadLetterRequest,
    Field(discriminator="action"),
]
AnyRequest = ProcessBatchRequest | ReplayDeadLetterRequest | PurgeDeadLetterRequest
_REQUEST: TypeAdapter[AnyRequest] = TypeAdapter(ProcessRequest)


def parse_request(
    body: str | None,
) -> ProcessBatchRequest | ReplayDeadLetterRequest | PurgeDeadLetterRequest:
    """The POST body as a request model; ``HttpError(400)`` naming the field at fault."""
    try:
        data = json.loads(body or "")
    except ValueError:
        raise HttpError(400, "body: must be a JSON object", field="body") from None
    if not isinstance(data, dict):
        raise HttpError(400, "body: must be a JSON object", field="body")
    try:
        return _REQUEST.validate_python(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        loc = [str(part) for part in first["loc"]]
        if first["type"] in ("union_tag_not_found", "union_tag_invalid"):
            loc = ["action"]
        elif loc and loc[0] == data.get("action"):
            loc = loc[1:]  # drop the union tag pydantic puts first
        field = ".".join(loc) or "body"
        raise HttpError(400, f"{field}: {first['msg']}", field=field) from None
