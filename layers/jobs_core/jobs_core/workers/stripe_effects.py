"""Stripe capture and refund, each at most once per escrow, with the official SDK.

Every request carries an ``Idempotency-Key`` derived from the escrow and the
operation (``escrow-<id>-capture``, ``escrow-<id>-refund``): the same on every
SDK retry, job retry and redelivery, so Stripe performs the operation once and
answers a repeat with the first response.

Stripe forgets idempotency keys after 24 hours. A redelivery later than that
reaches the API as a new request, so the key alone cannot stop a second refund.
A refund therefore reads Stripe's refunds of the PaymentIntent first and looks
for its own ``operation_id`` in their metadata: found, it moves no money. A
capture recognises an intent that is already captured. Both are success rather
than a trip to the dead-letter queue.

Errors: rate limits, connection errors, 409 conflicts and 5xx are
``RetryableJobError``; card errors, invalid requests, authentication and
idempotency-key misuse are ``PermanentJobError``, with Stripe's message and
request id in the text.

Example::

    effects = StripeEffects(lambda: stripe.StripeClient("sk_test_..."))
    effects.capture(job)   # job of type stripe_capture_payment
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import PermanentJobError, RetryableJobError
from ..models import Job
from ..payloads import StripeCapturePayload, StripeRefundPayload
from .httputil import parse_retry_after

if TYPE_CHECKING:
    import stripe

__all__ = [
    "StripeEffects",
    "build_stripe_client",
    "idempotency_key",
    "stripe_error",
]

log = logging.getLogger(__name__)

# Stripe's limit on a metadata value.
_METADATA_MAX = 500


def idempotency_key(escrow_id: str, operation: str) -> str:
    """``escrow-<id>-<operation>``: one key per escrow and operation, stable forever."""
    return f"escrow-{escrow_id}-{operation}"


def stripe_error(operation: str, exc: Exception) -> RetryableJobError | PermanentJobError:
    """Map an SDK exception to the handler error it means."""
    import stripe

    if not isinstance(exc, stripe.StripeError):
        return RetryableJobError(f"stripe {operation}: {type(exc).__name__}")
    error_type = getattr(exc.error, "type", None) if exc.error is not None else None
    code = exc.code or (getattr(exc.error, "code", None) if exc.error is not None else None)
    text = (
        f"stripe {operation} failed: {exc.user_message or type(exc).__name__}"
        f" (type {error_type or type(exc).__name__}, code {code or '-'},"
        f" HTTP {exc.http_status or '-'}, request id {exc.request_id or '-'})"
    )
    if isinstance(exc, stripe.RateLimitError):
        return RetryableJobError(
            text, delay_s=parse_retry_after((exc.headers or {}).get("retry-after"))
        )
    if isinstance(exc, stripe.APIConnectionError):
        return RetryableJobError(text)
    if isinstance(exc, stripe.IdempotencyError):
        return PermanentJobError(text)
    if isinstance(exc, stripe.CardError | stripe.InvalidRequestError):
        return PermanentJobError(text)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return PermanentJobError(text)
    status = exc.http_status or 0
    if status >= 500 or status in (0, 409):
        return RetryableJobError(text)
    return PermanentJobError(text)


class StripeEffects:
    """The two Stripe operations the queue performs. Thread-safe (the SDK client is)."""

    def __init__(self, client: Callable[[], stripe.StripeClient]) -> None:
        self._client = client

    def capture(self, job: Job) -> None:
        """Capture ``amount`` of the authorised PaymentIntent of the escrow."""
        import stripe

        payload = job.typed_payload()
        assert isinstance(payload, StripeCapturePayload)
        key = idempotency_key(payload.transaction_id, "capture")
        client = self._client()
        try:
            intent = client.v1.payment_intents.capture(
                payload.payment_intent_id,
                {
                    "amount_to_capture": payload.amount,
                    "metadata": {"escrow_id": payload.transaction_id, "job_id": job.id},
                },
                {"idempotency_key": key},
            )
        except stripe.InvalidRequestError as exc:
            if exc.code == "payment_intent_unexpected_state" and self._already_captured(
                client, payload.payment_intent_id
            ):
                log.info(
                    "payment intent %s of escrow %s was already captured",
                    payload.payment_intent_id, payload.transaction_id,
                )  # fmt: skip
                return
            raise stripe_error("capture", exc) from exc
        except Exception as exc:
            raise stripe_error("capture", exc) from exc
        log.info(
            "captured %s of payment intent %s for escrow %s (status %s, key %s)",
            payload.amount, intent.id, payload.transaction_id, intent.status, key,
        )  # fmt: skip

    def _already_captured(self, client: stripe.StripeClient, intent_id: str) -> bool:
        try:
            intent = client.v1.payment_intents.retrieve(intent_id)
        except Exception as exc:
            raise stripe_error("capture (checking state)", exc) from exc
        return intent.status == "succeeded"

    def awaiting_capture(self, intent_id: str) -> bool:
        """Whether the PaymentIntent still holds an uncaptured authorisation."""
        try:
            intent = self._client().v1.payment_intents.retrieve(intent_id)
        except Exception as exc:
            raise stripe_error("read the payment", exc) from exc
        return bool(intent.status == "requires_capture")

    def refund(self, job: Job) -> None:
        """Refund the PaymentIntent of the escrow (all of it, or ``amount``), once.

        Stripe's refunds of the intent are read first: one whose metadata carries this
        job's ``operation_id`` means the refund was made (by an earlier delivery, maybe
        days ago, after Stripe forgot the idempotency key), and nothing is sent.
        """
        import stripe

        payload = job.typed_payload()
        assert isinstance(payload, StripeRefundPayload)
        operation = payload.operation_id or job.id
        client = self._client()
        earlier = self._refund_made(client, payload.payment_intent_id, operation)
        if earlier is not None:
            log.info(
                "refund %s (operation %s) of escrow %s was made already; nothing sent",
                earlier, operation, payload.transaction_id,
            )  # fmt: skip
            return
        key = idempotency_key(payload.transaction_id, f"refund-{operation}")
        metadata = {
            "escrow_id": payload.transaction_id,
            "job_id": job.id,
            "operation_id": operation,
        }
        params: dict[str, Any] = {"payment_intent": payload.payment_intent_id, "metadata": metadata}
        if payload.amount is not None:
            params["amount"] = payload.amount
        if payload.reason:
            # Stripe's ``reason`` is an enum; our free-text reason goes into metadata.
            metadata["reason"] = payload.reason[:_METADATA_MAX]
        try:
            refund = client.v1.refunds.create(params, {"idempotency_key": key})  # type: ignore[arg-type]
        except stripe.InvalidRequestError as exc:
            if exc.code == "charge_already_refunded" and payload.amount is None:
                log.info(
                    "payment intent %s of escrow %s was already refunded in full",
                    payload.payment_intent_id, payload.transaction_id,
                )  # fmt: skip
                return
            if exc.code == "charge_disputed":
                raise PermanentJobError(
                    f"escrow {payload.transaction_id} is frozen by a chargeback: no refund"
                ) from exc
            raise stripe_error("refund", exc) from exc
        except Exception as exc:
            raise stripe_error("refund", exc) from exc
        log.info(
            "refund %s of %s for escrow %s (status %s, operation %s)",
            refund.id, refund.amount, payload.transaction_id, refund.status, operation,
        )  # fmt: skip

    @staticmethod
    def _refund_made(client: stripe.StripeClient, intent_id: str, operation: str) -> str | None:
        """The id of the intent's live refund made for ``operation``, if any."""
        try:
            refunds = client.v1.refunds.list({"payment_intent": intent_id, "limit": 100})
            for refund in refunds.auto_paging_iter():
                metadata = refund.to_dict().get("metadata") or {}
                mine = metadata.get("operation_id") == operation
                if mine and refund.status not in ("failed", "canceled"):
                    return str(refund.id)
        except Exception as exc:
            raise stripe_error("refund (reading the intent's refunds)", exc) from exc
        return None


def build_stripe_client(
    api_key: str,
    *,
    api_base: str | None = None,
    max_network_retries: int = 1,
    timeout: httpx.Timeout | None = None,
) -> stripe.StripeClient:
    """A ``StripeClient`` on our httpx transport (timeouts bounded, no env proxies).

    ``api_base`` points the SDK at another server (the local Stripe stand-in):
    it becomes the SDK's ``base_addresses["api"]``.
    """
    import stripe

    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base.rstrip("/")} if api_base else None,
        max_network_retries=max_network_retries,
        http_client=_httpx_stripe_client(timeout or httpx.Timeout(20.0, connect=5.0)),
    )


def _httpx_stripe_client(timeout: httpx.Timeout) -> Any:
    """A ``stripe.HTTPClient`` over a sync ``httpx.Client``.

    The SDK's own ``HTTPXClient`` posts its form body as ``data=<str>``, which
    httpx deprecates (one warning per request), and builds an async client too.
    """
    import stripe

    class HttpxStripeClient(stripe.HTTPClient):
        name = "httpx"

        def __init__(self) -> None:
            super().__init__()
            self._http = httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False)

        def request(
            self,
            method: str,
            url: str,
            headers: Mapping[str, str] | None,
            post_data: Any = None,
            *,
            _usage: list[str] | None = None,
        ) -> tuple[Any, int, Mapping[str, str]]:
            content = post_data.encode() if isinstance(post_data, str) else post_data
            try:
                response = self._http.request(method, url, headers=headers, content=content)
            except httpx.HTTPError as exc:
                raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                    f"error communicating with Stripe: {type(exc).__name__}", should_retry=True
                ) from exc
            return response.content, response.status_code, response.headers

        def request_stream(
            self,
            method: str,
            url: str,
            headers: Mapping[str, str] | None,
            post_data: Any = None,
            *,
            _usage: list[str] | None = None,
        ) -> tuple[Any, int, Mapping[str, str]]:
            content, status, response_headers = self.request(method, url, headers, post_data)
            return iter([content]), status, response_headers

        def close(self) -> None:
            self._http.close()

    return HttpxStripeClient()
