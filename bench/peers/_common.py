"""What every peer driver shares: arguments, the watchdog, billing, the JSON output.

Drivers run with their peer's own venv, so this module (and bench.redis_env,
reached through the repository root) uses only the standard library.

Importing this module moves fd 1 onto stderr: whatever a library prints goes
there, and :func:`emit` alone writes the one JSON object to the real stdout.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.redis_env import billed_delta, command_stats, flushall, pin_client_process

__all__ = [
    "Billing",
    "emit",
    "figures",
    "flushall",
    "parse_args",
    "per_job",
    "per_s",
    "start_watchdog",
]

_REAL_STDOUT = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

# Seconds an idle worker runs before the idle window opens (start-up traffic excluded).
IDLE_WARMUP_S = 2.0


def parse_args(
    description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--redis-url", required=True, help="a server started by bench.redis_env (it is flushed)"
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument(
        "--idle-seconds", type=float, default=10.0, help="0 skips the idle measurement"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="hard limit for the whole driver"
    )
    if extra:
        extra(parser)
    args = parser.parse_args()
    pin_client_process()
    start_watchdog(args.timeout)
    return args


def _kill_children() -> None:
    for child in multiprocessing.active_children():
        child.kill()
    if os.getpgrp() == os.getpid():  # our own group (the runner starts us in a new session)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.killpg(os.getpgrp(), signal.SIGTERM)


def start_watchdog(timeout: float) -> None:
    """After ``timeout`` seconds, kill our worker processes and exit with 124.

    A thread, not SIGALRM: rq's SimpleWorker uses SIGALRM for job time limits.
    """

    def fire() -> None:
        print(f"driver: hard timeout after {timeout:.0f}s", file=sys.stderr, flush=True)
        _kill_children()
        os._exit(124)

    timer = threading.Timer(timeout, fire)
    timer.daemon = True
    timer.start()


class Billing:
    """Commands Redis executed between :meth:`start` and :meth:`stop`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._before: dict[str, int] = {}

    def start(self) -> None:
        self._before = command_stats(self.url)

    def stop(self) -> int:
        return billed_delta(self._before, command_stats(self.url))


def per_s(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def per_job(commands: int, jobs: int) -> float:
    return round(commands / jobs, 2)


def idle_per_min(commands: int, seconds: float) -> float:
    return round(commands * 60.0 / seconds, 1)


def figures(
    n: int,
    *,
    seconds: tuple[float, float | None, float],
    commands: tuple[int, int],
    idle: float | None,
    versions: tuple[str, str],
    drain_settings: str,
) -> dict[str, Any]:
    """A driver's JSON object: ``seconds`` are (enqueue, bulk or None, drain),
    ``commands`` (enqueue, process), ``versions`` (the peer's, redis-py's)."""
    enqueue_s, bulk_s, drain_s = seconds
    return {
        "enqueue_per_s": per_s(n, enqueue_s),
        "bulk_enqueue_per_s": None if bulk_s is None else per_s(n, bulk_s),
        "drain_per_s": per_s(n, drain_s),
        "billed_cmds_enqueue_per_job": per_job(commands[0], n),
        "billed_cmds_process_per_job": per_job(commands[1], n),
        "idle_cmds_per_min": idle,
        "jobs": n,
        "version": versions[0],
        "redis_py": versions[1],
        "drain_settings": drain_settings,
    }


def emit(result: dict[str, Any]) -> None:
    """Write the driver's one JSON object to the real stdout."""
    _REAL_STDOUT.write(json.dumps(result) + "\n")
    _REAL_STDOUT.flush()


def now() -> float:
    return time.perf_counter()
