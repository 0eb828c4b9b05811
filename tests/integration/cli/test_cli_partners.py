"""``escrow-jobs partners``: the disabled webhook endpoints and re-enabling one, against a
real Redis (a 410 recorded by the queue as the processor would record it)."""

from __future__ import annotations

import json

from jobs_core import JobQueue, Outcome

from .conftest import RunCli


def _gone(queue: JobQueue, partner: str, count: int) -> list[str]:
    """``count`` status webhooks of ``partner``; the first meets a 410, the rest are held."""
    ids = [
        queue.enqueue_job(
            "webhook_escrow_status_changed",
            {
                "transactionId": f"esc-{i}",
                "status": "funded",
                "escrowVersion": 2,
                "webhookUrl": "https://partner.example/h",
                "webhookSecretRef": partner,
            },
        )
        for i in range(count)
    ]
    [first] = queue.claim(1)
    queue.settle([Outcome(first, "hold", error="EndpointGoneError: HTTP 410")])
    assert queue.claim(50) == []  # the others are held now, not leased
    return ids


def test_list_show_and_enable(run_cli: RunCli, queue: JobQueue) -> None:
    assert run_cli("partners", "list").out.strip() == "no partner endpoint is disabled"
    _gone(queue, "partner-acme", 3)

    listed = run_cli("partners", "list")
    assert listed.code == 0
    assert "partner-acme: disabled (HTTP 410 Gone); 3 held" in listed.out
    [row] = json.loads(run_cli("partners", "list", "--json").out)["disabled"]
    assert (row["partner"], row["held"]) == ("partner-acme", 3)
    assert "3 held" in run_cli("partners", "show", "partner-acme").out
    assert json.loads(run_cli("stats", "--json").out)["deadLetter"] == 0

    enabled = run_cli("partners", "enable", "partner-acme", "--json")
    assert enabled.code == 0, enabled.err
    assert json.loads(enabled.out) == {"partner": "partner-acme", "was_disabled": True,
                                       "released": 3}  # fmt: skip
    assert len(queue.claim(50)) == 3
    again = run_cli("partners", "enable", "partner-acme")
    assert again.code == 1 and "was not disabled" in again.out
