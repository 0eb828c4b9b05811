"""An escrow's history: the row each change writes, and the escrow shown with its rows.

The rows share the escrow's partition (``store``), so showing them is one Query.
"""

from __future__ import annotations

from typing import Protocol

from jobs_core import annotate_escrow

from . import auth
from .errors import NotFoundError
from .messages import ApiResponse
from .models import Escrow, HistoryEntry, escrow_view, history_view, plausible_escrow_id
from .state import Action, EscrowState


class HistoryReader(Protocol):
    """The one table read ``show`` needs (``store.EscrowStore`` has it)."""

    def get_escrow_with_history(
        self, escrow_id: str
    ) -> tuple[Escrow, list[HistoryEntry]] | None: ...


def row(
    escrow: Escrow,
    action: Action,
    source: EscrowState | None,
    actor: str,
    at_ms: int,
    request_id: str | None,
    reason: str | None = None,
    *,
    stripe_action: str | None = None,
) -> HistoryEntry:
    """The row for ``escrow`` as just written (its version and state), coming from ``source``."""
    return HistoryEntry(
        escrow_id=escrow.escrow_id,
        version=escrow.version,
        action=action,
        from_state=source,
        to_state=escrow.state,
        actor=actor,
        at_ms=at_ms,
        request_id=request_id,
        reason=reason,
        stripe_action=stripe_action,
    )


def show(store: HistoryReader, caller: auth.Caller, escrow_id: str) -> ApiResponse:
    """``GET /api/escrow/{id}``: the escrow and its history, oldest first; 404 to strangers."""
    if plausible_escrow_id(escrow_id):
        annotate_escrow(escrow_id)
    found = store.get_escrow_with_history(escrow_id) if plausible_escrow_id(escrow_id) else None
    if found is None:
        raise NotFoundError(f"escrow {escrow_id} not found", field="escrowId")
    escrow, history = found
    auth.authorize_view(caller, escrow)
    return ApiResponse(
        200, {"escrow": escrow_view(escrow), "history": [history_view(h) for h in history]}
    )
