"""One handler per job type: parse the payload, perform the effect once, classify errors.

``build_handlers(deps)`` returns ``{JobType: handler}``; a handler takes a
``Job`` and returns nothing, or raises ``RetryableJobError`` (optionally with a
delay) or ``PermanentJobError``; any other exception is a bug or an outage the
processor treats as retryable. Handlers are thread-safe and build nothing until
called.

Effect identities (what "once" is counted on):

==============================  ===========================================================
emails                           ledger entry ``<job id>/email/<recipient|buyer|seller|admin>``
``stripe_capture_payment``       Stripe ``Idempotency-Key`` ``escrow-<escrow id>-capture``
``stripe_refund_payment``        the refund's ``operation_id`` in its metadata, read back
                                 from Stripe before acting; ``Idempotency-Key``
                                 ``escrow-<escrow id>-refund-<operation id>``
webhooks                         ledger entry ``<job id>/webhook``, ``webhook-id`` ``msg_<job id>``
``audit_log_created``            the audit row's key (escrow id, job id), written conditionally
==============================  ===========================================================

Jobs with several effects (the dispute emails to both parties; the dispute
resolution's two emails and webhook) attempt every effect, each once, and then
report: the job is retried while any effect failed retryably, and a retry
performs only the effects not yet recorded.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from ..errors import ConfigurationError, PermanentJobError, RetryableJobError
from ..models import Job, JobType
from ..payloads import (
    AuditLogPayload,
    DisputeEmailPayload,
    DisputeResolvedPayload,
    EscrowStatusChangedPayload,
    Payload,
    PaymentConfirmedEmailPayload,
    PaymentNoticePayload,
    RefundEmailPayload,
    ReleaseEmailPayload,
)
from ..secret_refs import SecretUnavailableError
from . import email_templates as templates
from .audit import audit_row
from .deps import WorkerDeps
from .effects import run_once
from .email import OutgoingEmail, send_email_once
from .email_templates import Party, RenderedEmail
from .stripe_effects import StripeEffects

__all__ = ["Handler", "build_handlers", "webhook_message_id"]

log = logging.getLogger(__name__)

Handler = Callable[[Job], None]
P = TypeVar("P", bound=Payload)


def webhook_message_id(job: Job) -> str:
    """The ``webhook-id`` of a job's webhook: the same on every retry and redelivery."""
    return f"msg_{job.id}"


def _payload(job: Job, model: type[P]) -> P:
    try:
        payload = job.typed_payload()
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors()) or "payload"
        raise PermanentJobError(f"invalid {job.type} payload: {fields}") from None
    if not isinstance(payload, model):
        raise PermanentJobError(f"job {job.id} of type {job.type} has a {type(payload).__name__}")
    return payload


def _classified(handler: Handler) -> Handler:
    """Turn configuration and secret-store errors into the handler errors they mean."""

    def run(job: Job) -> None:
        try:
            handler(job)
        except (RetryableJobError, PermanentJobError):
            raise
        except SecretUnavailableError as exc:
            raise RetryableJobError(str(exc)) from exc
        except ConfigurationError as exc:
            raise PermanentJobError(f"configuration: {exc}") from exc

    run.__name__ = run.__qualname__ = getattr(handler, "__name__", "handler")
    return run


def _all_of(effects: list[tuple[str, Callable[[], object]]]) -> None:
    """Run every effect; then raise if any failed (retryable wins over permanent)."""
    retryable: list[RetryableJobError] = []
    failures: list[str] = []
    unexpected: BaseException | None = None
    for name, effect in effects:
        try:
            effect()
        except RetryableJobError as exc:
            retryable.append(exc)
            failures.append(f"{name}: {exc}")
        except (PermanentJobError, ConfigurationError) as exc:
            failures.append(f"{name}: {exc}")
        except SecretUnavailableError as exc:
            retryable.append(RetryableJobError(str(exc)))
            failures.append(f"{name}: {exc}")
        except Exception as exc:
            unexpected = unexpected or exc
            failures.append(f"{name}: {type(exc).__name__}")
    if unexpected is not None:
        raise unexpected
    if retryable:
        delays = [e.delay_s for e in retryable if e.delay_s is not None]
        raise RetryableJobError("; ".join(failures), delay_s=max(delays) if delays else None)
    if failures:
        raise PermanentJobError("; ".join(failures))


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Workers:
    """The handlers, bound to their dependencies."""

    def __init__(self, deps: WorkerDeps) -> None:
        self.deps = deps
        self.stripe = StripeEffects(deps.stripe)

    # --- email ----------------------------------------------------------------------

    def _email(self, job: Job, role: str, to: str, rendered: RenderedEmail) -> None:
        send_email_once(
            provider=self.deps.mailer(),
            ledger=self.deps.ledger(),
            clock=self.deps.clock,
            effect_id=f"{job.id}/email/{role}",
            message=OutgoingEmail(
                sender=self.deps.sender_address(),
                to=to,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
            ),
        )

    def release_email(self, job: Job) -> None:
        p = _payload(job, ReleaseEmailPayload)
        self._email(job, "recipient", p.recipient_email, templates.release_email(p))

    def refund_email(self, job: Job) -> None:
        p = _payload(job, RefundEmailPayload)
        self._email(job, "recipient", p.recipient_email, templates.refund_email(p))

    def payment_confirmed_email(self, job: Job) -> None:
        p = _payload(job, PaymentConfirmedEmailPayload)
        self._email(job, "recipient", p.recipient_email, templates.payment_confirmed_email(p))

    def dispute_email(self, job: Job) -> None:
        p = _payload(job, DisputeEmailPayload)

        def to(party: Party, address: str) -> Callable[[], None]:
            rendered = templates.dispute_opened_email(p, party)
            return lambda: self._email(job, party.value, address, rendered)

        _all_of(
            [
                ("email to buyer", to(Party.BUYER, p.buyer_email)),
                ("email to seller", to(Party.SELLER, p.seller_email)),
            ]
        )

    def payment_notice_email(self, job: Job) -> None:
        p = _payload(job, PaymentNoticePayload)
        if p.payment_intent_id and not self.stripe.awaiting_capture(p.payment_intent_id):
            log.info("escrow %s is no longer awaiting capture; notice not sent", p.transaction_id)
            return

        def to(role: str, address: str) -> Callable[[], None]:
            rendered = templates.payment_notice_email(p, role)
            return lambda: self._email(job, role, address, rendered)

        _all_of([(f"email to {r.role}", to(r.role, str(r.email))) for r in p.recipients])

    # --- Stripe ---------------------------------------------------------------------

    def capture(self, job: Job) -> None:
        _payload(job, Payload)  # validate before any client is built
        self.stripe.capture(job)

    def refund(self, job: Job) -> None:
        _payload(job, Payload)
        self.stripe.refund(job)

    # --- webhooks -------------------------------------------------------------------

    def _webhook(
        self, job: Job, *, url: str, secret_ref: str, event_type: str, data: dict[str, Any],
        occurred_at: datetime,
    ) -> None:  # fmt: skip
        secret = self.deps.webhook_secret(secret_ref)
        body = json.dumps(
            {"type": event_type, "timestamp": _iso(occurred_at), "data": data},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        sender = self.deps.webhooks()
        clock = self.deps.clock
        run_once(
            self.deps.ledger(),
            f"{job.id}/webhook",
            lambda: sender.deliver(
                url=url,
                secret=secret,
                message_id=webhook_message_id(job),
                body=body,
                timestamp=datetime.fromtimestamp(clock.now_ms() / 1000, tz=UTC),
            ),
            clock=clock,
        )

    def status_changed_webhook(self, job: Job) -> None:
        p = _payload(job, EscrowStatusChangedPayload)
        data: dict[str, Any] = {"escrow_id": p.transaction_id, "status": p.status.value}
        if p.previous_status is not None:
            data["previous_status"] = p.previous_status.value
        if p.amount is not None:
            data["amount"], data["currency"] = p.amount, p.currency
        if p.escrow_version is not None:
            data["version"] = p.escrow_version
        self._webhook(
            job,
            url=str(p.webhook_url),
            secret_ref=p.webhook_secret_ref,
            event_type="escrow.status_changed",
            data=data,
            occurred_at=p.occurred_at or job.created_at,
        )

    # --- dispute resolved -----------------------------------------------------------

    def dispute_resolved(self, job: Job) -> None:
        p = _payload(job, DisputeResolvedPayload)

        def to(party: Party, address: str) -> Callable[[], None]:
            rendered = templates.dispute_resolved_email(p, party)
            return lambda: self._email(job, party.value, address, rendered)

        effects: list[tuple[str, Callable[[], object]]] = [
            ("email to buyer", to(Party.BUYER, p.buyer_email)),
            ("email to seller", to(Party.SELLER, p.seller_email)),
        ]
        if p.webhook_url is not None:
            url, ref = str(p.webhook_url), p.webhook_secret_ref

            def webhook() -> None:
                if not ref:
                    raise PermanentJobError("webhook_url given without webhook_secret_ref")
                self._webhook(
                    job,
                    url=url,
                    secret_ref=ref,
                    event_type="escrow.dispute_resolved",
                    data={
                        "escrow_id": p.transaction_id,
                        "outcome": p.outcome.value,
                        "amount": p.amount,
                        "currency": p.currency,
                        **({} if p.escrow_version is None else {"version": p.escrow_version}),
                    },
                    occurred_at=job.created_at,
                )

            effects.append(("webhook", webhook))
        _all_of(effects)

    # --- audit ----------------------------------------------------------------------

    def audit(self, job: Job) -> None:
        p = _payload(job, AuditLogPayload)
        row = audit_row(job, p, now_ms=self.deps.clock.now_ms())
        if self.deps.audit().write(row):
            log.info("audit row %s/%s written (%s)", p.transaction_id, job.id, p.action)
        else:
            log.info("audit row %s/%s already written; skipped", p.transaction_id, job.id)


def build_handlers(deps: WorkerDeps) -> dict[JobType, Handler]:
    """Every job type's handler, bound to ``deps``. Builds no client.

    Example::

        handlers = build_handlers(WorkerDeps.from_env(os.environ))
        handlers[job.type](job)   # returns, or raises Retryable/PermanentJobError
    """
    w = _Workers(deps)
    table: dict[JobType, Handler] = {
        JobType.SEND_RELEASE_EMAIL: w.release_email,
        JobType.SEND_REFUND_EMAIL: w.refund_email,
        JobType.SEND_DISPUTE_EMAIL: w.dispute_email,
        JobType.SEND_PAYMENT_CONFIRMED_EMAIL: w.payment_confirmed_email,
        JobType.STRIPE_CAPTURE_PAYMENT: w.capture,
        JobType.STRIPE_REFUND_PAYMENT: w.refund,
        JobType.WEBHOOK_ESCROW_STATUS_CHANGED: w.status_changed_webhook,
        JobType.NOTIFY_DISPUTE_RESOLVED: w.dispute_resolved,
        JobType.AUDIT_LOG_CREATED: w.audit,
        JobType.SEND_PAYMENT_NOTICE_EMAIL: w.payment_notice_email,
    }
    missing = set(JobType) - set(table)
    assert not missing, f"no handler for {missing}"
    return {job_type: _classified(handler) for job_type, handler in table.items()}
