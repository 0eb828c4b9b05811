"""The escrow operations: validate, authorise, move the state, call Stripe, enqueue effects.

Each route is a method here; the parts it leans on live beside it: ``idempotency``
(Idempotency-Key records and replays), ``transitions`` (moving an existing escrow, the
money-moving ones around one Stripe call), ``history`` (the audit rows, and the
escrow shown with them) and ``dispatch`` (enqueueing the outbox after a commit).
Creating an escrow and applying Stripe's webhook events are here.
"""

from __future__ import annotations

import hashlib
import time
from base64 import b32encode
from collections.abc import Callable, Mapping, Sequence

from jobs_core import JobQueue, Resolver, annotate_escrow, logger

from . import auth, history, idempotency, stripe_events, transitions
from .dispatch import Kick, after_commit, processor_kicker
from .effects import Notices, side_effects
from .errors import BadRequestError, ForbiddenError, IdempotencyKeyReusedError
from .messages import ApiRequest, ApiResponse
from .models import (
    CreateEscrowRequest,
    DisputeRequest,
    Escrow,
    EscrowActionRequest,
    Party,
    RefundRequest,
    ReleaseRequest,
    ResolveRequest,
    escrow_view,
    parse_body,
)
from .outbox import OutboxEntry
from .state import Action, EscrowState
from .store import EscrowStore, TransactionConflictError
from .stripe_gateway import (
    PaymentGateway,
    PaymentGatewayError,
    WebhookSignatureError,
    idempotency_key,
)
from .transitions import gateway_error

CLAIM_TIMEOUT_S = 60.0  # longer than any Stripe call may take (timeouts x retries)
MAX_WEBHOOK_BYTES = 256 * 1024  # Stripe's events, not our API's bodies


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
        roles_claim: str = auth.DEFAULT_ROLES_CLAIM,
        webhook_resolver: Resolver | None = None,
        notices: Notices | None = None,
    ) -> None:
        self.store = store
        self.gateway = gateway
        self.queue = queue
        self.kick = kick
        self._clock = clock or (lambda: time.time_ns() // 1_000_000)
        self.allow_http_localhost = allow_http_localhost
        self.claim_timeout_s = claim_timeout_s
        self.roles_claim = roles_claim
        # Resolves a partner's webhook host at registration (the system resolver by default).
        self.webhook_resolver = webhook_resolver
        self.notices = notices or Notices()  # the admin's address, the reminder's lead time

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
            roles_claim=config.roles_claim,
            notices=Notices(
                admin_email=config.admin_email,
                warn_before_ms=int(config.authorization_warning_s * 1000),
            ),
        )

    def now_ms(self) -> int:
        return self._clock()

    def dispatch(self, outbox: Sequence[OutboxEntry]) -> None:
        """Enqueue a committed change's outbox entries (never raises for Redis trouble)."""
        after_commit(outbox, self.store, self.queue, self.kick)

    # -- routes ---------------------------------------------------------------------------

    def create(self, req: ApiRequest) -> ApiResponse:
        caller = auth.caller_from_claims(req.claims, roles_claim=self.roles_claim)
        body = parse_body(
            req.body,
            CreateEscrowRequest,
            context={
                "allow_http_localhost": self.allow_http_localhost,
                "webhook_resolver": self.webhook_resolver,
            },
        )
        if caller.sub not in (body.buyer.id, body.seller.id) and not caller.is_admin:
            raise ForbiddenError(
                "you can only create an escrow in which you are the buyer or the seller",
                field="buyer.id",
            )
        idem = idempotency.key_of(caller, req, "create", body)
        if idem is not None:
            replay = idempotency.replay(self.store.get_idempotency(idem.scope), idem, self.now_ms)
            if replay is not None:
                return replay
            escrow_id = _escrow_id_from(idem.scope)  # a retried create names the same escrow
        else:
            escrow_id = _new_escrow_id()
        annotate_escrow(escrow_id)
        try:
            intent = self.gateway.create_payment_intent(
                escrow_id=escrow_id,
                amount=body.amount,
                currency=body.currency,
                description=body.description,
                idempotency_key=idempotency_key(escrow_id, "create"),
            )
        except PaymentGatewayError as exc:
            raise gateway_error(exc, "no escrow was created") from None
        now = self.now_ms()
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
        row = history.row(escrow, Action.CREATE, None, caller.sub, now, req.request_id)
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
                history=row,
                outbox=outbox,
                idem=idempotency.completed(idem, now, response),
                now_ms=now,
            )
        except TransactionConflictError as exc:
            if idem is not None and "idem" in exc.failed:
                return idempotency.replay_after_race(self.store, idem, self.now_ms)
            # The key's record expired but its escrow exists: the key was used long ago.
            raise IdempotencyKeyReusedError(
                "this Idempotency-Key was already used", field="Idempotency-Key"
            ) from None
        self.dispatch(outbox)
        logger.info("escrow created", extra={"escrow_id": escrow_id, "amount": body.amount})
        return response

    def release(self, req: ApiRequest) -> ApiResponse:
        return transitions.act(self, req, ReleaseRequest, "release", lambda _: Action.RELEASE)

    def refund(self, req: ApiRequest) -> ApiResponse:
        return transitions.act(self, req, RefundRequest, "refund", lambda _: Action.REFUND)

    def dispute(self, req: ApiRequest) -> ApiResponse:
        return transitions.act(self, req, DisputeRequest, "dispute", lambda _: Action.DISPUTE)

    def resolve(self, req: ApiRequest) -> ApiResponse:
        def action(body: EscrowActionRequest) -> Action:
            assert isinstance(body, ResolveRequest)
            return Action.RESOLVE_RELEASE if body.outcome == "released" else Action.RESOLVE_REFUND

        return transitions.act(self, req, ResolveRequest, "resolve", action)

    def get(self, req: ApiRequest, escrow_id: str) -> ApiResponse:
        return history.show(
            self.store, auth.caller_from_claims(req.claims, roles_claim=self.roles_claim), escrow_id
        )

    def stripe_webhook(self, req: ApiRequest) -> ApiResponse:
        """Apply Stripe's events; 400 for a bad signature, 200 for everything else."""
        if len(req.body) > MAX_WEBHOOK_BYTES:
            raise BadRequestError("the event is too large", field="body")
        try:
            event = self.gateway.construct_event(req.body, req.headers.get("stripe-signature"))
        except WebhookSignatureError as exc:
            raise BadRequestError(f"webhook rejected: {exc}", field="Stripe-Signature") from None
        return stripe_events.apply_event(self, event)


# -- helpers ------------------------------------------------------------------------------


def _new_escrow_id() -> str:
    from ulid import ULID

    return f"esc_{ULID()}"


def _escrow_id_from(scope: str) -> str:
    digest = hashlib.sha256(f"escrow-id\n{scope}".encode()).digest()
    return "esc_" + b32encode(digest).decode()[:26]
