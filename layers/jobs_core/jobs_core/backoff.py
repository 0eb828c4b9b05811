"""Retry delays: exponential backoff with full jitter, and retry policies per job type; pure."""

from __future__ import annotations

import random
from dataclasses import dataclass


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


# The Standard Webhooks retry schedule: after the first attempt, 5 s, 5 min, 30 min, 2 h,
# 5 h, 10 h, 14 h, 20 h and 24 h (about three days in all), each with jitter.
STANDARD_WEBHOOKS_SCHEDULE_S: tuple[float, ...] = (
    5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and when one job type is retried.

    ``schedule_s`` (when given) is the delay after attempt 1, 2, ...; each delay is
    spread by ``jitter`` (a fraction: 0.1 = ±10 %). Without a schedule the delay is
    exponential with full jitter (``backoff_delay`` with ``base_s`` and ``cap_s``).
    A handler's ``delay_s`` (a partner's ``Retry-After``) overrides either.

    >>> policy = RetryPolicy(max_attempts=10, schedule_s=(5, 300), jitter=0.1)
    >>> 4.5 <= policy.delay(1, random.Random(0)) <= 5.5
    True
    """

    max_attempts: int
    base_s: float = 2.0
    cap_s: float = 300.0
    schedule_s: tuple[float, ...] = ()
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_attempts > 100:
            raise ValueError("max_attempts must be between 1 and 100")
        if self.base_s < 0 or self.cap_s < 0 or any(d < 0 for d in self.schedule_s):
            raise ValueError("delays must not be negative")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter is a fraction in [0, 1)")

    def delay(self, attempt: int, rand: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1 = the first)."""
        if attempt < 1:
            raise ValueError("attempt starts at 1")
        if not self.schedule_s:
            return backoff_delay(attempt, base_s=self.base_s, cap_s=self.cap_s, rand=rand)
        base = self.schedule_s[min(attempt, len(self.schedule_s)) - 1]
        return base * (rand or random).uniform(1 - self.jitter, 1 + self.jitter)

    def describe(self) -> str:
        """A one-line summary for docs and the CLI."""
        if self.schedule_s:
            steps = ", ".join(_duration(s) for s in self.schedule_s[: self.max_attempts - 1])
            return f"{self.max_attempts} attempts: then {steps} (±{self.jitter:.0%})"
        return (
            f"{self.max_attempts} attempts, exponential from {self.base_s:g} s "
            f"up to {self.cap_s:g} s, full jitter"
        )


STANDARD_WEBHOOKS_POLICY = RetryPolicy(
    max_attempts=len(STANDARD_WEBHOOKS_SCHEDULE_S) + 1,
    schedule_s=STANDARD_WEBHOOKS_SCHEDULE_S,
    jitter=0.1,
)

# Job types whose default is not the queue-wide policy (``JOBS_MAX_ATTEMPTS`` and
# ``JOBS_BACKOFF_*``: 3 attempts from 2 s, which fits email, Stripe and audit rows).
DEFAULT_RETRY_POLICIES: dict[str, RetryPolicy] = {
    "webhook_escrow_status_changed": STANDARD_WEBHOOKS_POLICY,
    # Its emails are sent once (the effects ledger); its retries only redo the webhook.
    "notify_dispute_resolved": STANDARD_WEBHOOKS_POLICY,
}


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"
