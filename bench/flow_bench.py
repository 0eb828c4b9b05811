"""What flow control costs per job, in billed commands (issue 14).

A partner webhook passes the partner gate (``partner_gate.lua``, run inside the claim and
settle scripts): concurrency and rate per partner, the circuit, the order of an escrow's
statuses. It costs no round trip; it costs commands inside the scripts, and Upstash bills
those. Each row is the whole life of a job (enqueue, claim, settle; batches of 16, as the
processor claims) on a redis-server of its own, billed = ``INFO commandstats`` deltas
(EVALSHA and every call inside it), beside an ungated job of the same engine in the same
run. ``python -m bench.flow_bench [--jobs N]``.
"""

from __future__ import annotations

import argparse
import time
import uuid
from typing import Any

import redis
from jobs_core import JobQueue, Outcome, RedisBackend, Settings
from jobs_core.queue.backends.counting import CountingBackend

from bench.ours_driver import AUDIT, Meter
from bench.redis_env import redis_server

BATCH = 16
HOOK = "webhook_escrow_status_changed"


def status(escrow: str, partner: str, version: int | None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "transactionId": escrow,
        "status": "funded",
        "webhookUrl": "https://partner.example/hooks",
        "webhookSecretRef": partner,
    }
    if version is not None:
        payload["escrowVersion"] = version
    return payload


def lifecycle(queue: JobQueue, specs: list[tuple[str, dict[str, Any]]]) -> int:
    """Enqueue each job alone (as the API does per request), then claim and settle all."""
    for job_type, payload in specs:
        queue.enqueue_job(job_type, payload)
    done, idle_since = 0, None
    while done < len(specs):
        claimed = queue.claim(BATCH)
        if not claimed:  # the gate hands a held job back due a millisecond later
            idle_since = idle_since or time.monotonic()
            assert time.monotonic() - idle_since < 10, f"stuck at {done}/{len(specs)}"
            time.sleep(0.002)
            continue
        idle_since = None
        queue.settle([Outcome(c, "done") for c in claimed])
        done += len(claimed)
    return done


def measure(url: str, name: str, specs: list[tuple[str, dict[str, Any]]], **settings: Any) -> Any:
    raw = redis.Redis.from_url(url, decode_responses=True)
    counter = CountingBackend(RedisBackend.from_url(url, timeout_s=10))
    queue = JobQueue(counter, Settings(namespace=f"flow-{uuid.uuid4().hex[:6]}", **settings))
    lifecycle(queue, specs[:2])  # load the scripts outside the measurement
    with Meter(raw, counter) as m:
        lifecycle(queue, specs)
    with Meter(raw, counter) as idle:
        queue.claim(BATCH)
    raw.close()
    return name, m.cmds / len(specs), m.trips / len(specs), idle.cmds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    n = parser.parse_args().jobs
    free = {"partner_rate_per_s": 1e9, "partner_concurrency": 10_000}
    partners = [f"partner-{i}" for i in range(10)]
    cases = [
        ("ungated job (audit row): the baseline", [("audit_log_created", AUDIT)] * n, free),
        (
            "status webhook, 10 partners, no escrow version (gate only)",
            [(HOOK, status(f"e{i}", partners[i % 10], None)) for i in range(n)],
            free,
        ),
        (
            "status webhook, 10 partners, one per escrow (gate + order)",
            [(HOOK, status(f"e{i}", partners[i % 10], 1)) for i in range(n)],
            free,
        ),
        (
            "status webhook, 3 statuses per escrow (later ones wait)",
            [(HOOK, status(f"e{i // 3}", partners[i % 10], i % 3 + 1)) for i in range(n)],
            free,
        ),
        (
            "status webhook, one partner at its concurrency (4)",
            [(HOOK, status(f"e{i}", "partner-0", 1)) for i in range(n)],
            {"partner_rate_per_s": 1e9, "partner_concurrency": 4},
        ),
    ]
    with redis_server() as url:
        rows = [measure(url, name, specs, **settings) for name, specs, settings in cases]
    base = rows[0][1]
    print(f"{n} jobs per row; enqueue one by one, claim and settle in batches of {BATCH}")
    print(f"{'job':<60} {'billed/job':>10} {'vs base':>8} {'trips/job':>9} {'idle poll':>9}")
    print("-" * 100)
    for name, cmds, trips, idle in rows:
        print(f"{name:<60} {cmds:>10.2f} {cmds - base:>+8.2f} {trips:>9.2f} {idle:>9}")
    print(
        "billed: INFO commandstats per job over its whole life; vs base: what flow control "
        "adds; trips: round trips per job; idle poll: billed commands of one empty claim"
    )


if __name__ == "__main__":
    main()
