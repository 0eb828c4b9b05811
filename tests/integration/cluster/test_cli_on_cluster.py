"""The issue's own trial: ``escrow-jobs enqueue`` and ``stats`` with REDIS_URL naming a
cluster node that does not own the queue's slot (as a configuration endpoint does)."""

from __future__ import annotations

import io
import json

from escrow_jobs_cli.main import main

RELEASE = {"transactionId": "esc-1", "recipientEmail": "user@example.com", "amount": 10000}


def run(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=env, stdout=out, stderr=err, stdin=io.StringIO(""))
    return code, out.getvalue(), err.getvalue()


def test_enqueue_and_stats_through_a_node_that_answers_moved(url: str, namespace: str) -> None:
    env = {"REDIS_URL": url, "JOBS_NAMESPACE": namespace}
    code, out, err = run(env, "enqueue", "send_release_email", "--payload", json.dumps(RELEASE))
    assert code == 0, err
    code, out, err = run(env, "stats", "--json")
    assert code == 0, err
    assert json.loads(out)["ready"] == 1
