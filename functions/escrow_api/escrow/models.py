"""Request bodies (pydantic, strict about what they accept), the escrow domain record, views.

Request fields are snake_case and also accept camelCase (the original TypeScript API's
spelling); escrow ids are also accepted as ``transactionId``, the job payloads' name.
Unknown fields are refused with 400 naming the field: a typo must not pass silently.
Responses are camelCase JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from jobs_core import JobsCoreError, Resolver, system_resolver
from jobs_core import check_webhook_url as guard_webhook_url
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from .body import load_json
from .errors import BadRequestError, PayloadTooLargeError
from .state import Action, EscrowState

MAX_BODY_BYTES = 16 * 1024
CLOSED_CHARGEBACK = frozenset({"won", "lost", "warning_closed", "prevented"})

# ISO 4217 codes accepted for escrows (all settle through Stripe).
CURRENCIES = frozenset(
    {
        "USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "SEK", "NOK", "DKK",
        "PLN", "CZK", "HUF", "RON", "BGN", "JPY", "SGD", "HKD", "MXN", "BRL",
        "INR", "ZAR", "AED", "ILS", "THB", "MYR", "PHP", "IDR", "KRW", "TWD",
    }
)  # fmt: skip
# Stripe's limit for most currencies is 8 digits of minor units.
MAX_AMOUNT = 99_999_999

EscrowId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
]
UserId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@|+-]+$")
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


def plausible_escrow_id(escrow_id: str) -> bool:
    """Worth a table read: a cheap look at an id from a path or a Stripe event's metadata."""
    return 0 < len(escrow_id) <= 64 and all(c.isalnum() or c in "_-" for c in escrow_id)


ESCROW_ID_ALIASES = AliasChoices("escrowId", "escrow_id", "transactionId", "transaction_id")


class Body(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class PartyIn(Body):
    id: UserId
    email: EmailStr
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class CreateEscrowRequest(Body):
    amount: Annotated[int, Field(strict=True, gt=0, le=MAX_AMOUNT)]
    currency: Annotated[str, StringConstraints(to_upper=True, pattern=r"^[A-Za-z]{3}$")]
    buyer: PartyIn
    seller: PartyIn
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = (
        None
    )
    webhook_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    webhook_secret_ref: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = (
        None
    )

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if value not in CURRENCIES:
            raise ValueError(f"unknown currency {value!r}")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        context = info.context or {}
        check_webhook_url(
            value,
            allow_local_http=bool(context.get("allow_http_localhost")),
            resolver=context.get("webhook_resolver"),
        )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> CreateEscrowRequest:
        if self.buyer.id == self.seller.id:
            raise ValueError("seller.id: the buyer and the seller must differ")
        if (self.webhook_url is None) != (self.webhook_secret_ref is None):
            missing = "webhookSecretRef" if self.webhook_secret_ref is None else "webhookUrl"
            raise ValueError(f"{missing}: webhookUrl and webhookSecretRef go together")
        return self


def check_webhook_url(
    value: str, *, allow_local_http: bool = False, resolver: Resolver | None = None
) -> None:
    """Refuse every URL the delivery guard would refuse: the same code (``jobs_core``'s
    ``check_webhook_url``), so nothing is accepted here that could never be delivered.

    https only (http and loopback in local mode); IP literals in any notation and names
    resolving (through ``resolver``, the system's by default) to loopback, private,
    link-local, CGNAT, multicast, reserved or metadata addresses are refused.
    """
    try:
        guard_webhook_url(value, allow_local=allow_local_http, resolver=resolver or system_resolver)
    except JobsCoreError as exc:
        raise ValueError(str(exc).replace("webhook URL", "webhookUrl", 1)) from None


class EscrowActionRequest(Body):
    escrow_id: EscrowId = Field(validation_alias=ESCROW_ID_ALIASES)


class ReleaseRequest(EscrowActionRequest):
    pass


class RefundRequest(EscrowActionRequest):
    reason: Text | None = None


class DisputeRequest(EscrowActionRequest):
    reason: Text | None = None


class ResolveRequest(EscrowActionRequest):
    outcome: Literal["released", "refunded"]
    note: Text | None = None


B = TypeVar("B", bound=BaseModel)


def parse_body(raw: bytes, model: type[B], *, context: dict[str, Any] | None = None) -> B:
    """Size check, bounded JSON decode and validation; ``BadRequestError`` names the field."""
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"the body is {len(raw)} bytes; the limit is {MAX_BODY_BYTES}", field="body"
        )
    data = load_json(raw)  # bounded: depth and number size (body.py)
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object", field="body")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise _bad_request(exc) from None


def _bad_request(exc: ValidationError) -> BadRequestError:
    first = exc.errors(include_url=False, include_input=False)[0]
    loc = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    # Model-level checks name their field as "field: message".
    if not loc and ": " in message:
        loc, message = message.split(": ", 1)
    return BadRequestError(f"{loc or 'body'}: {message}", field=loc or "body")


# -- the domain record -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Escrow:
    """One escrow as stored; ``version`` grows by one with every write."""

    escrow_id: str
    state: EscrowState
    version: int
    amount: int
    currency: str
    buyer: Party
    seller: Party
    payment_intent_id: str
    created_by: str
    created_ms: int
    updated_ms: int
    description: str | None = None
    webhook_url: str | None = None
    webhook_secret_ref: str | None = None
    # Set while a Stripe call is in flight (state releasing/refunding).
    pending_action: Action | None = None
    pending_from: EscrowState | None = None
    pending_since_ms: int | None = None
    stripe_action: str | None = None  # captured | authorization_cancelled | refunded
    dispute_reason: str | None = None
    resolution_note: str | None = None
    # Money as Stripe reports it: captured and refunded so far (refunded <= captured).
    captured_amount: int = 0
    refunded_amount: int = 0
    capture_before_ms: int | None = None  # Stripe's capture deadline of the authorisation
    extended_authorization: bool | None = None
    chargeback_id: str | None = None  # a chargeback (Stripe dispute) on the charge
    chargeback_status: str | None = None  # needs_response ... won | lost
    chargeback_amount: int | None = None

    @property
    def chargeback_open(self) -> bool:
        return self.chargeback_id is not None and self.chargeback_status not in CLOSED_CHARGEBACK

    def evolve(self, **changes: Any) -> Escrow:
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    escrow_id: str
    version: int
    action: Action
    from_state: EscrowState | None
    to_state: EscrowState
    actor: str
    at_ms: int
    request_id: str | None = None
    reason: str | None = None
    stripe_action: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


# -- views -------------------------------------------------------------------------------


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def escrow_view(escrow: Escrow) -> dict[str, Any]:
    """The escrow as clients see it (camelCase; the secret reference is not shown)."""
    view: dict[str, Any] = {
        "id": escrow.escrow_id,
        "state": escrow.state.value,
        "amount": escrow.amount,
        "currency": escrow.currency,
        "buyer": _party_view(escrow.buyer),
        "seller": _party_view(escrow.seller),
        "paymentIntentId": escrow.payment_intent_id,
        "version": escrow.version,
        "createdAt": iso(escrow.created_ms),
        "updatedAt": iso(escrow.updated_ms),
    }
    optional = {
        "description": escrow.description,
        "webhookUrl": escrow.webhook_url,
        "stripeAction": escrow.stripe_action,
        "disputeReason": escrow.dispute_reason,
        "resolutionNote": escrow.resolution_note,
        "captureBefore": iso(escrow.capture_before_ms) if escrow.capture_before_ms else None,
        "extendedAuthorization": escrow.extended_authorization,
    }
    view.update({k: v for k, v in optional.items() if v is not None})
    view["capturedAmount"] = escrow.captured_amount
    view["refundedAmount"] = escrow.refunded_amount
    if escrow.chargeback_id:
        view["chargeback"] = {
            "id": escrow.chargeback_id,
            "status": escrow.chargeback_status,
            "amount": escrow.chargeback_amount,
        }
    return view


def _party_view(party: Party) -> dict[str, Any]:
    out: dict[str, Any] = {"id": party.id, "email": party.email}
    if party.name:
        out["name"] = party.name
    return out


def history_view(entry: HistoryEntry) -> dict[str, Any]:
    view: dict[str, Any] = {
        "version": entry.version,
        "action": entry.action.value,
        "from": entry.from_state.value if entry.from_state else None,
        "to": entry.to_state.value,
        "actor": entry.actor,
        "at": iso(entry.at_ms),
    }
    if entry.reason:
        view["reason"] = entry.reason
    if entry.stripe_action:
        view["stripeAction"] = entry.stripe_action
    return view
