"""``make bench``: escrow-jobs beside seven peer queues, on one Redis, in one run.

The peers: RQ, arq, saq, dramatiq, huey, bullmq (Python) and taskiq-redis.

Rounds are interleaved (bare SET, ours, every peer, then again) so machine drift hits all
alike; each figure is the median over the rounds. Redis is pinned to CPU 0 and the
clients to CPU 1 where the machine allows. Then the processor, API and cost benchmarks
run (``bench.cost_bench``: our drain through ``Processor`` at production defaults beside
the peers' real workers, and the commands of a lone job, a kicked request, an idle minute).
Nothing here asserts: it prints tables, and a last table of the goals from the issues.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from bench import peers_runner as pr
from bench import peers_venvs
from bench.redis_env import pin_client_process, redis_server

DETAIL = (
    ("one-by-one enqueue /s", "enqueue_per_s", 0),
    ("one-by-one enqueue with dedupe key /s", "enqueue_dedupe_per_s", 0),
    ("bulk enqueue (1000 per call) /s", "bulk_enqueue_per_s", 0),
    ("bare claim/settle loop (not a worker), batch 100 /s", "drain_per_s", 0),
    ("round trips: enqueue", "round_trips_enqueue", 2),
    ("round trips: enqueue_jobs of 3 jobs", "round_trips_enqueue_3_jobs", 0),
    ("round trips: bulk call of 1000", "round_trips_bulk_per_call", 0),
    ("round trips per job: claim+settle, batch 100", "round_trips_process_per_job", 3),
    ("round trips per job: claim+settle, batch 10", "round_trips_process_batch10_per_job", 3),
    ("round trips: idle poll", "round_trips_idle_poll", 0),
    ("billed cmds: enqueue", "billed_cmds_enqueue_per_job", 2),
    ("billed cmds: enqueue with dedupe key", "billed_cmds_enqueue_dedupe_per_job", 2),
    ("billed cmds per job: claim+settle, batch 100", "billed_cmds_process_per_job", 2),
    ("billed cmds per job: claim+settle, batch 10", "billed_cmds_process_batch10_per_job", 2),
    ("billed cmds: idle poll", "idle_poll_billed", 0),
    ("billed cmds: idle minute (one scheduled poll + marker)", "idle_cmds_per_min", 0),
)


def run_ours(url: str, jobs: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.ours_driver", "--redis-url", url, "--jobs", str(jobs)]
    return pr._run_json(argv, timeout=120 + jobs / 50)


def medians(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"name": "escrow-jobs", "version": "this", "runs": len(rows)}
    for key in rows[0]:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
        if values and key != "jobs":
            merged[key] = statistics.median(values)
    return merged


def goals(ours: dict[str, Any], peers: Sequence[dict[str, Any]], bare: float) -> str:
    """``bare`` is the median over rounds of (our enqueue rate / bare SET rate) in each
    round: the two are measured seconds apart, so drift between rounds cancels out."""

    def best(key: str) -> float:
        return max((p[key] for p in peers if p.get(key)), default=0.0)

    lifecycle_dedupe = (
        ours["billed_cmds_enqueue_dedupe_per_job"] + ours["billed_cmds_process_batch10_per_job"]
    )
    lifecycle = ours["billed_cmds_enqueue_per_job"] + ours["billed_cmds_process_per_job"]
    rows = [
        ("one-by-one enqueue >= 0.7x bare SET (per round)", bare, 0.7, "ratio"),
        (
            "bulk enqueue >= 2x best peer bulk",
            ours["bulk_enqueue_per_s"] / best("bulk_enqueue_per_s"),
            2,
            "x",
        ),
        (
            "bare claim/settle loop / fastest peer worker (see cost_bench)",
            ours["drain_per_s"] / best("drain_per_s"),
            2,
            "x",
        ),
        ("billed cmds/lifecycle, dedupe, batch 10 <= 6", lifecycle_dedupe, 6, "cmds"),
        ("billed cmds/lifecycle, batch 100", lifecycle, 6, "cmds"),
        ("billed cmds per idle poll <= 2", ours["idle_poll_billed"], 2, "cmds"),
    ]
    lines = [f"{'goal':<48} {'value':>8}  {'target':>7}  met", "-" * 72]
    for name, value, target, unit in rows:
        met = value <= target if unit == "cmds" else value >= target
        lines.append(f"{name:<48} {value:>8.2f}  {target:>7}  {'yes' if met else 'NO'}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--no-peers", action="store_true", help="our queue and bare SET only")
    parser.add_argument("--skip-sections", action="store_true", help="engine table only")
    args = parser.parse_args(argv)

    drivers = () if args.no_peers else pr.DRIVERS
    for peer in sorted({d.peer for d in drivers}):
        peers_venvs.ensure_venv(peer)
    pinned = pin_client_process()
    load_before = os.getloadavg()[0]
    ours_rounds: list[dict[str, Any]] = []
    peer_rounds: list[list[dict[str, Any]]] = []
    bare: list[float] = []
    with redis_server() as url:
        for i in range(args.repeat):
            print(f"round {i + 1}/{args.repeat} ...", file=sys.stderr, flush=True)
            bare.append(pr.run_bare_set(url, 20_000))
            ours_rounds.append(run_ours(url, args.jobs))
            idle = args.idle_seconds if i == 0 else 0.0
            peer_rounds.append(pr.run_peers(url, args.jobs, idle_seconds=idle, drivers=drivers))
    ours = medians(ours_rounds)
    peers = pr.median_rows(peer_rounds) if drivers else []
    bare_median = statistics.median(bare)
    layout = "Redis on CPU 0, clients on CPU 1" if pinned else "no CPU pinning"
    rounds = f"median of {args.repeat} interleaved rounds"
    print(f"\n== Queue engine: {args.jobs} no-op jobs, {rounds}, {layout}")
    print(pr.format_table([ours, *peers], bare_median))
    print(pr.drift_report(bare, load_before, os.getloadavg()[0]))
    print(
        "\n== escrow-jobs in detail (round trips counted at the client, billed = INFO commandstats)"
    )
    for title, key, digits in DETAIL:
        value = ours.get(key)
        print(f"{title:<56} {'—' if value is None else f'{value:,.{digits}f}':>10}")
    if peers:
        print("\n== Goals (issues 2, 3 and 12), from this run")
        per_round = [r["enqueue_per_s"] / b for r, b in zip(ours_rounds, bare, strict=True)]
        print(goals(ours, peers, statistics.median(per_round)))
    if not args.skip_sections:
        sections = ("bench.processor_bench", "bench.api_bench", "bench.cluster_bench",
                    "bench.flow_bench", "bench.cost_bench", "bench.cold_import_bench")  # fmt: skip
        for module in sections:
            print(f"\n== {module}", flush=True)
            subprocess.run([sys.executable, "-m", module], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
