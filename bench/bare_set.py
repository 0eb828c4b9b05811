"""The physical limit for one Python client: redis-py, a loop of SETs, each reply awaited.

Any queue that needs at least one round trip per job cannot enqueue faster than
this on the same server and machine.

    python -m bench.bare_set --redis-url redis://127.0.0.1:PORT/0 --n 20000

prints one JSON object: ``{"set_per_s": ..., "redis_py": ..., "n": ...}``.
"""

from __future__ import annotations

import argparse
import json
import time


def bare_set_rate(redis_url: str, n: int = 20_000, *, warmup: int = 1_000) -> float:
    """SET commands per second from one redis-py client waiting for each reply."""
    import redis  # imported here: the runner may lack redis-py and run us with a peer's venv

    client = redis.Redis.from_url(redis_url)
    try:
        for _ in range(warmup):
            client.set("bench:bare_set", b"x")
        start = time.perf_counter()
        for _ in range(n):
            client.set("bench:bare_set", b"x")
        elapsed = time.perf_counter() - start
        client.delete("bench:bare_set")
    finally:
        client.close()
    return n / elapsed


def main() -> None:
    from importlib.metadata import version

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--n", type=int, default=20_000)
    args = parser.parse_args()
    rate = bare_set_rate(args.redis_url, args.n)
    print(json.dumps({"set_per_s": round(rate, 1), "redis_py": version("redis"), "n": args.n}))


if __name__ == "__main__":
    main()
