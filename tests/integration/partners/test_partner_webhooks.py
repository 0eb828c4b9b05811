"""Partner webhooks as a product (issue 14), against real local HTTP endpoints, a real
Redis and the real webhook handlers; the queue's time moved by its injectable clock.

Outage and schedule, 410 and re-enable, the circuit breaker, ordering per escrow. The
limits across several processors at once are in ``test_flow_control.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jobs_core import JobState
from jobs_core.backoff import STANDARD_WEBHOOKS_SCHEDULE_S

from tests.integration.partners.harness import Partners, versions
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def test_an_endpoint_down_for_a_while_gets_every_webhook_once_on_the_schedule(
    redis_url: str, receiver: WebhookReceiver
) -> None:
    """Down for four attempts (503), back for the fifth: each webhook arrives once, and no
    attempt comes before its step of the Standard Webhooks schedule (5 s, 5 min, 30 min,
    2 h), jitter ±10 %."""
    p = Partners(redis_url, circuit_failures=100)  # the schedule alone (circuit: below)
    p.partner("partner-a", receiver)
    processor = p.processor()
    ids = [p.status("partner-a", receiver.url, f"esc-{i}") for i in range(3)]
    receiver.respond_next(4 * 3, 503)
    p.run(processor)
    assert len(receiver.deliveries) == 3  # the first attempts, at once
    for step in STANDARD_WEBHOOKS_SCHEDULE_S[:4]:
        seen = len(receiver.deliveries)
        p.clock.advance(step * 0.9 - 0.1)  # before the earliest jitter: nothing is due
        p.run(processor)
        assert len(receiver.deliveries) == seen
        p.clock.advance(step * 0.2 + 0.2)  # past the latest: each is retried once
        p.run(processor)
        assert len(receiver.deliveries) == seen + 3
    assert sorted(d.webhook_id for d in receiver.accepted) == sorted(f"msg_{i}" for i in ids)
    assert all(p.attempts(i) == 5 for i in ids)
    assert [d.status for d in receiver.deliveries].count(503) == 12
    assert p.queue.get_queue_stats().dead_letter == 0
    p.close()


def test_retry_after_is_honoured_over_the_schedule(
    redis_url: str, receiver: WebhookReceiver
) -> None:
    p = Partners(redis_url)
    p.partner("partner-a", receiver)
    processor = p.processor()
    p.status("partner-a", receiver.url, "esc-1")
    receiver.respond_next(1, 429, {"Retry-After": "120"})
    p.run(processor)
    p.clock.advance(119)
    p.run(processor)
    assert len(receiver.deliveries) == 1  # not at 5 s: the partner asked for two minutes
    p.clock.advance(2)
    p.run(processor)
    assert len(receiver.accepted) == 1
    p.close()


def test_410_disables_the_partner_and_holds_its_webhooks_until_re_enabled(
    redis_url: str, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = WebhookReceiver().start()
    p = Partners(redis_url)
    p.partner("partner-a", receiver)
    p.partner("partner-b", other)
    processor = p.processor()
    first = p.status("partner-a", receiver.url, "esc-1")
    receiver.respond_next(1, 410)
    p.run(processor)
    [health] = p.queue.partner_health()
    assert (health.partner, health.disabled, health.held) == ("partner-a", "HTTP 410 Gone", 1)
    assert p.queue.get_job_status(first).state is JobState.HELD  # type: ignore[union-attr]

    later = [p.status("partner-a", receiver.url, f"esc-{i}") for i in range(2, 6)]
    b = p.status("partner-b", other.url, "esc-9")
    p.clock.advance(3 * 86_400)  # days pass: nothing is attempted, nothing dead-lettered
    p.run(processor)
    assert len(receiver.deliveries) == 1
    assert [d.webhook_id for d in other.accepted] == [f"msg_{b}"]  # other partners go on
    assert p.queue.get_queue_stats().dead_letter == 0
    assert p.queue.get_queue_stats().disabled_endpoints == 1
    assert p.queue.partner_health()[0].held == 5
    assert all(p.attempts(i) == 0 for i in later)  # held without spending attempts

    from jobs_core.queue import operations

    monkeypatch.setattr(operations, "request_token", lambda: "enable-1")
    assert p.queue.enable_partner("partner-a", actor="ops") == 5
    [entry] = [e for e in p.queue.audit_log() if e.action == "enable_partner"]
    assert (entry.actor, entry.partner, entry.count) == ("ops", "partner-a", 5)
    p.run(processor)
    assert sorted(d.webhook_id for d in receiver.accepted) == sorted(
        f"msg_{i}" for i in [first, *later]
    )
    assert p.queue.partner_health() == []
    assert p.queue.get_queue_stats().disabled_endpoints == 0
    assert p.attempts(first) == 2 and all(p.attempts(i) == 1 for i in later)

    # Gone again; then a late copy of that enable request arrives: it changes nothing.
    receiver.respond_next(1, 410)
    p.status("partner-a", receiver.url, "esc-7")
    p.run(processor)
    assert p.queue.get_queue_stats().disabled_endpoints == 1
    monkeypatch.setattr(operations, "request_token", lambda: "enable-1")
    assert p.queue.enable_partner("partner-a", actor="ops") == 5  # the first copy's answer
    assert p.queue.get_queue_stats().disabled_endpoints == 1
    assert [e.action for e in p.queue.audit_log()].count("enable_partner") == 1
    other.stop()
    p.close()


def test_an_open_circuit_holds_one_partner_while_another_goes_on(redis_url: str) -> None:
    """Partner A fails every delivery; partner B is healthy. After 5 consecutive failures
    A's circuit opens: its other webhooks wait (no requests, no attempts) while all of B's
    are delivered; after the open period one probe goes, and its success closes the circuit."""
    with WebhookReceiver() as a, WebhookReceiver() as b:
        p = Partners(redis_url, partner_concurrency=1)
        p.partner("partner-a", a)
        p.partner("partner-b", b)
        processor = p.processor()
        a.respond_next(1000, 503)
        a_ids = [p.status("partner-a", a.url, f"esc-a{i}", version=None) for i in range(20)]
        b_ids = [p.status("partner-b", b.url, f"esc-b{i}", version=None) for i in range(20)]
        for _ in range(4):  # 24 s: the first retries fall due within the 30 s open period
            p.run(processor)
            p.clock.advance(6)
        p.run(processor)
        assert len(a.deliveries) == 5  # the five that opened the circuit, then none
        assert len(b.accepted) == 20  # every one of B's, meanwhile
        attempts = sorted(p.attempts(i) for i in a_ids)
        assert attempts == [0] * 15 + [1] * 5  # only the five failures spent attempts
        health = p.queue.partner_health(["partner-a", "partner-b"])
        assert health[0].circuit_open_until is not None and health[0].consecutive_failures == 5
        assert health[1].circuit_open_until is None

        with a._lock:
            a._actions.clear()  # A is back
        p.clock.advance(10)  # past the open period: one probe goes, and closes the circuit
        p.run(processor)
        assert sorted(d.webhook_id for d in a.accepted) == sorted(f"msg_{i}" for i in a_ids)
        assert p.queue.partner_health(["partner-a"])[0].consecutive_failures == 0
        assert len(b.accepted) == 20 and len(b.deliveries) == 20
        assert all(f"msg_{i}" in {d.webhook_id for d in b.accepted} for i in b_ids)
        p.close()


def test_an_escrows_status_webhooks_arrive_in_version_order(
    redis_url: str, receiver: WebhookReceiver
) -> None:
    """Version 1 fails twice; versions 2 and 3 wait (no request, no attempt) until it is
    delivered, while another escrow's status goes at once. Each delivery carries the
    escrow's version."""
    with WebhookReceiver() as b:
        p = Partners(redis_url)
        p.partner("partner-a", receiver)
        p.partner("partner-b", b)
        processor = p.processor()
        v1, v2, v3 = (p.status("partner-a", receiver.url, "esc-1", version=v) for v in (1, 2, 3))
        other = p.status("partner-b", b.url, "esc-2", version=7)  # another escrow: no wait
        receiver.respond_next(2, 500)
        p.run(processor)
        assert [d.payload["data"]["version"] for d in receiver.deliveries] == [1]
        assert versions(b) == [7] and p.attempts(other) == 1
        assert (p.attempts(v2), p.attempts(v3)) == (0, 0)
        p.clock.advance(6)
        p.run(processor)
        assert [d.payload["data"]["version"] for d in receiver.deliveries] == [1, 1]
        assert (p.attempts(v2), p.attempts(v3)) == (0, 0)  # v1 is still retrying
        p.clock.advance(330)
        p.run(processor)
        assert versions(receiver) == [1, 2, 3]
        assert (p.attempts(v1), p.attempts(v2), p.attempts(v3)) == (3, 1, 1)
        p.close()


def test_a_dead_lettered_status_lets_the_next_one_go(
    redis_url: str, receiver: WebhookReceiver
) -> None:
    p = Partners(redis_url)
    p.partner("partner-a", receiver)
    processor = p.processor()
    v1 = p.status("partner-a", receiver.url, "esc-1", version=1)
    p.status("partner-a", receiver.url, "esc-1", version=2)
    receiver.respond_next(1, 400)  # permanent: v1 is dead-lettered
    p.run(processor)
    p.run(processor)
    assert versions(receiver) == [2]
    assert [j.id for j in p.queue.get_dead_letter_jobs()] == [v1]
    assert p.queue.replay_dead_letter([v1]) == [v1]  # a replay goes on its own (unordered)
    p.run(processor)
    assert versions(receiver) == [2, 1]
    p.close()


def test_status_says_held_or_waiting(redis_url: str, receiver: WebhookReceiver) -> None:
    p = Partners(redis_url)
    p.partner("partner-a", receiver)
    processor = p.processor()
    v1 = p.status("partner-a", receiver.url, "esc-1", version=1)
    v2 = p.status("partner-a", receiver.url, "esc-1", version=2)
    receiver.respond_next(1, 410)
    p.run(processor)
    other = p.status("partner-a", receiver.url, "esc-2", version=1)
    p.run(processor)
    states = {i: p.queue.get_job_status(i).state for i in (v1, v2, other)}  # type: ignore[union-attr]
    # v1 met the 410; esc-2's status is held with it; v2 waits for v1 (its escrow's order)
    assert states == {v1: JobState.HELD, v2: JobState.SCHEDULED, other: JobState.HELD}
    p.close()
