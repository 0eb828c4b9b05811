"""Flow control per partner (issue 14): the concurrency and rate limits hold across several
processors at once, because the queue's own claim and settle scripts keep them."""

from __future__ import annotations

import pytest
from jobs_core import Settings

from tests.integration.partners.harness import CountingEndpoint, Partners, run_together


@pytest.mark.slow
def test_concurrency_per_partner_holds_across_four_processors(redis_url: str) -> None:
    """Four processors with pools of 8 and two slow partners limited to 2 at once each:
    neither partner ever sees more than 2 requests in flight, and each gets every webhook
    once."""
    a, b = CountingEndpoint(delay_s=0.15), CountingEndpoint(delay_s=0.15)
    p = Partners(redis_url, partner_concurrency=2)
    p.partner("partner-a", a)
    p.partner("partner-b", b)
    ids = {
        "a": [p.status("partner-a", a.url, f"esc-a{i}", version=None) for i in range(12)],
        "b": [p.status("partner-b", b.url, f"esc-b{i}", version=None) for i in range(12)],
    }
    processors = [p.processor(concurrency=8) for _ in range(4)]
    run_together(p, processors, seconds=2.5)
    for endpoint, key in ((a, "a"), (b, "b")):
        assert endpoint.max_in_flight == 2  # the limit is reached, never passed
        assert sorted(endpoint.ids) == sorted(f"msg_{i}" for i in ids[key])  # each once
    a.close()
    b.close()
    p.close()


def test_the_rate_per_partner_holds_across_processors(redis_url: str) -> None:
    """5 deliveries a second, burst of one second's worth: with the queue's clock standing
    still, four processors together deliver exactly 5; as it moves, never more than
    5 + 5 per second elapsed. Another partner is not limited by it."""
    slow, fast = CountingEndpoint(delay_s=0), CountingEndpoint(delay_s=0)
    p = Partners(redis_url, partner_rate_per_s=5, partner_concurrency=10)
    p.partner("partner-slow", slow)
    p.partner("partner-fast", fast)
    for i in range(40):
        p.status("partner-slow", slow.url, f"esc-s{i}", version=None)
    for i in range(5):
        p.status("partner-fast", fast.url, f"esc-f{i}", version=None)
    processors = [p.processor(concurrency=4) for _ in range(4)]
    run_together(p, processors, seconds=0.6, tick=False)
    assert slow.requests == 5
    assert fast.requests == 5
    start = p.clock.now_ms()
    run_together(p, processors, seconds=1.0)
    elapsed_s = (p.clock.now_ms() - start) / 1000
    assert 5 + 2 <= slow.requests <= 5 + 5 * elapsed_s + 1
    assert len(set(slow.ids)) == slow.requests  # none twice
    slow.close()
    fast.close()
    p.close()


def test_flow_settings_are_validated() -> None:
    from jobs_core import ConfigurationError

    with pytest.raises(ConfigurationError):
        Settings(partner_concurrency=0)
    with pytest.raises(ConfigurationError):
        Settings(circuit_open_s=100, circuit_open_cap_s=10)
    env = Settings.from_env({"JOBS_PARTNER_RATE_PER_S": "2.5", "JOBS_PARTNER_CONCURRENCY": "3"})
    assert (env.partner_rate_per_s, env.partner_concurrency) == (2.5, 3)


def test_an_extended_webhook_lease_keeps_its_partners_slot(redis_url: str) -> None:
    """A partner allowed one request at once: while a webhook's lease is extended past its
    first deadline, the partner's later webhooks wait; the next goes once it is settled."""
    p = Partners(redis_url, partner_concurrency=1)
    url = "https://partner-a.example/hooks"
    first_id = p.status("partner-a", url, "esc-1", version=None)
    [first] = p.queue.claim(16, lease_s=1)
    assert first.id == first_id
    p.queue.extend_lease(first, 10)
    p.clock.advance(2)  # past the first deadline, well within the extension
    second_id = p.status("partner-a", url, "esc-2", version=None)
    assert p.queue.claim(16) == []  # the partner's one slot is still taken
    p.queue.complete(first)
    p.clock.advance(0.01)
    assert [c.id for c in p.queue.claim(16)] == [second_id]
    p.close()
