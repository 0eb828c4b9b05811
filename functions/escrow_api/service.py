"""The escrow operations: validate, authorise, move the state, call Stripe, enqueue effects.

A money-moving action runs in three writes around one Stripe call::

    T1  escrow funded -> releasing (condition: state and version as read)
        + the Idempotency-Key record "in progress"                (one transaction)
    --  Stripe capture, idempotency key escrow-<id>-capture
    T2  escrow releasing -> released + history row + outbox entries
        + the Idempotency-Key record "completed" with the answer   (one transaction)
    --  enqueue every outbox entry: one Redis round trip; delete the entries

Exactly one of two concurrent requests passes T1, so Stripe is asked once. If Stripe
fails, the escrow item is put back as it was (and the idempotency record removed):
502, state unchanged, nothing left behind. If the process dies between Stripe and T2,
the escrow stays ``releasing``; after ``claim_timeout_s`` a retry of the same action
takes the claim over, and Stripe's idempotency key makes the repeated call a replay.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from base64 import b32encode
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jobs_core import EnqueueResult, JobQueue, logger
from pydantic import BaseModel

from . import auth
from .effects import side_effects
from .errors import (
    ApiError,
    BadRequestError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    InvalidStateError,
    NotFoundError,
    PaymentProviderError,
    RequestInProgressError,
)
from .models import (
    CreateEscrowRequest,
    DisputeRequest,
    Escrow,
    EscrowActionRequest,
    HistoryEntry,
    Party,
    RefundRequest,
    ReleaseRequest,
    ResolveRequest,
    escrow_view,
    history_view,
    parse_body,
)
from .outbox import OutboxEntry, dispatch
from .state import (
    TRANSITIONS,
    Action,
    EscrowState,
    IllegalTransitionError,
    Transition,
    plan,
)
from .store import (
    IDEMPOTENCY_TTL_S,
    EscrowStore,
    IdempotencyRecord,
    IdempotencyWrite,
    TransactionConflictError,
)
from .stripe_gateway import (
    PaymentGateway,
    PaymentGatewayError,
    WebhookSignatureError,
    idempotency_key,
)

IDEMPOTENCY_HEADER = "idempotency-key"
MAX_IDEMPOTENCY_KEY = 255
CLAIM_TIMEOUT_S = 60.0  # longer than any Stripe call may take (timeouts x retries)
MAX_WEBHOOK_BYTES = 256 * 1024  # Stripe's events, not our API's bodies

Kick = Callable[[EnqueueResult], object]


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """What the service needs from an HTTP request (header names lower-cased)."""

    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    claims: Mapping[str, Any] | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> str:
        return json.dumps(self.body, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Idem:
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


class EscrowService:
    """The escrow API's operations, independent of HTTP framing.

    >>> service = EscrowService(store, gateway, queue)                 # doctest: +SKIP
    >>> service.release(ApiRequest(body=b'{"escrowId": "esc_1"}', claims={"sub": "u1"}))
    ApiResponse(status=200, ...)                                       # doctest: +SKIP
    """

    def __init__(
        self,
        store: EscrowStore,
        gateway: PaymentGateway,
        queue: JobQueue,
        *,
        kick: Kick | None = None,
        clock: Callable[[], int] | None = None,
        allow_http_localhost: bool = False,
        claim_timeout_s: float = CLAIM_TIMEOUT_S,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.queue = queue
        self.kick = kick
        self._clock = clock or (lambda: time.time_ns() // 1_000_000)
        self.allow_http_localhost = allow_http_localhost
        self.claim_timeout_s = claim_timeout_s

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> EscrowService:
        """The service as the Lambda runs it, configured by ``environ`` (see config.py)."""
        from jobs_core import Settings

        from .config import ApiConfig
        from .stripe_gateway import StripeGateway, secret_source

        config = ApiConfig.from_env(environ)
        gateway = StripeGateway(
            secret_source(config.stripe_api_key, config.stripe_api_key_ref, "STRIPE_API_KEY"),
            secret_source(
                config.stripe_webhook_secret,
                config.stripe_webhook_secret_ref,
                "STRIPE_WEBHOOK_SECRET",
            ),
            api_base=config.stripe_api_base,
            timeout_s=config.stripe_timeout_s,
        )
        return cls(
            EscrowStore.create(config.table_name),
            gateway,
            # Settings.from_env also reads the Upstash token from UPSTASH_TOKEN_PARAM in AWS.
            JobQueue.from_settings(Settings.from_env(environ)),
            kick=processor_kicker(environ),
            allow_http_localhost=config.local_mode,
        )

    # -- routes ---------------------------------------------------------------------------

    def create(self, req: ApiRequest) -> ApiResponse:
        caller = auth.caller_from_claims(req.claims)
        body = parse_body(
            req.body,
            CreateEscrowRequest,
            context={"allow_http_localhost": self.allow_http_localhost},
        )
        if caller.sub not in (body.buyer.id, body.seller.id) and not caller.is_admin:
            raise ForbiddenError(
                "you can only create an escrow in which you are the buyer or the seller",
                field="buyer.id",
            )
        idem = self._idem(caller, req, "create", body)
        if idem is not None:
            replay = self._replay(self.store.get_idempotency(idem.scope), idem)
            if replay is not None:
                return replay
            escrow_id = _escrow_id_from(idem.scope)  # a retried create names the same escrow
        else:
            escrow_id = _new_escrow_id()
        try:
            intent = self.gateway.create_payment_intent(
                escrow_id=escrow_id,
                amount=body.amount,
                currency=body.currency,
                description=body.description,
                idempotency_key=idempotency_key(escrow_id, "create"),
            )
        except PaymentGatewayError as exc:
            raise _gateway_error(exc, "no escrow was created") from None
        now = self._clock()
        escrow = Escrow(
            escrow_id=escrow_id,
            state=EscrowState.PENDING,
            version=1,
            amount=body.amount,
            currency=body.currency,
            buyer=Party(body.buyer.id, str(body.buyer.email), body.buyer.name),
            seller=Party(body.seller.id, str(body.seller.email), body.seller.name),
            payment_intent_id=intent.id,
            created_by=caller.sub,
            created_ms=now,
            updated_ms=now,
            description=body.description,
            webhook_url=body.webhook_url,
            webhook_secret_ref=body.webhook_secret_ref,
        )
        history = HistoryEntry(
            escrow_id, 1, Action.CREATE, None, EscrowState.PENDING, caller.sub, now, req.request_id
        )
        outbox = side_effects(
            Action.CREATE, None, escrow, actor=caller.sub, now_ms=now, request_id=req.request_id
        )
        response = ApiResponse(
            201,
            {
                "escrow": escrow_view(escrow),
                "paymentIntentId": intent.id,
                "clientSecret": intent.client_secret,
            },
        )
        try:
            self.store.write(
                escrow,
                expected=None,
                history=history,
                outbox=outbox,
                idem=self._completed(idem, now, response),
                now_ms=now,
            )
        except TransactionConflictError as exc:
            if idem is not None and "idem" in exc.failed:
                return self._replay_after_race(idem)
            # The key's record expired but its escrow exists: the key was used long ago.
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was already used", field="Idempotency-Key"
            ) from None
        self._dispatch(outbox)
        logger.info("escrow created", extra={"escrow_id": escrow_id, "amount": body.amount})
        return response

    def release(self, req: ApiRequest) -> ApiResponse:
        return self._act(req, ReleaseRequest, "release", lambda _: Action.RELEASE)

    def refund(self, req: ApiRequest) -> ApiResponse:
        return self._act(req, RefundRequest, "refund", lambda _: Action.REFUND)

    def dispute(self, req: ApiRequest) -> ApiResponse:
        return self._act(req, DisputeRequest, "dispute", lambda _: Action.DISPUTE)

    def resolve(self, req: ApiRequest) -> ApiResponse:
        def action(body: EscrowActionRequest) -> Action:
            assert isinstance(body, ResolveRequest)
            return Action.RESOLVE_RELEASE if body.outcome == "released" else Action.RESOLVE_REFUND

        return self._act(req, ResolveRequest, "resolve", action)

    def get(self, req: ApiRequest, escrow_id: str) -> ApiResponse:
        caller = auth.caller_from_claims(req.claims)
        found = self.store.get_escrow_with_history(escrow_id) if _plausible_id(escrow_id) else None
        if found is None:
            raise NotFoundError(f"escrow {escrow_id} not found", field="escrowId")
        escrow, history = found
        auth.authorize_view(caller, escrow)
        return ApiResponse(
            200, {"escrow": escrow_view(escrow), "history": [history_view(h) for h in history]}
        )

    def stripe_webhook(self, req: ApiRequest) -> ApiResponse:
        """Apply Stripe's events; 400 for a bad signature, 200 for everything else."""
        if len(req.body) > MAX_WEBHOOK_BYTES:
            raise BadRequestError("the event is too large", field="body")
        try:
            event = self.gateway.construct_event(req.body, req.headers.get("stripe-signature"))
        except WebhookSignatureError as exc:
            raise BadRequestError(f"webhook rejected: {exc}", field="Stripe-Signature") from None
        actions = {
            "payment_intent.amount_capturable_updated": Action.FUND,
            "payment_intent.canceled": Action.CANCEL,
        }
        action = actions.get(event.type)
        if action is None:
            return _webhook_ack(event.id, ignored="event type not handled")
        metadata = event.object.get("metadata") or {}
        escrow_id = metadata.get("escrow_id") if isinstance(metadata, Mapping) else None
        if not isinstance(escrow_id, str) or not _plausible_id(escrow_id):
            return _webhook_ack(event.id, ignored="not an escrow payment")
        escrow = self.store.get_escrow(escrow_id)
        if escrow is None or escrow.payment_intent_id != event.object.get("id"):
            logger.warning("stripe event for an unknown escrow", extra={"event_id": event.id})
            return _webhook_ack(event.id, ignored="unknown escrow")
        if action is Action.FUND and not _covers(event.object, escrow):
            logger.error("authorised amount differs from the escrow", extra={"event": event.id})
            return _webhook_ack(event.id, ignored="amount or currency mismatch")
        try:
            transition = plan(action, escrow.state)
        except IllegalTransitionError:
            return _webhook_ack(event.id, ignored=f"escrow is {escrow.state}")
        now = self._clock()
        new = escrow.evolve(state=transition.target, version=escrow.version + 1, updated_ms=now)
        outbox = side_effects(
            action, escrow.state, new, actor="stripe", now_ms=now, request_id=event.id
        )
        try:
            self.store.write(
                new,
                expected=escrow,
                history=HistoryEntry(
                    escrow_id, new.version, action, escrow.state, new.state, "stripe", now, event.id
                ),
                outbox=outbox,
                stripe_event=(event.id, event.type),
                now_ms=now,
            )
        except TransactionConflictError as exc:
            return _webhook_ack(
                event.id,
                ignored="duplicate event" if "event" in exc.failed else "escrow changed meanwhile",
            )
        self._dispatch(outbox)
        return ApiResponse(
            200,
            {"received": True, "eventId": event.id, "escrowId": escrow_id, "state": new.state},
        )

    # -- transitions ----------------------------------------------------------------------

    def _act(
        self,
        req: ApiRequest,
        model: type[EscrowActionRequest],
        route: str,
        action_of: Callable[[EscrowActionRequest], Action],
    ) -> ApiResponse:
        caller = auth.caller_from_claims(req.claims)
        body = parse_body(req.body, model)
        action = action_of(body)
        idem = self._idem(caller, req, route, body)
        escrow, record = self.store.load(body.escrow_id, idem.scope if idem else None)
        if idem is not None:
            replay = self._replay(record, idem)
            if replay is not None:
                return replay
        if escrow is None:
            raise NotFoundError(f"escrow {body.escrow_id} not found", field="escrowId")
        auth.authorize_action(caller, escrow, action)
        note = getattr(body, "reason", None) or getattr(body, "note", None)
        transition = TRANSITIONS[action]
        if transition.stripe_op is None:
            return self._move(req, caller.sub, escrow, transition, idem, note)
        return self._move_with_stripe(req, caller.sub, escrow, transition, idem, note)

    def _move(
        self,
        req: ApiRequest,
        actor: str,
        escrow: Escrow,
        transition: Transition,
        idem: _Idem | None,
        note: str | None,
    ) -> ApiResponse:
        """A transition without Stripe: one transaction."""
        _check(transition, escrow)
        now = self._clock()
        new = escrow.evolve(
            state=transition.target,
            version=escrow.version + 1,
            updated_ms=now,
            **_notes(transition.action, note),
        )
        outbox = side_effects(
            transition.action, escrow.state, new,
            actor=actor, now_ms=now, request_id=req.request_id, reason=note,
        )  # fmt: skip
        response = ApiResponse(200, {"escrow": escrow_view(new)})
        try:
            self.store.write(
                new,
                expected=escrow,
                history=self._history(new, transition, escrow.state, actor, now, req, note),
                outbox=outbox,
                idem=self._completed(idem, now, response),
                now_ms=now,
            )
        except TransactionConflictError as exc:
            return self._after_conflict(exc, idem, escrow.escrow_id)
        self._dispatch(outbox)
        return response

    def _move_with_stripe(
        self,
        req: ApiRequest,
        actor: str,
        escrow: Escrow,
        transition: Transition,
        idem: _Idem | None,
        note: str | None,
    ) -> ApiResponse:
        """Claim (T1), Stripe, then the final transition (T2); put back on Stripe failure."""
        assert transition.via is not None and transition.stripe_op is not None
        now = self._clock()
        if escrow.state in transition.sources:
            source = escrow.state
            restore = escrow  # a Stripe failure puts this very item back
        elif self._abandoned_claim(escrow, transition, now):
            assert escrow.pending_from is not None
            source = escrow.pending_from
            restore = escrow.evolve(
                state=source, pending_action=None, pending_from=None, pending_since_ms=None
            )
            logger.warning("taking over an abandoned claim", extra={"escrow_id": escrow.escrow_id})
        else:
            raise _illegal(transition.action, escrow.state)
        claimed = escrow.evolve(
            state=transition.via,
            version=escrow.version + 1,
            updated_ms=now,
            pending_action=transition.action,
            pending_from=source,
            pending_since_ms=now,
        )
        lock = (
            None
            if idem is None
            else IdempotencyWrite(idem.record(now, lock_s=self.claim_timeout_s))
        )
        try:
            self.store.write(claimed, expected=escrow, idem=lock, now_ms=now)  # T1
        except TransactionConflictError as exc:
            return self._after_conflict(exc, idem, escrow.escrow_id)

        try:
            if transition.target is EscrowState.RELEASED:
                stripe_action = self.gateway.capture(
                    escrow.payment_intent_id, escrow_id=escrow.escrow_id
                )
            else:
                stripe_action = self.gateway.cancel_or_refund(
                    escrow.payment_intent_id, escrow_id=escrow.escrow_id
                )
        except PaymentGatewayError as exc:
            if restore is not escrow:
                restore = restore.evolve(version=claimed.version + 1, updated_ms=self._clock())
            try:
                self.store.write(
                    restore, expected=claimed, idem_delete=idem.scope if idem else None
                )
            except TransactionConflictError:
                logger.warning("claim lost while Stripe failed", extra={"escrow": escrow.escrow_id})
            raise _gateway_error(exc, f"the escrow is unchanged ({source})", source) from None

        done = self._clock()
        final = claimed.evolve(
            state=transition.target,
            version=claimed.version + 1,
            updated_ms=done,
            pending_action=None,
            pending_from=None,
            pending_since_ms=None,
            stripe_action=stripe_action,
            **_notes(transition.action, note),
        )
        history = self._history(
            final, transition, source, actor, done, req, note, stripe_action=stripe_action
        )
        outbox = side_effects(
            transition.action, source, final,
            actor=actor, now_ms=done, request_id=req.request_id, reason=note,
        )  # fmt: skip
        response = ApiResponse(200, {"escrow": escrow_view(final)})
        finish = None
        if idem is not None:
            finish = IdempotencyWrite(
                idem.record(done, lock_s=0, response=response), take=False, owner_token=idem.token
            )
        try:
            self.store.write(  # T2
                final, expected=claimed, history=history, outbox=outbox, idem=finish, now_ms=done
            )
        except TransactionConflictError as exc:
            # Taken over after our claim timed out; the new holder finishes the transition.
            return self._after_conflict(exc, idem, escrow.escrow_id)
        self._dispatch(outbox)
        logger.info(
            "escrow moved",
            extra={"escrow_id": escrow.escrow_id, "to": final.state, "stripe": stripe_action},
        )
        return response

    def _abandoned_claim(self, escrow: Escrow, transition: Transition, now_ms: int) -> bool:
        return (
            escrow.state == transition.via
            and escrow.pending_action == transition.action
            and escrow.pending_from is not None
            and (escrow.pending_since_ms or 0) + self.claim_timeout_s * 1000 <= now_ms
        )

    def _history(
        self,
        new: Escrow,
        transition: Transition,
        source: EscrowState,
        actor: str,
        now_ms: int,
        req: ApiRequest,
        note: str | None,
        *,
        stripe_action: str | None = None,
    ) -> HistoryEntry:
        return HistoryEntry(
            escrow_id=new.escrow_id,
            version=new.version,
            action=transition.action,
            from_state=source,
            to_state=new.state,
            actor=actor,
            at_ms=now_ms,
            request_id=req.request_id,
            reason=note,
            stripe_action=stripe_action,
        )

    def _after_conflict(
        self, exc: TransactionConflictError, idem: _Idem | None, escrow_id: str
    ) -> ApiResponse:
        if idem is not None and "idem" in exc.failed:
            return self._replay_after_race(idem)
        current = self.store.get_escrow(escrow_id)
        state = current.state if current else "unknown"
        raise InvalidStateError(
            f"the escrow changed meanwhile; it is now {state}", current_state=str(state)
        )

    # -- idempotency ----------------------------------------------------------------------

    def _idem(
        self, caller: auth.Caller, req: ApiRequest, route: str, body: BaseModel
    ) -> _Idem | None:
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
        return _Idem(scope, request_hash, secrets.token_hex(16))

    def _replay(self, record: IdempotencyRecord | None, idem: _Idem) -> ApiResponse | None:
        """The stored answer for a retried request; 422 if the key was used differently."""
        if record is None or not record.is_live(self._clock()):
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

    def _replay_after_race(self, idem: _Idem) -> ApiResponse:
        replay = self._replay(self.store.get_idempotency(idem.scope), idem)
        if replay is None:
            raise RequestInProgressError(
                "a request with this Idempotency-Key is in progress; retry shortly",
                field="Idempotency-Key",
            )
        return replay

    def _completed(
        self, idem: _Idem | None, now_ms: int, response: ApiResponse
    ) -> IdempotencyWrite | None:
        if idem is None:
            return None
        return IdempotencyWrite(idem.record(now_ms, lock_s=0, response=response))

    # -- effects --------------------------------------------------------------------------

    def _dispatch(self, outbox: list[OutboxEntry]) -> None:
        result = dispatch(outbox, self.store, self.queue)
        if result is not None and not result.processor_active and self.kick is not None:
            try:
                self.kick(result)
            except Exception:  # best effort: the processor's schedule drains the queue anyway
                logger.warning("could not kick the processor", exc_info=True)


# -- helpers ------------------------------------------------------------------------------


def processor_kicker(environ: Mapping[str, str]) -> Kick | None:
    """``jobs_core.kick``'s kicker (invokes the processor when none is draining), or None
    when kicking is off (outside Lambda unless ``JOBS_KICK_ENABLED``)."""
    from jobs_core import Kicker

    kicker = Kicker.from_environ(environ)
    return kicker.kick if kicker.active else None


def _check(transition: Transition, escrow: Escrow) -> None:
    if escrow.state not in transition.sources:
        raise _illegal(transition.action, escrow.state)


def _illegal(action: Action, current: EscrowState) -> InvalidStateError:
    verb = action.value.replace("_", " ")
    return InvalidStateError(
        f"cannot {verb} an escrow that is {current}", current_state=current.value
    )


def _notes(action: Action, note: str | None) -> dict[str, Any]:
    if action is Action.DISPUTE:
        return {"dispute_reason": note}
    if action in (Action.RESOLVE_RELEASE, Action.RESOLVE_REFUND) and note:
        return {"resolution_note": note}
    return {}


def _gateway_error(
    exc: PaymentGatewayError, outcome: str, state: EscrowState | None = None
) -> ApiError:
    if exc.idempotency_conflict:
        return IdempotencyKeyReusedError(
            "this Idempotency-Key was used with a different request", field="Idempotency-Key"
        )
    if exc.in_progress:
        return RequestInProgressError("the same request is in progress; retry shortly")
    extra = {"currentState": state.value} if state else None
    return PaymentProviderError(f"{exc.message}; {outcome}", extra=extra)


def _webhook_ack(event_id: str, *, ignored: str) -> ApiResponse:
    return ApiResponse(200, {"received": True, "eventId": event_id, "ignored": ignored})


def _covers(intent: Mapping[str, Any], escrow: Escrow) -> bool:
    capturable = intent.get("amount_capturable")
    currency = str(intent.get("currency") or "").upper()
    amount_ok = capturable is None or int(capturable) >= escrow.amount
    return amount_ok and (not currency or currency == escrow.currency)


def _plausible_id(escrow_id: str) -> bool:
    return 0 < len(escrow_id) <= 64 and all(c.isalnum() or c in "_-" for c in escrow_id)


def _new_escrow_id() -> str:
    from ulid import ULID

    return f"esc_{ULID()}"


def _escrow_id_from(scope: str) -> str:
    digest = hashlib.sha256(f"escrow-id\n{scope}".encode()).digest()
    return "esc_" + b32encode(digest).decode()[:26]
