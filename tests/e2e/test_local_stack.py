"""Escrows' whole lives through the local stack over HTTP, and the stack's own behaviour.

What each test proves:

- ``test_create_pay_release``: the API on the stack's gateway creates an escrow (JWT
  claims from a dev token), the simulated payment posts a Stripe-signed event that funds
  it, the buyer releases it (Stripe capture at the local Stripe server); then, through
  the real queue, processor and workers: the emails are in the mailbox, the partner's
  receiver got each signed status webhook (verified with its secret, which the workers
  read from moto's Secrets Manager), and the audit rows are in moto's DynamoDB table.
- ``test_dispute_then_resolve``: funded -> disputed (emails to both parties) -> resolved
  by an admin as refunded (resolution emails to both, the ``escrow.dispute_resolved``
  webhook, audit rows).
- ``test_gateway_refuses_like_api_gateway``: no token / a forged token: 401 before the
  handler; a party without the right: the handler's 403/404; the operator endpoint with
  its token from Secrets Manager.
- ``test_cli_and_metrics_against_the_stack``: ``escrow-jobs`` reads the stack's Redis;
  the monitor's EMF metrics reached moto's CloudWatch.
- ``test_ctrl_c_stops_everything``: SIGINT and SIGTERM stop a stack with exit code 0, its
  redis-server child gone, its port free, its stack.json removed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from escrow_jobs_cli.main import main as cli_main
from jobs_core import JobQueue, Settings
from jobs_core.queue.keys import QueueKeys

from tests.support.redis_cluster import RedisClusterServers
from tests.support.webhook_receiver import WebhookReceiver

from .conftest import Stack, eventually, start_stack, subject

# One worker runs this module (under `pytest -n`), so the shared stack starts once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e-local-stack")]


@pytest.fixture
def partner(stack: Stack) -> Any:
    """A partner endpoint that verifies signatures, with its secret in Secrets Manager."""
    with WebhookReceiver() as receiver:
        ref = f"e2e-partner-{uuid.uuid4().hex[:8]}"
        stack.aws("secretsmanager").create_secret(
            Name=stack.info["webhookSecretPrefix"] + ref, SecretString=receiver.secret
        )
        receiver.ref = ref  # type: ignore[attr-defined]
        yield receiver


def _create(stack: Stack, partner: Any, amount: int = 10000) -> dict[str, Any]:
    users = stack.info["users"]
    body = {
        "amount": amount,
        "currency": "USD",
        "buyer": {"id": users["buyer"]["sub"], "email": users["buyer"]["email"]},
        "seller": {"id": users["seller"]["sub"], "email": users["seller"]["email"]},
        "webhookUrl": partner.url,
        "webhookSecretRef": partner.ref,
    }
    response = httpx.post(
        f"{stack.api}/api/escrow",
        json=body,
        headers={**stack.auth("buyer"), "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    escrow: dict[str, Any] = response.json()["escrow"]
    assert escrow["state"] == "pending"
    return escrow


def _pay(stack: Stack, escrow_id: str) -> None:
    response = httpx.post(
        f"{stack.api}/_local/stripe/pay", json={"escrowId": escrow_id}, timeout=30
    )
    assert response.status_code == 200, response.text
    paid = response.json()
    assert paid["paymentIntent"]["status"] == "requires_capture"
    assert paid["webhook"]["status"] == 200, paid
    assert paid["webhook"]["response"]["state"] == "funded"


def _state(stack: Stack, escrow_id: str, role: str = "buyer") -> str:
    response = httpx.get(f"{stack.api}/api/escrow/{escrow_id}", headers=stack.auth(role))
    assert response.status_code == 200, response.text
    return str(response.json()["escrow"]["state"])


def _post(stack: Stack, path: str, role: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{stack.api}{path}",
        json=body,
        headers={**stack.auth(role), "Idempotency-Key": uuid.uuid4().hex},
        timeout=30,
    )


def _webhooks(partner: Any, escrow_id: str) -> list[dict[str, Any]]:
    return [
        d.payload
        for d in partner.accepted
        if d.verified and d.payload["data"].get("escrow_id") == escrow_id
    ]


def test_create_pay_release(stack: Stack, partner: Any) -> None:
    escrow = _create(stack, partner)
    escrow_id = escrow["id"]
    _pay(stack, escrow_id)
    assert _state(stack, escrow_id) == "funded"

    released = _post(stack, "/api/escrow/release", "buyer", {"escrowId": escrow_id})
    assert released.status_code == 200, released.text
    assert released.json()["escrow"]["state"] == "released"
    assert _state(stack, escrow_id, role="seller") == "released"

    users = stack.info["users"]
    mails = eventually(
        lambda: (m := stack.mails_about(escrow_id)) and len(m) >= 2 and m,
        "the payment-confirmed and release emails",
        stack,
    )
    by_subject = {subject(m): m for m in mails}
    confirmed = by_subject[f"Payment received: $100.00 held in escrow {escrow_id}"]
    assert confirmed["To"] == users["buyer"]["email"]
    release = by_subject[f"Funds released for escrow {escrow_id}"]
    assert release["To"] == users["seller"]["email"]
    assert "$100.00" in release.get_body(("plain",)).get_content()  # type: ignore[union-attr]

    hooks = eventually(
        lambda: (h := _webhooks(partner, escrow_id)) and len(h) >= 2 and h,
        "the partner's signed status webhooks",
        stack,
    )
    assert [(h["type"], h["data"]["status"]) for h in hooks] == [
        ("escrow.status_changed", "funded"),
        ("escrow.status_changed", "released"),
    ]
    assert hooks[1]["data"]["previous_status"] == "funded"
    assert all(d.verified for d in partner.deliveries)

    rows = eventually(
        lambda: (r := stack.audit_rows(escrow_id)) and len(r) >= 3 and r,
        "three audit rows in DynamoDB",
        stack,
    )
    actions = sorted((r["action"], r.get("state_after")) for r in rows)
    assert actions == [("create", "pending"), ("fund", "funded"), ("release", "released")]
    release_row = next(r for r in rows if r["action"] == "release")
    assert release_row["actor"] == users["buyer"]["sub"]
    assert release_row["state_before"] == "funded"
    assert len({r["event_id"] for r in rows}) == 3


def test_dispute_then_resolve(stack: Stack, partner: Any) -> None:
    escrow_id = _create(stack, partner, amount=2550)["id"]
    _pay(stack, escrow_id)
    disputed = _post(
        stack, "/api/escrow/dispute", "buyer", {"escrowId": escrow_id, "reason": "not delivered"}
    )
    assert disputed.status_code == 200, disputed.text
    assert _state(stack, escrow_id) == "disputed"

    refused = _post(stack, "/api/escrow/resolve", "buyer",
                    {"escrowId": escrow_id, "outcome": "refunded"})  # fmt: skip
    assert refused.status_code == 403, refused.text

    resolved = _post(
        stack,
        "/api/escrow/resolve",
        "admin",
        {"escrowId": escrow_id, "outcome": "refunded", "note": "seller agreed"},
    )
    assert resolved.status_code == 200, resolved.text
    assert _state(stack, escrow_id, role="admin") == "refunded"

    users = stack.info["users"]
    parties = {users["buyer"]["email"], users["seller"]["email"]}

    def dispute_mails() -> dict[str, set[str]] | None:
        recipients: dict[str, set[str]] = {}
        for mail in stack.mails_about(escrow_id):
            recipients.setdefault(subject(mail), set()).add(str(mail["To"]))
        opened = recipients.get(f"A dispute was opened on escrow {escrow_id}", set())
        closed = recipients.get(f"The dispute on escrow {escrow_id} is resolved", set())
        return recipients if opened == parties and closed == parties else None

    eventually(dispute_mails, "dispute and resolution emails to both parties", stack)

    hooks = eventually(
        lambda: (h := _webhooks(partner, escrow_id)) and len(h) >= 3 and h,
        "the funded, disputed and resolved webhooks",
        stack,
    )
    kinds = [(h["type"], h["data"].get("status") or h["data"].get("outcome")) for h in hooks]
    assert ("escrow.status_changed", "disputed") in kinds
    assert ("escrow.dispute_resolved", "refunded") in kinds

    rows = eventually(
        lambda: (r := stack.audit_rows(escrow_id)) and len(r) >= 4 and r,
        "the audit rows of the dispute and its resolution",
        stack,
    )
    assert {r["action"] for r in rows} >= {"create", "fund", "dispute", "resolve_refund"}
    resolve_row = next(r for r in rows if r["action"] == "resolve_refund")
    assert (resolve_row["state_before"], resolve_row["state_after"]) == ("disputed", "refunded")
    assert resolve_row["actor"] == users["admin"]["sub"]


def test_gateway_refuses_like_api_gateway(stack: Stack) -> None:
    anonymous = httpx.post(f"{stack.api}/api/escrow", json={})
    assert (anonymous.status_code, anonymous.json()) == (401, {"message": "Unauthorized"})
    forged = stack.token("admin")[:-4] + "AAAA"
    response = httpx.get(
        f"{stack.api}/api/escrow/esc_x", headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.status_code == 401
    assert (
        httpx.get(f"{stack.api}/api/escrow/esc_unknown", headers=stack.auth("buyer")).status_code
        == 404
    )
    assert httpx.get(f"{stack.api}/api/nothing-here").status_code == 404

    unsigned = httpx.post(f"{stack.api}/api/stripe/webhook", content=b'{"id": "evt_1"}')
    assert unsigned.status_code == 400  # the handler checks Stripe's signature

    operator = httpx.get(f"{stack.api}/api/jobs/process")
    assert operator.status_code == 401
    stats = httpx.get(
        f"{stack.api}/api/jobs/process",
        headers={"Authorization": f"Bearer {stack.info['processorToken']}"},
    )
    assert stats.status_code == 200, stats.text
    assert "deadLetterCount" in stats.json()


def test_cli_and_metrics_against_the_stack(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stack.info["backend"] == "redis"
    env = {"REDIS_URL": stack.info["redisUrl"], "JOBS_NAMESPACE": stack.info["namespace"]}
    assert cli_main(["stats", "--json"], environ=env) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["namespace"] == stack.info["namespace"]
    assert stats["deadLetter"] == 0

    def monitor_metrics() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = stack.aws("cloudwatch").list_metrics(
            Namespace="EscrowJobs", MetricName="QueueDepth"
        )["Metrics"]
        return found

    metrics = eventually(monitor_metrics, "the monitor's QueueDepth in CloudWatch", stack)
    dimensions = [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in metrics]
    assert {"service": "queue-monitor", "queue": stack.info["namespace"]} in dimensions


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of an exited child counts as gone
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_everything(tmp_path: Path, sig: signal.Signals) -> None:
    running = start_stack(tmp_path)
    redis_pid = running.info["redisPid"]
    port = int(running.api.rsplit(":", 1)[1])
    assert redis_pid and _alive(redis_pid)
    assert running.stop(sig) == 0, running.log()
    assert not _alive(redis_pid), "the redis-server child outlived the stack"
    assert _port_free(port)
    assert not (running.state_dir / "stack.json").exists()
    assert "stopped" in running.log()


def _release_flow(stack: Stack) -> str:
    """Create, pay, release with the demo partner; returns the escrow id once the release
    email is in the mailbox (the processor ran the jobs on this stack's queue)."""
    partner = stack.info["demoPartner"]
    users = stack.info["users"]
    created = httpx.post(
        f"{stack.api}/api/escrow",
        json={
            "amount": 700,
            "currency": "EUR",
            "buyer": {"id": users["buyer"]["sub"], "email": users["buyer"]["email"]},
            "seller": {"id": users["seller"]["sub"], "email": users["seller"]["email"]},
            **partner,
        },
        headers=stack.auth("buyer"),
        timeout=30,
    )
    assert created.status_code == 201, created.text
    escrow_id = str(created.json()["escrow"]["id"])
    _pay(stack, escrow_id)
    released = _post(stack, "/api/escrow/release", "buyer", {"escrowId": escrow_id})
    assert released.status_code == 200, released.text
    eventually(
        lambda: any(subject(m).startswith("Funds released") for m in stack.mails_about(escrow_id)),
        "the release email",
        stack,
    )
    deliveries = eventually(
        lambda: [
            d
            for d in httpx.get(f"{stack.api}/_local/partner/webhooks").json()["deliveries"]
            if d["payload"]["data"]["escrow_id"] == escrow_id
        ],
        "the demo partner's verified webhooks",
        stack,
    )
    assert deliveries[0]["payload"]["type"] == "escrow.status_changed"
    return escrow_id


def test_embedded_redis_when_no_redis_server_is_on_path(tmp_path: Path) -> None:
    no_redis_path = str(Path(sys.executable).parent)  # the venv's bin: python, no redis-server
    running = start_stack(tmp_path, {"PATH": no_redis_path})
    try:
        assert running.info["backend"] == "memory"
        assert running.info["redisUrl"] is None
        assert running.info["redisPid"] is None
        _release_flow(running)
    finally:
        assert running.stop() == 0, running.log()


def test_configured_redis_is_used_instead(tmp_path: Path, redis_url: str) -> None:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    running = start_stack(tmp_path, {"REDIS_URL": redis_url, "JOBS_NAMESPACE": namespace})
    try:
        assert (running.info["backend"], running.info["redisUrl"]) == ("redis", redis_url)
        assert running.info["redisPid"] is None  # no redis-server of its own
        escrow_id = _release_flow(running)
    finally:
        assert running.stop() == 0, running.log()
    queue = JobQueue.from_settings(Settings(backend="redis", redis_url=redis_url,
                                            namespace=namespace))  # fmt: skip
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        keys = client.scan_iter(match=f"{queue.keys.prefix}*")
        records = [client.get(k) for k in keys if client.type(k) == "string"]  # job records
    finally:
        client.close()
    assert any(escrow_id in (r or "") for r in records if isinstance(r, str))


def test_a_redis_cluster_url_is_used_too(
    tmp_path: Path, redis_cluster: RedisClusterServers
) -> None:
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    url = redis_cluster.url_not_owning(QueueKeys(namespace).timeline)  # a node saying MOVED
    running = start_stack(tmp_path, {"REDIS_URL": url, "JOBS_NAMESPACE": namespace})
    try:
        assert (running.info["backend"], running.info["redisUrl"]) == ("redis", url)
        escrow_id = _release_flow(running)
    finally:
        assert running.stop() == 0, running.log()
    client = redis.RedisCluster.from_url(url, decode_responses=True)
    try:
        records = [client.get(k) for k in client.scan_iter(match=f"{{{namespace}}}:job:*")]
    finally:
        client.close()
    assert any(escrow_id in (r or "") for r in records)
