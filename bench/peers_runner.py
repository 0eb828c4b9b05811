"""Run the peer queues and a bare SET loop on one Redis.

The peers: rq, arq, saq, dramatiq, huey, bullmq (Python) and taskiq-redis.

Each driver in ``bench/peers/`` runs with its peer's own venv (see
``bench.peers_venvs``) and prints one JSON object; this module collects them.

    python -m bench.peers_runner --jobs 2000 --repeat 3

starts a dedicated Redis pinned to CPU 0 (clients on CPU 1), runs every peer
and the bare SET loop once per round, rounds interleaved so that machine drift
hits all alike, and prints the median of each figure. The idle measurement
(~10 s per peer) is taken in the first round only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from bench import peers_venvs
from bench.redis_env import pin_client_process, redis_server

BENCH_DIR = Path(__file__).resolve().parent
PEERS_DIR = BENCH_DIR / "peers"

METRICS = (
    "enqueue_per_s",
    "bulk_enqueue_per_s",
    "drain_per_s",
    "billed_cmds_enqueue_per_job",
    "billed_cmds_process_per_job",
    "idle_cmds_per_min",
)


@dataclass(frozen=True, slots=True)
class Driver:
    """One row of the table: a peer's driver script run with some options."""

    name: str
    peer: str  # the venv under .bench-venvs/
    args: tuple[str, ...] = ()
    # seconds per job in the worst case seen, to size the hard timeout
    slow_s_per_job: float = 0.01

    @property
    def script(self) -> Path:
        return PEERS_DIR / f"{self.peer}_driver.py"


DRIVERS: tuple[Driver, ...] = (
    Driver("rq", "rq", ("--worker", "fork"), slow_s_per_job=0.1),
    Driver("rq SimpleWorker", "rq", ("--worker", "simple"), slow_s_per_job=0.03),
    Driver("arq", "arq", ("--poll-delay", "0.5"), slow_s_per_job=0.02),
    Driver("arq poll_delay=0", "arq", ("--poll-delay", "0"), slow_s_per_job=0.02),
    Driver("saq", "saq"),
    Driver("dramatiq", "dramatiq"),
    Driver("huey", "huey"),
    Driver("bullmq", "bullmq"),
    Driver("taskiq-redis", "taskiq"),
)


def _driver_timeout(driver: Driver, jobs: int, idle_seconds: float) -> float:
    # enqueue + bulk + drain at the slowest rate seen on a 2-core box, times three, plus idle
    return 60.0 + 3 * jobs * (driver.slow_s_per_job + 0.004) + idle_seconds + 10.0


def _run_json(argv: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run a command in its own process group; return the JSON of its last stdout line.

    On timeout the whole group (worker processes included) is killed.
    """
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        cwd=BENCH_DIR.parent,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise RuntimeError(f"timed out after {timeout:.0f}s") from None
    finally:
        # leftovers of a driver that exited (a forked work horse, say)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    lines = [line for line in out.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(err.strip().splitlines()[-5:])
        raise RuntimeError(f"exit {proc.returncode}: {tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def run_driver(
    driver: Driver, redis_url: str, jobs: int, *, idle_seconds: float = 10.0
) -> dict[str, Any]:
    """Run one driver; its JSON plus ``name`` (and ``error`` instead of figures on failure)."""
    python = peers_venvs.venv_python(driver.peer)
    row: dict[str, Any] = {"name": driver.name, "peer": driver.peer}
    if not python.exists():
        return {
            **row,
            "version": None,
            "error": f"no venv: run python -m bench.peers_venvs {driver.peer}",
        }
    timeout = _driver_timeout(driver, jobs, idle_seconds)
    argv = [
        str(python),
        str(driver.script),
        "--redis-url", redis_url,
        "--jobs", str(jobs),
        "--idle-seconds", str(idle_seconds),
        "--timeout", str(timeout - 5),
        *driver.args,
    ]  # fmt: skip
    try:
        return {**row, **_run_json(argv, timeout)}
    except (RuntimeError, ValueError) as exc:
        return {**row, "version": peers_venvs.peer_version(driver.peer), "error": str(exc)}


def run_peers(
    redis_url: str,
    jobs: int,
    *,
    idle_seconds: float = 10.0,
    drivers: Sequence[Driver] = DRIVERS,
) -> list[dict[str, Any]]:
    """Run every peer driver once against ``redis_url`` (which each FLUSHALLs).

    Returns one dict per driver: the figures named in ``METRICS`` (None where not
    applicable), ``name``, ``version``, ``drain_settings``, or ``error``.

    >>> with redis_server() as url:  # doctest: +SKIP
    ...     rows = run_peers(url, 2000)
    """
    return [run_driver(d, redis_url, jobs, idle_seconds=idle_seconds) for d in drivers]


def _python_with_redis_py() -> str:
    probe = subprocess.run([sys.executable, "-c", "import redis"], capture_output=True, check=False)
    if probe.returncode == 0:
        return sys.executable
    for peer in peers_venvs.PEERS:
        if peers_venvs.venv_python(peer).exists():
            return str(peers_venvs.venv_python(peer))
    raise RuntimeError("no python with redis-py: install it or run python -m bench.peers_venvs")


def run_bare_set(redis_url: str, n: int = 20_000) -> float:
    """SET/s of one redis-py client waiting for each reply (bench.bare_set), in a fresh process.

    Uses this interpreter when it has redis-py, else a peer venv's.
    """
    argv = [
        _python_with_redis_py(),
        "-m",
        "bench.bare_set",
        "--redis-url",
        redis_url,
        "--n",
        str(n),
    ]
    result = _run_json(argv, timeout=120 + n / 500)
    return float(result["set_per_s"])


def run_redis_benchmark_set(redis_url: str, n: int = 20_000) -> float | None:
    """SET/s of ``redis-benchmark -c 1`` (a C client, reply awaited); None without the tool.

    The figure shared/PEERS.md quotes as the physical reference; the gap to
    :func:`run_bare_set` is redis-py's own cost per command.
    """
    tool = shutil.which("redis-benchmark")
    if tool is None:
        return None
    parsed = urlparse(redis_url)
    argv = [tool, "-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379)]
    argv += ["-c", "1", "-n", str(n), "-t", "set", "--csv"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    for line in proc.stdout.splitlines():
        fields = [f.strip('"') for f in line.split(",")]
        if len(fields) > 1 and fields[0] == "SET":
            return float(fields[1])
    return None


# --- aggregation and the table ---


def median_rows(rounds: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Merge rounds of ``run_peers`` rows by name: each figure is its median over the rounds."""
    merged: dict[str, dict[str, Any]] = {}
    samples: dict[str, dict[str, list[float]]] = {}
    for rows in rounds:
        for row in rows:
            name = row["name"]
            base = merged.setdefault(name, {k: v for k, v in row.items() if k not in METRICS})
            if "error" in row:
                base.setdefault("errors", []).append(row["error"])
                continue
            base.update({k: v for k, v in row.items() if k not in METRICS and k != "error"})
            for metric in METRICS:
                if row.get(metric) is not None:
                    samples.setdefault(name, {}).setdefault(metric, []).append(float(row[metric]))
    for name, base in merged.items():
        per_metric = samples.get(name, {})
        base.pop("error", None)
        base["runs"] = len(per_metric.get("drain_per_s", []))
        for metric in METRICS:
            values = per_metric.get(metric)
            base[metric] = statistics.median(values) if values else None
    return list(merged.values())


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


# (heading, row key, width, decimals); None decimals: text, left-aligned
COLUMNS: tuple[tuple[str, str, int, int | None], ...] = (
    ("queue", "name", 18, None),
    ("version", "version", 8, None),
    ("enqueue/s", "enqueue_per_s", 10, 0),
    ("bulk/s", "bulk_enqueue_per_s", 9, 0),
    ("drain/s", "drain_per_s", 9, 0),
    ("cmds/job enq", "billed_cmds_enqueue_per_job", 12, 1),
    ("cmds/job proc", "billed_cmds_process_per_job", 13, 1),
    ("idle cmds/min", "idle_cmds_per_min", 13, 0),
    ("runs", "runs", 4, 0),
)


def _cell(row: dict[str, Any], key: str, width: int, digits: int | None) -> str:
    value = row.get(key)
    if digits is None:
        return f"{value or '?':<{width}}"
    return f"{_fmt(value, digits):>{width}}"


def format_table(
    rows: Sequence[dict[str, Any]],
    bare_set_per_s: float | None,
    redis_benchmark_per_s: float | None = None,
) -> str:
    """A fixed-width table of the peers and the bare SET rates."""
    header = " ".join(
        f"{title:<{width}}" if digits is None else f"{title:>{width}}"
        for title, _, width, digits in COLUMNS
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(" ".join(_cell(row, key, width, digits) for _, key, width, digits in COLUMNS))
    lines.append("-" * len(header))
    lines.append(
        f"{'bare SET, redis-py, 1 client, reply awaited':<48} {_fmt(bare_set_per_s):>9} /s"
    )
    if redis_benchmark_per_s is not None:
        lines.append(
            f"{'bare SET, redis-benchmark -c 1 (C client)':<48} {_fmt(redis_benchmark_per_s):>9} /s"
        )
    notes = [
        f"  {row['name']}: {row['drain_settings']}" for row in rows if row.get("drain_settings")
    ]
    notes += [f"  {row['name']}: FAILED {err}" for row in rows for err in row.get("errors", [])]
    if notes:
        lines += ["drain settings / errors:", *notes]
    return "\n".join(lines)


def drift_report(bare_per_round: Sequence[float], load_before: float, load_after: float) -> str:
    """Bare SET per round and the load average; a warning when the machine was not quiet.

    Other work on a 2-core machine moves every figure (PEERS.md: up to 2x); the
    rounds are interleaved so all queues suffer alike, but absolute figures from
    a busy machine are not comparable with another run.
    """
    per_round = ", ".join(f"{rate:,.0f}" for rate in bare_per_round)
    lines = [
        f"bare SET per round: {per_round} /s; load average {load_before:.1f} -> {load_after:.1f}"
    ]
    spread = max(bare_per_round) / min(bare_per_round) if bare_per_round else 1.0
    # the bench itself keeps both cores busy, so only the load before it started tells
    busy = load_before > (os.cpu_count() or 1) * 0.75
    if spread > 1.3 or busy:
        lines.append(
            "WARNING: the machine was busy or drifted (bare SET spread "
            f"{spread:.1f}x): trust ratios within this run, not absolute figures"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="interleaved rounds; figures are medians"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="idle window, first round only (0: skip)"
    )
    parser.add_argument("--bare-set-n", type=int, default=20_000)
    parser.add_argument("--only", help="comma-separated row names to run (default: all)")
    parser.add_argument("--json", type=Path, help="also write the merged rows and raw rounds here")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the Redis and the drivers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    drivers = DRIVERS
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")}
        drivers = tuple(d for d in DRIVERS if d.name in wanted or d.peer in wanted)
    for peer in sorted({d.peer for d in drivers}):
        peers_venvs.ensure_venv(peer)
    pinned = pin_client_process()
    load_before = os.getloadavg()[0]

    rounds: list[list[dict[str, Any]]] = []
    bare: list[float] = []
    c_bench: list[float] = []
    with redis_server() as url:
        for i in range(args.repeat):
            idle = args.idle_seconds if i == 0 else 0.0
            print(f"round {i + 1}/{args.repeat} on {url} ...", file=sys.stderr, flush=True)
            bare.append(run_bare_set(url, args.bare_set_n))
            if (rate := run_redis_benchmark_set(url, args.bare_set_n)) is not None:
                c_bench.append(rate)
            rounds.append(run_peers(url, args.jobs, idle_seconds=idle, drivers=drivers))
    rows = median_rows(rounds)
    bare_median = statistics.median(bare) if bare else None
    c_median = statistics.median(c_bench) if c_bench else None
    layout = "Redis on CPU 0, clients on CPU 1" if pinned else "no CPU pinning"
    print(f"{args.jobs} no-op jobs, median of {args.repeat} interleaved rounds, {layout}")
    print(format_table(rows, bare_median, c_median))
    print(drift_report(bare, load_before, os.getloadavg()[0]))
    if args.json:
        payload = {
            "jobs": args.jobs,
            "rows": rows,
            "rounds": rounds,
            "bare_set_per_s": bare,
            "redis_benchmark_set_per_s": c_bench,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 1 if any(row.get("errors") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
