"""The operator API's POST bodies, and their parsing into a 400 that names the field."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, TypeVar

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
# Who asks, as the audit records it (the console asks the operator's name at sign-in).
Actor = Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[^\x00-\x1f\x7f]+$")]
EscrowId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
DEFAULT_ACTOR = "operator-api"


class HttpError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        self.status, self.message, self.extra = status, message, extra
        super().__init__(message)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


_Q = TypeVar("_Q", bound=_Body)


class ProcessBatchRequest(_Body):
    action: Literal["process-batch"]
    limit: int = Field(default=10, ge=1, le=100)
    types: list[JobType] | None = Field(default=None, min_length=1)


class _DeadLetterRequest(_Body):
    actor: Actor = DEFAULT_ACTOR
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


class _OnJob(_Body):
    id: JobId
    actor: Actor = DEFAULT_ACTOR


class _OnType(_Body):
    type: JobType
    actor: Actor = DEFAULT_ACTOR


class CancelJobRequest(_OnJob):
    action: Literal["cancel-job"]


class RunJobNowRequest(_OnJob):
    action: Literal["run-job-now"]


class PauseTypeRequest(_OnType):
    action: Literal["pause-type"]


class ResumeTypeRequest(_OnType):
    action: Literal["resume-type"]


class EnablePartnerRequest(_Body):
    """Re-enable a partner's webhook endpoint (disabled by a 410): its held webhooks go."""

    action: Literal["enable-partner"]
    partner: str = Field(min_length=1, max_length=256, pattern=r"^[^\t\r\n]+$")
    actor: Actor = DEFAULT_ACTOR


AnyRequest = (
    ProcessBatchRequest
    | ReplayDeadLetterRequest
    | PurgeDeadLetterRequest
    | CancelJobRequest
    | RunJobNowRequest
    | PauseTypeRequest
    | ResumeTypeRequest
    | EnablePartnerRequest
)
ProcessRequest = Annotated[AnyRequest, Field(discriminator="action")]
# built on the first request it validates, not at import (a scheduled drain validates none)
_REQUEST: TypeAdapter[AnyRequest] = TypeAdapter(ProcessRequest, config=ConfigDict(defer_build=True))


class JobsQuery(_Body):
    """``GET /api/jobs``: one page of a state, or the jobs of one escrow."""

    state: Literal["ready", "scheduled", "running", "dead"] = "ready"
    type: JobType | None = None
    order: Literal["oldest", "newest"] = "oldest"
    offset: int = Field(default=0, ge=0, le=100_000)
    limit: int = Field(default=50, ge=1, le=200)
    escrowId: EscrowId | None = None


class JobQuery(_Body):
    """``GET /api/jobs/{jobId}``: ``showPii=true`` shows email addresses whole."""

    showPii: bool = False


def parse_query(model: type[_Q], params: dict[str, str] | None) -> _Q:
    """Query parameters as ``model``; ``HttpError(400)`` naming the parameter at fault."""
    try:
        return model.model_validate(params or {})
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "query"
        raise HttpError(400, f"{field}: {first['msg']}", field=field) from None


def parse_request(body: str | None) -> AnyRequest:
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
