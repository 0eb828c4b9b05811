"""The reconciler: every open escrow, and those closed lately, compared with Stripe.

It reads; it never moves money and never writes the table. For each escrow it reads the
PaymentIntent and its charge (``PaymentGateway.snapshot``, a few at a time) and reports
each disagreement as a ``Drift``:

=============  =============================================================================
kind           meaning
=============  =============================================================================
``state``      Stripe's status does not fit the escrow's state (``EXPECTED_STATUS``): e.g.
               a funded escrow whose authorisation Stripe cancelled, a pending one Stripe
               holds money for, a released one Stripe never captured
``captured``   the escrow's captured amount differs from the charge's ``amount_captured``
``refunded``   the escrow's refunded amount differs from the charge's ``amount_refunded``
               (a dashboard refund whose event never arrived)
``unreadable`` Stripe could not be read for this escrow (retried next run)
=============  =============================================================================

An escrow with a Stripe call in flight (releasing, refunding) is skipped unless its
claim is older than ``stale_claim_s``. Runs hourly from the escrow API function's own
schedule (``app.lambda_handler`` with ``{"task": "reconcile"}``), which publishes the
drift count as the metric ``EscrowDrift`` (the template's alarm watches it), and on
demand through ``escrow-jobs reconcile``, which invokes the same function.

>>> report = reconcile(store, gateway, now_ms=now, closed_within_days=3)  # doctest: +SKIP
>>> [d.kind for d in report.drifts]
['state', 'refunded']
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from .models import Escrow
from .state import CLAIMED_STATES, EscrowState
from .stripe_gateway import PaymentGateway, PaymentGatewayError, PaymentSnapshot

METRICS_NAMESPACE = "EscrowJobs"
METRICS_SERVICE = "escrow-reconciler"
DRIFT_METRIC = "EscrowDrift"  # escrows whose table disagrees with Stripe, per run
UNCHECKED_METRIC = "EscrowReconcileUnchecked"  # escrows left for lack of time
READERS = 8  # Stripe reads in flight at once

S = EscrowState
_UNCAPTURED = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})
EXPECTED_STATUS: dict[EscrowState, frozenset[str]] = {
    S.PENDING: _UNCAPTURED | {"processing"},
    S.FUNDED: frozenset({"requires_capture"}),
    S.DISPUTED: frozenset({"requires_capture"}),
    S.RELEASED: frozenset({"succeeded"}),
    S.REFUNDED: frozenset({"canceled", "succeeded"}),  # succeeded: refunded in full
    S.CANCELLED: frozenset({"canceled"}) | _UNCAPTURED,
    S.EXPIRED: frozenset({"canceled"}),
}


class EscrowSource(Protocol):
    """The one table read the reconciler needs (``store.EscrowStore`` has it)."""

    def escrows_to_reconcile(self, *, closed_since_ms: int) -> Iterable[Escrow]: ...


@dataclass(frozen=True, slots=True)
class Drift:
    escrow_id: str
    payment_intent_id: str
    state: str
    kind: str  # state | captured | refunded | unreadable
    ours: str
    stripe: str


@dataclass(slots=True)
class ReconcileReport:
    checked: int = 0
    skipped: int = 0  # a Stripe call in flight
    unchecked: int = 0  # left for the next run (out of time)
    drifts: list[Drift] = field(default_factory=list)

    @property
    def drifted_escrows(self) -> int:
        return len({d.escrow_id for d in self.drifts})

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "skipped": self.skipped,
            "unchecked": self.unchecked,
            "driftedEscrows": self.drifted_escrows,
            "drifts": [asdict(d) for d in self.drifts],
        }


def compare(escrow: Escrow, snap: PaymentSnapshot) -> list[Drift]:
    """Every way ``escrow`` disagrees with Stripe's ``snap`` of its PaymentIntent."""

    def drift(kind: str, ours: object, stripe: object) -> Drift:
        return Drift(escrow.escrow_id, escrow.payment_intent_id, escrow.state.value, kind,
                     str(ours), str(stripe))  # fmt: skip

    out: list[Drift] = []
    expected = EXPECTED_STATUS.get(escrow.state, frozenset())
    full_refund = snap.captured > 0 and snap.refunded >= snap.captured
    if snap.status not in expected or (
        escrow.state is S.REFUNDED and snap.status == "succeeded" and not full_refund
    ):
        out.append(drift("state", escrow.state.value, snap.status))
    if escrow.captured_amount != snap.captured:
        out.append(drift("captured", escrow.captured_amount, snap.captured))
    if escrow.refunded_amount != snap.refunded:
        out.append(drift("refunded", escrow.refunded_amount, snap.refunded))
    return out


def reconcile(
    source: EscrowSource,
    gateway: PaymentGateway,
    *,
    now_ms: int,
    closed_within_days: float,
    stale_claim_s: float = 300.0,
    time_left_s: Callable[[], float] | None = None,
) -> ReconcileReport:
    """Compare the open escrows, and those closed within ``closed_within_days``, with
    Stripe; stop starting reads when ``time_left_s()`` falls under two seconds."""
    since = now_ms - int(closed_within_days * 86_400_000)
    report = ReconcileReport()
    todo: list[Escrow] = []
    for escrow in source.escrows_to_reconcile(closed_since_ms=since):
        in_flight = escrow.state in CLAIMED_STATES
        if in_flight and (escrow.pending_since_ms or 0) + stale_claim_s * 1000 > now_ms:
            report.skipped += 1
        else:
            todo.append(escrow)
    deadline = time.monotonic() + (time_left_s() - 2.0 if time_left_s else 1e9)

    def check(escrow: Escrow) -> list[Drift] | None:
        if time.monotonic() > deadline:
            return None
        try:
            snap = gateway.snapshot(escrow.payment_intent_id)
        except PaymentGatewayError as exc:
            return [Drift(escrow.escrow_id, escrow.payment_intent_id, escrow.state.value,
                          "unreadable", "-", exc.message)]  # fmt: skip
        return compare(escrow, snap)

    with ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="reconcile") as pool:
        for drifts in pool.map(check, todo):
            if drifts is None:
                report.unchecked += 1
                continue
            report.checked += 1
            report.drifts += drifts
    return report


def publish(report: ReconcileReport, *, queue: str) -> None:
    """One EMF line: ``EscrowDrift`` (escrows that disagree) and the unchecked count."""
    sink = EphemeralMetrics(namespace=METRICS_NAMESPACE, service=METRICS_SERVICE)
    sink.add_dimension("queue", queue)
    sink.add_metric(DRIFT_METRIC, MetricUnit.Count, report.drifted_escrows)
    sink.add_metric(UNCHECKED_METRIC, MetricUnit.Count, report.unchecked)
    sink.flush_metrics(raise_on_empty_metrics=True)
