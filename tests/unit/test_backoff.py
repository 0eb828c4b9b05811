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
