"""The escrow API on a Redis user limited to the queue's keys and scripts (ACL on the
session's redis-server): requests enqueue their side effects, and the outbox sweep too."""

from __future__ import annotations

import pytest
from escrow.api import get_service
from jobs_core import JobType
from jobs_core.queue.acl import acl_rules
from local_stack.stripe_server import StripeServer

from tests.integration.escrow_api.harness import call, funded_escrow, job_counts
from tests.support.redis_acl import acl_user
from tests.support.resolvers import PARTNER_DNS


def test_the_api_enqueues_as_a_user_limited_to_the_namespace(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], stripe_api: StripeServer
) -> None:
    rules = acl_rules(env["JOBS_NAMESPACE"], role="queue")
    with acl_user(env["REDIS_URL"], rules) as url:
        monkeypatch.setenv("REDIS_URL", url)
        get_service.cache_clear()
        service = get_service()
        service.webhook_resolver = PARTNER_DNS
        escrow_id, _ = funded_escrow(stripe_api)
        counts = job_counts(service.queue)
        assert {(t, key.removeprefix(f"escrow-{escrow_id}-")) for t, key in counts} == {
            (JobType.AUDIT_LOG_CREATED, "created-audit_log_created"),
            (JobType.AUDIT_LOG_CREATED, "funded-audit_log_created"),
            (JobType.SEND_PAYMENT_CONFIRMED_EMAIL, "funded-send_payment_confirmed_email"),
            (JobType.WEBHOOK_ESCROW_STATUS_CHANGED, "funded-webhook_escrow_status_changed"),
        }
        assert service.store.pending_outbox(older_than_ms=2**41, limit=10) == []  # all sent
        assert call("get_escrow_admin", escrow_id=escrow_id).status == 200
    get_service.cache_clear()
