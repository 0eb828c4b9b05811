"""The escrow API's request in X-Ray: the handler's subsegment carries the escrow id, so
one escrow's requests, jobs and effects are found with ``annotation.escrow_id``."""

from __future__ import annotations

from typing import Any

from escrow.service import EscrowService
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import call
from tests.support.xray import annotated, segment

__all__ = ["segment"]  # the fixture


def test_create_and_get_are_annotated_with_the_escrow_id(
    service: EscrowService, stripe_api: StripeServer, segment: Any
) -> None:
    created = call("create")
    assert created.status == 201, created.body
    escrow_id = created.body["escrow"]["id"]
    assert call("get_escrow_admin", escrow_id=escrow_id).status == 200

    spans = [a for a in annotated(segment) if a["name"] == "## lambda_handler"]
    assert [s.get("escrow_id") for s in spans] == [escrow_id, escrow_id]
