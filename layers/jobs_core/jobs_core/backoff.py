"""Retry delays: exponential backoff with full jitter, as a pure function."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    rand: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = the first retry).

    Full jitter (uniform in ``[0, min(cap, base * 2**(attempt-1))]``) spreads
    retries of a failed dependency so they do not return in lockstep.

    >>> backoff_delay(1, base_s=2, cap_s=300, rand=random.Random(0)) <= 2
    True
    """
    if attempt < 1:
        raise ValueError("attempt starts at 1")
    ceiling = min(cap_s, base_s * (2 ** min(attempt - 1, 62)))
    return (rand or random).uniform(0.0, ceiling)
