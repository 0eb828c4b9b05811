"""The gateway's local-only routes: what AWS and Stripe do outside the API, by hand.

- ``POST /_local/stripe/pay`` ``{"escrowId": ...}`` or ``{"paymentIntentId": ...}``:
  the buyer pays: the intent is authorised at the local Stripe server, and a signed
  ``payment_intent.amount_capturable_updated`` event is posted to ``/api/stripe/webhook``;
- ``POST|GET /_local/partner/webhooks``: a demo partner endpoint that verifies each
  delivery with the demo secret (``webhookSecretRef: "demo-partner"``) and lists them;
- ``GET /_local/health``;
- ``GET /api/jobs/history`` (the console's chart): in AWS the processor reads CloudWatch;
  here the stack answers from the drains it saw (in memory), behind the operator token.
"""

from __future__ import annotations

import hmac
import threading
from typing import TYPE_CHECKING, Any

from .config import DEMO_PARTNER_REF
from .emf import say
from .http_gateway import LocalHandler, LocalRequest
from .stripe_server import PAYMENT_AUTHORIZED, PaymentSimulationError, signed_event, stripe_event

if TYPE_CHECKING:
    from .stack import LocalStack


class LocalRoutes:
    """The handlers, reading the stack's servers and secrets when a request comes."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.partner_deliveries: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def handlers(self) -> dict[tuple[str, str], LocalHandler]:
        return {
            ("GET", "/_local/health"): self.health,
            ("POST", "/_local/stripe/pay"): self.pay,
            ("POST", "/_local/partner/webhooks"): self.partner_receive,
            ("GET", "/_local/partner/webhooks"): self.partner_list,
            ("GET", "/api/jobs/history"): self.throughput,
        }

    def throughput(self, request: LocalRequest) -> tuple[int, Any]:
        stack = self.stack
        expected = stack.secret_values.get(stack.environ.get("JOB_PROCESSOR_TOKEN_PARAM", ""))
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if (
            not expected
            or scheme.lower() != "bearer"
            or not hmac.compare_digest(presented.strip().encode(), expected.encode())
        ):
            return 401, {"error": "a valid bearer token is required"}
        namespace = stack.environ.get("JOBS_NAMESPACE", "escrow-jobs")
        return 200, stack.functions.throughput.last_hour(namespace)

    def health(self, _: LocalRequest) -> tuple[int, Any]:
        return 200, {"status": "ok", "backend": self.stack.backend}

    def pay(self, request: LocalRequest) -> tuple[int, Any]:
        """The buyer pays: authorise the intent, then Stripe's signed event to the API."""
        import httpx

        stack = self.stack
        try:
            body = request.json()
        except ValueError:
            return 400, {"error": "the body must be JSON"}
        if not isinstance(body, dict):
            return 400, {"error": "the body must be a JSON object"}
        assert stack.stripe is not None and stack.gateway is not None
        intent_id = body.get("paymentIntentId")
        if not intent_id and body.get("escrowId"):
            intent_id = stack.stripe.find_intent(str(body["escrowId"]))
        if not intent_id:
            return 404, {"error": "give escrowId or paymentIntentId of an existing payment"}
        try:
            intent = stack.stripe.authorize(str(intent_id))
        except PaymentSimulationError as exc:
            return 409, {"error": str(exc)}
        secret = stack.secret_values[stack.environ["STRIPE_WEBHOOK_SECRET_REF"]]
        payload, headers = signed_event(stripe_event(PAYMENT_AUTHORIZED, intent), secret)
        response = httpx.post(
            f"{stack.gateway.url}/api/stripe/webhook", content=payload, headers=headers, timeout=30
        )
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        return 200, {
            "paymentIntent": {k: intent.get(k) for k in ("id", "status", "amount", "currency")},
            "webhook": {"status": response.status_code, "response": answer},
        }

    def partner_receive(self, request: LocalRequest) -> tuple[int, Any]:
        from standardwebhooks import Webhook

        stack = self.stack
        prefix = stack.environ.get("WEBHOOK_SECRET_PREFIX", "")
        secret = stack.secret_values[prefix + DEMO_PARTNER_REF]
        try:
            payload = Webhook(secret).verify(request.body, dict(request.headers))
        except Exception as exc:
            return 401, {"error": f"signature rejected: {type(exc).__name__}"}
        with self._lock:
            self.partner_deliveries.append(
                {"webhookId": request.headers.get("webhook-id"), "payload": payload}
            )
        say(f"demo partner: received webhook {request.headers.get('webhook-id')}")
        return 200, {"received": True}

    def partner_list(self, _: LocalRequest) -> tuple[int, Any]:
        with self._lock:
            return 200, {"deliveries": list(self.partner_deliveries)}
