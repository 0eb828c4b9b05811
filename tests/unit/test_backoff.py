from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jobs_core import backoff_delay


@given(st.integers(min_value=1, max_value=200), st.integers(min_value=0, max_value=2**32))
def test_delay_is_within_the_exponential_ceiling(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, base_s=2, cap_s=300, rand=random.Random(seed))
    assert 0 <= delay <= min(300, 2 * 2 ** (attempt - 1))


def test_full_jitter_spreads_delays() -> None:
    rand = random.Random(7)
    delays = {round(backoff_delay(5, base_s=2, cap_s=300, rand=rand), 3) for _ in range(50)}
    assert len(delays) > 40


def test_attempt_starts_at_one() -> None:
    with pytest.raises(ValueError):
        backoff_delay(0, base_s=1, cap_s=1)


class _Top(random.Random):
    """Draws the top of the jitter range: the delay is then the ceiling itself."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_the_ceiling_doubles_with_each_attempt_up_to_the_cap() -> None:
    ceilings = [backoff_delay(n, base_s=2, cap_s=300, rand=_Top()) for n in range(1, 12)]
    assert ceilings == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
    assert backoff_delay(500, base_s=2, cap_s=300, rand=_Top()) == 300  # no overflow


@given(st.integers(min_value=1, max_value=7), st.integers(min_value=0, max_value=2**32))
def test_later_attempts_can_wait_longer_than_earlier_ones_could(attempt: int, seed: int) -> None:
    """Below the cap, the delay reaches past the previous attempt's ceiling half the time."""
    rand = random.Random(seed)
    delays = [backoff_delay(attempt + 1, base_s=2, cap_s=300, rand=rand) for _ in range(200)]
    previous_ceiling = 2 * 2 ** (attempt - 1)
    beyond = sum(d > previous_ceiling for d in delays)
    assert 50 <= beyond <= 150  # half the range lies past it: 100 expected
