"""Stripe on the request path: PaymentIntents with manual capture, capture, cancel or refund.

Every money-moving call carries an idempotency key derived from the escrow and the
operation (``escrow-<id>-capture``, ``escrow-<id>-cancel``, ``escrow-<id>-refund``), so
a retried request, a takeover after a crash, or a worker job for the same escrow makes
Stripe act at most once. Stripe errors are translated once, here, into
``PaymentGatewayError``; the service answers 502 and leaves the escrow as it was.

The API key comes from ``STRIPE_API_KEY`` locally, or from Secrets Manager / SSM
(``STRIPE_API_KEY_REF``, read through Powertools parameters and cached) in AWS.
``stripe`` is imported here only, so nothing else pays for it at cold start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from jobs_core import AwsSecretResolver, logger

if TYPE_CHECKING:
    import stripe


SECRET_MAX_AGE_S = 300
WEBHOOK_TOLERANCE_S = 300


@dataclass(frozen=True, slots=True)
class PaymentIntentInfo:
    id: str
    client_secret: str | None  # what Stripe.js needs to confirm the payment
    status: str


@dataclass(frozen=True, slots=True)
class PaymentSnapshot:
    """A PaymentIntent and its latest charge as Stripe has them now (the truth for money)."""

    id: str
    status: str  # requires_payment_method ... requires_capture | succeeded | canceled
    amount: int
    currency: str  # upper case
    amount_capturable: int
    captured: int  # the charge's amount_captured
    refunded: int  # the charge's amount_refunded
    escrow_id: str | None  # metadata.escrow_id
    capture_before_ms: int | None = None  # payment_method_details.card.capture_before
    extended_authorization: bool | None = None
    cancellation_reason: str | None = None
    charge_id: str | None = None
    disputed: bool = False


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str
    object: Mapping[str, Any]  # event.data.object as plain JSON


class PaymentGatewayError(Exception):
    """Stripe failed or refused. ``message`` is safe to show to the client."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        idempotency_conflict: bool = False,
        in_progress: bool = False,
        intent_status: str | None = None,
    ) -> None:
        self.message = message
        self.intent_status = intent_status  # when known: the PaymentIntent's status now
        self.code = code
        self.request_id = request_id
        self.idempotency_conflict = idempotency_conflict
        self.in_progress = in_progress
        super().__init__(message)


class WebhookSignatureError(Exception):
    """The webhook is unsigned, wrongly signed, stale, or not a Stripe event."""


class PaymentGateway(Protocol):
    """What the escrow service needs from a payment provider."""

    def create_payment_intent(
        self,
        *,
        escrow_id: str,
        amount: int,
        currency: str,
        description: str | None,
        idempotency_key: str,
    ) -> PaymentIntentInfo: ...

    def capture(self, payment_intent_id: str, *, escrow_id: str) -> str:
        """Capture the held amount; returns the Stripe action taken (``captured``)."""
        ...

    def cancel_or_refund(self, payment_intent_id: str, *, escrow_id: str) -> str:
        """Give the buyer their money back: ``authorization_cancelled`` or ``refunded``."""
        ...

    def snapshot(self, payment_intent_id: str) -> PaymentSnapshot:
        """The intent and its latest charge, read from Stripe (one request)."""
        ...

    def construct_event(self, payload: bytes, signature: str | None) -> WebhookEvent: ...


def idempotency_key(escrow_id: str, operation: str) -> str:
    """The Stripe idempotency key of one operation on one escrow (stable across retries)."""
    return f"escrow-{escrow_id}-{operation}"


class StripeGateway:
    """``PaymentGateway`` on the official SDK's ``StripeClient``.

    >>> gateway = StripeGateway(lambda: "sk_test_...", lambda: "whsec_...",
    ...                         api_base="http://127.0.0.1:12111")
    >>> gateway.capture("pi_123", escrow_id="esc_1")  # doctest: +SKIP
    'captured'
    """

    def __init__(
        self,
        api_key: Callable[[], str],
        webhook_secret: Callable[[], str],
        *,
        api_base: str | None = None,
        timeout_s: float = 4.0,
        max_network_retries: int = 1,
    ) -> None:
        self._api_key = api_key
        self._webhook_secret = webhook_secret
        self._api_base = api_base
        self._timeout_s = timeout_s
        self._retries = max_network_retries
        self._lock = threading.Lock()
        self._client: stripe.StripeClient | None = None
        self._client_key: str | None = None

    # -- the client (rebuilt when the cached key rotates) ---------------------------------

    def _stripe(self) -> stripe.StripeClient:
        import stripe

        key = self._api_key()
        with self._lock:
            if self._client is None or key != self._client_key:
                self._client = stripe.StripeClient(
                    key,
                    base_addresses={"api": self._api_base} if self._api_base else None,
                    http_client=stripe.RequestsClient(timeout=(2.0, self._timeout_s)),
                    max_network_retries=self._retries,
                )
                self._client_key = key
            return self._client

    # -- operations -----------------------------------------------------------------------

    def create_payment_intent(
        self,
        *,
        escrow_id: str,
        amount: int,
        currency: str,
        description: str | None,
        idempotency_key: str,
    ) -> PaymentIntentInfo:
        params: dict[str, Any] = {
            "amount": amount,
            "currency": currency.lower(),
            "capture_method": "manual",
            "metadata": {"escrow_id": escrow_id},
            # A longer capture window (up to 30 days) on the cards whose issuer allows it.
            "payment_method_options": {"card": {"request_extended_authorization": "if_available"}},
        }
        if description:
            params["description"] = description
        with _translated("create the payment"):
            intent = self._stripe().v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        secret = getattr(intent, "client_secret", None)
        return PaymentIntentInfo(intent.id, secret, intent.status)

    def capture(self, payment_intent_id: str, *, escrow_id: str) -> str:
        client = self._stripe()
        key = idempotency_key(escrow_id, "capture")
        try:
            with _translated("capture the payment"):
                client.v1.payment_intents.capture(
                    payment_intent_id, options={"idempotency_key": key}
                )
        except PaymentGatewayError as exc:
            # Captured already (e.g. by an earlier attempt whose answer was lost)?
            if exc.code != "payment_intent_unexpected_state":
                raise
            status = self._status(payment_intent_id)
            if status == "succeeded":
                return "captured"
            exc.intent_status = status  # canceled: the authorisation expired
            raise
        return "captured"

    def cancel_or_refund(self, payment_intent_id: str, *, escrow_id: str) -> str:
        client = self._stripe()
        key = idempotency_key(escrow_id, "cancel")
        try:
            with _translated("cancel the payment"):
                client.v1.payment_intents.cancel(
                    payment_intent_id,
                    params={"cancellation_reason": "requested_by_customer"},
                    options={"idempotency_key": key},
                )
        except PaymentGatewayError as exc:
            if exc.code != "payment_intent_unexpected_state":
                raise
            status = self._status(payment_intent_id)
            if status == "canceled":
                return "authorization_cancelled"
            if status != "succeeded":
                raise
            # Captured already: the money left the buyer, so refund it, once: a refund made
            # for this operation (read back from Stripe) is never made again.
            operation = idempotency_key(escrow_id, "refund")
            with _translated("read the payment's refunds"):
                refunds = client.v1.refunds.list(
                    params={"payment_intent": payment_intent_id, "limit": 100}
                )
                for refund in refunds.auto_paging_iter():
                    metadata = refund.to_dict().get("metadata") or {}
                    if metadata.get("operation_id") == operation:
                        return "refunded"
            with _translated("refund the payment"):
                client.v1.refunds.create(
                    params={
                        "payment_intent": payment_intent_id,
                        "metadata": {"escrow_id": escrow_id, "operation_id": operation},
                    },
                    options={"idempotency_key": operation},
                )
            return "refunded"
        return "authorization_cancelled"

    def snapshot(self, payment_intent_id: str) -> PaymentSnapshot:
        with _translated("read the payment"):
            intent = self._stripe().v1.payment_intents.retrieve(
                payment_intent_id, params={"expand": ["latest_charge"]}
            )
        return snapshot_of(intent.to_dict())

    def _status(self, payment_intent_id: str) -> str:
        with _translated("read the payment"):
            return str(self._stripe().v1.payment_intents.retrieve(payment_intent_id).status)

    def construct_event(self, payload: bytes, signature: str | None) -> WebhookEvent:
        import stripe

        try:
            event = stripe.Webhook.construct_event(
                payload, signature, self._webhook_secret(), WEBHOOK_TOLERANCE_S
            )
        except stripe.SignatureVerificationError as exc:
            raise WebhookSignatureError(str(exc.user_message or "invalid signature")) from None
        except ValueError:
            raise WebhookSignatureError("the payload is not a Stripe event") from None
        data = event.to_dict()
        obj = (data.get("data") or {}).get("object") or {}
        return WebhookEvent(str(data.get("id", "")), str(data.get("type", "")), obj)


def snapshot_of(intent: Mapping[str, Any]) -> PaymentSnapshot:
    """``PaymentSnapshot`` of a PaymentIntent as JSON, ``latest_charge`` expanded."""
    charge = intent.get("latest_charge")
    charge = charge if isinstance(charge, Mapping) else {}
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    capture_before = card.get("capture_before")
    extended = (card.get("extended_authorization") or {}).get("status")
    metadata = intent.get("metadata") or {}
    return PaymentSnapshot(
        id=str(intent["id"]),
        status=str(intent.get("status")),
        amount=int(intent.get("amount") or 0),
        currency=str(intent.get("currency") or "").upper(),
        amount_capturable=int(intent.get("amount_capturable") or 0),
        captured=int(charge.get("amount_captured") or 0),
        refunded=int(charge.get("amount_refunded") or 0),
        escrow_id=metadata.get("escrow_id") if isinstance(metadata, Mapping) else None,
        capture_before_ms=int(capture_before) * 1000 if capture_before else None,
        extended_authorization=None if extended is None else extended == "enabled",
        cancellation_reason=intent.get("cancellation_reason"),
        charge_id=charge.get("id"),
        disputed=bool(charge.get("disputed")),
    )


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn any Stripe SDK error into ``PaymentGatewayError`` (once, at this boundary)."""
    import stripe

    try:
        yield
    except stripe.StripeError as exc:
        detail = exc.user_message or getattr(exc, "_message", None) or type(exc).__name__
        logger.warning(
            "stripe error",
            extra={
                "operation": what,
                "stripe_error": type(exc).__name__,
                "stripe_code": exc.code,
                "http_status": exc.http_status,
                "stripe_request_id": exc.request_id,
            },
        )
        in_progress = exc.http_status == 409 and exc.code == "idempotency_key_in_use"
        raise PaymentGatewayError(
            f"Stripe could not {what}: {detail}",
            code=exc.code,
            request_id=exc.request_id,
            idempotency_conflict=isinstance(exc, stripe.IdempotencyError) and not in_progress,
            in_progress=in_progress,
        ) from exc


# -- secrets -----------------------------------------------------------------------------


def secret_source(value: str | None, ref: str | None, name: str) -> Callable[[], str]:
    """A callable returning the secret: the literal value, or ``ref`` read from AWS (cached).

    ``ref`` is a Secrets Manager secret name or ARN (the default, as template.yaml
    grants), or an SSM SecureString parameter written ``ssm:<name>``, ``/path/name`` or
    ``arn:aws:ssm:...``. Powertools caches the value for five minutes.
    """
    if value:
        return lambda: value
    if not ref:

        def missing() -> str:
            from jobs_core import ConfigurationError

            raise ConfigurationError(f"{name} is not configured (set {name} or {name}_REF)")

        return missing

    resolver = AwsSecretResolver(max_age_s=SECRET_MAX_AGE_S)

    def fetch() -> str:
        return resolver.get(ref.removeprefix("secretsmanager:")).strip()

    return fetch
