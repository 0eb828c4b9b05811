"""Small HTTP helpers shared by the Resend and webhook clients."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

__all__ = ["MAX_RETRY_AFTER_S", "parse_retry_after"]

# A Retry-After longer than this is capped: the job's own backoff and attempts bound the rest.
MAX_RETRY_AFTER_S = 3600.0


def parse_retry_after(value: str | None, *, now_s: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), capped.

    >>> parse_retry_after("7")
    7.0
    >>> parse_retry_after("garbage") is None
    True
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time() if now_s is None else now_s
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER_S)
