"""Child-process entry points for the multi-process queue tests (importable by spawn)."""

from __future__ import annotations

import json
import sys
import time

from jobs_core import JobQueue, Outcome, RedisBackend, Settings


def drain(url: str, namespace: str, batch: int, idle_polls: int) -> list[str]:
    """Claim and complete until the queue stays empty; return the ids this process completed."""
    queue = JobQueue(RedisBackend.from_url(url, timeout_s=5), Settings(namespace=namespace))
    done: list[str] = []
    empty = 0
    while empty < idle_polls:
        claimed = queue.claim(batch)
        if not claimed:
            empty += 1
            time.sleep(0.02)
            continue
        empty = 0
        results = queue.settle([Outcome(c, "done") for c in claimed])
        done += [c.id for c, (_, code) in zip(claimed, results, strict=True) if code == 1]
    return done


def claim_and_hang(url: str, namespace: str, count: int, lease_s: float) -> None:
    """Claim jobs, report them on stdout, then hang until killed (a processor that died)."""
    queue = JobQueue(RedisBackend.from_url(url, timeout_s=5), Settings(namespace=namespace))
    claimed = queue.claim(count, lease_s=lease_s)
    print(json.dumps([c.model_dump(mode="json") for c in claimed]), flush=True)
    time.sleep(3600)


if __name__ == "__main__":
    claim_and_hang(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
