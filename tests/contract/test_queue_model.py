"""A hypothesis state machine: the queue against a plain-Python model of it.

Invariants after every step: each job is in exactly one place (one timeline entry or
the dead-letter set, or finished), its state and attempts match the model, and the
counts of ``get_queue_stats`` match the model's.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from jobs_core import ClaimedJob, JobQueue, JobState, JobType, ManualClock, RedisBackend, Settings
from jobs_core.queue import specs as queue_module

LEASE_S = 30
TYPES = [JobType.AUDIT_LOG_CREATED, JobType.SEND_RELEASE_EMAIL]
PAYLOADS = {
    JobType.AUDIT_LOG_CREATED: {"transactionId": "e", "action": "a", "actor": "x"},
    JobType.SEND_RELEASE_EMAIL: {
        "transactionId": "e",
        "recipientEmail": "u@example.com",
        "amount": 1,
    },
}
_REDIS_URL: dict[str, str] = {}


@dataclass
class ModelJob:
    type: JobType
    state: JobState
    attempts: int
    due_ms: int  # when waiting
    max_attempts: int
    lease_deadline_ms: int = 0


class QueueMachine(RuleBasedStateMachine):
    backend_kind = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.raw: redis.Redis
        if self.backend_kind == "memory":
            server = fakeredis.FakeServer()
            self.raw = fakeredis.FakeRedis(server=server, decode_responses=True)
            backend = RedisBackend(
                fakeredis.FakeRedis(server=server, decode_responses=True),
                name="memory",
                read_only_scripts=False,
            )
        else:
            self.raw = redis.Redis.from_url(_REDIS_URL["url"], decode_responses=True)
            backend = RedisBackend(self.raw)
        self.queue = JobQueue(
            backend,
            Settings(namespace=f"m-{uuid.uuid4().hex[:8]}", backoff_cap_s=20),
            clock=self.clock,
        )
        self.jobs: dict[str, ModelJob] = {}
        self.held: dict[str, ClaimedJob] = {}

    @initialize()
    def start(self) -> None:
        pass

    @rule(
        jtype=st.sampled_from(TYPES),
        delay=st.sampled_from([0, 0, 5]),
        max_attempts=st.integers(1, 3),
    )
    def enqueue(self, jtype: JobType, delay: int, max_attempts: int) -> None:
        job_id = self.queue.enqueue_job(
            jtype, PAYLOADS[jtype], delay_s=delay, max_attempts=max_attempts
        )
        state = JobState.SCHEDULED if delay else JobState.QUEUED
        self.jobs[job_id] = ModelJob(
            jtype, state, 0, self.clock.now_ms() + delay * 1000, max_attempts
        )

    @rule(limit=st.integers(1, 6), only=st.sampled_from([None, *TYPES]))
    def claim(self, limit: int, only: JobType | None) -> None:
        now = self.clock.now_ms()
        had_expired = any(
            j.state is JobState.RUNNING and j.lease_deadline_ms <= now for j in self.jobs.values()
        )
        claimed = self.queue.claim(limit, types=None if only is None else [only], lease_s=LEASE_S)
        for c in claimed:
            job = self.jobs[c.id]
            if job.state is JobState.RUNNING:  # its lease expired: reaped and claimed again at once
                assert job.lease_deadline_ms <= now and c.attempt == job.attempts + 2
                job.attempts += 1
                job.state, job.due_ms = JobState.QUEUED, now
        self._sync_expired()
        eligible = [
            j
            for j in self.jobs.values()
            if j.state in (JobState.QUEUED, JobState.SCHEDULED)
            and j.due_ms <= now
            and (only is None or j.type is only)
        ]
        assert len(claimed) <= limit
        for c in claimed:
            job = self.jobs[c.id]
            assert job.state in (JobState.QUEUED, JobState.SCHEDULED) and job.due_ms <= now, c.id
            assert only is None or c.job.type is only
            assert c.attempt == job.attempts + 1
            job.state = JobState.RUNNING
            job.lease_deadline_ms = now + LEASE_S * 1000
            self.held[c.id] = c
        if (
            not had_expired
        ):  # reaping only scans part of the timeline, so counts are exact only without it
            assert len(claimed) == min(limit, len(eligible))

    def _sync_expired(self) -> None:
        """Leases past their deadline may have been reaped: take the queue's word, within bounds."""
        for job_id, job in self.jobs.items():
            if job.state is JobState.RUNNING and job.lease_deadline_ms <= self.clock.now_ms():
                actual = self.queue.get_job_status(job_id)
                assert actual is not None
                if actual.state is not JobState.RUNNING:
                    assert actual.attempts == job.attempts + 1
                    job.attempts += 1
                    job.state = (
                        JobState.DEAD if job.attempts >= job.max_attempts else JobState.QUEUED
                    )
                    assert actual.state is job.state
                    job.due_ms = self.clock.now_ms() if job.state is JobState.QUEUED else job.due_ms
                    if job.state is JobState.QUEUED:
                        job.due_ms = int(actual.next_run_at.timestamp() * 1000)
                    self.held.pop(job_id, None)

    def _live_holdings(self) -> list[str]:
        return sorted(
            i
            for i in self.held
            if self.jobs[i].state is JobState.RUNNING
            and self.jobs[i].lease_deadline_ms > self.clock.now_ms()
        )

    @precondition(lambda self: bool(self._live_holdings()))
    @rule(data=st.data(), outcome=st.sampled_from(["done", "retry", "dead", "release"]))
    def settle(self, data: st.DataObject, outcome: str) -> None:
        live = self._live_holdings()
        job_id = live[data.draw(st.integers(0, len(live) - 1))]
        claimed = self.held.pop(job_id)
        job = self.jobs[job_id]
        if outcome == "done":
            self.queue.complete(claimed)
            job.state, job.attempts = JobState.SUCCEEDED, claimed.attempt
        elif outcome == "release":
            self.queue.release(claimed)
            job.state = JobState.QUEUED
        else:
            state = self.queue.fail(claimed, "err", permanent=outcome == "dead", delay_s=3)
            job.attempts = claimed.attempt
            dead = outcome == "dead" or claimed.attempt >= job.max_attempts
            job.state = JobState.DEAD if dead else JobState.SCHEDULED
            job.due_ms = self.clock.now_ms() + 3000
            assert state is job.state

    @rule(seconds=st.sampled_from([1, 4, 31]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @precondition(lambda self: any(j.state is JobState.DEAD for j in self.jobs.values()))
    @rule()
    def replay_all(self) -> None:
        replayed = self.queue.replay_dead_letter(limit=1000)
        assert sorted(replayed) == sorted(
            i for i, j in self.jobs.items() if j.state is JobState.DEAD
        )
        for job_id in replayed:
            job = self.jobs[job_id]
            job.state, job.attempts, job.due_ms = JobState.QUEUED, 0, self.clock.now_ms()

    @invariant()
    def each_job_in_exactly_one_place(self) -> None:
        timeline = self.raw.zrange(self.queue.keys.timeline, 0, -1)
        in_timeline = Counter_of(m.split("|")[1] for m in timeline)
        dead = set(self.raw.zrange(self.queue.keys.dead, 0, -1))
        for job_id, job in self.jobs.items():
            places = in_timeline.get(job_id, 0) + (job_id in dead)
            assert places == (0 if job.state is JobState.SUCCEEDED else 1), (job_id, job)
            assert (job_id in dead) == (job.state is JobState.DEAD)

    @invariant()
    def states_and_counts_match(self) -> None:
        now = self.clock.now_ms()
        stats = self.queue.get_queue_stats()
        expected = {t: [0, 0, 0] for t in JobType}
        for job_id, job in self.jobs.items():
            actual = self.queue.get_job_status(job_id)
            assert actual is not None
            model_state = job.state
            if model_state in (JobState.QUEUED, JobState.SCHEDULED):
                model_state = JobState.QUEUED if job.due_ms <= now else JobState.SCHEDULED
            expired = job.state is JobState.RUNNING and job.lease_deadline_ms <= now
            if not expired:
                assert actual.state is model_state, (job_id, job, actual.state)
                assert actual.attempts == job.attempts
            if model_state is JobState.QUEUED:
                expected[job.type][0] += 1
            elif model_state is JobState.SCHEDULED:
                expected[job.type][1] += 1
            elif model_state is JobState.RUNNING:
                expected[job.type][2] += 1
        got = {t: [s.ready, s.scheduled, s.running] for t, s in stats.by_type.items()}
        assert got == expected
        assert stats.dead_letter == sum(j.state is JobState.DEAD for j in self.jobs.values())


def Counter_of(items: Iterator[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


class RealRedisQueueMachine(QueueMachine):
    backend_kind = "redis"


SETTINGS = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestQueueModelMemory = QueueMachine.TestCase
TestQueueModelMemory.settings = SETTINGS
TestQueueModelRedis = RealRedisQueueMachine.TestCase
TestQueueModelRedis.settings = SETTINGS


@pytest.fixture(autouse=True)
def _real_redis_url(redis_url: str) -> None:
    _REDIS_URL["url"] = redis_url


@pytest.fixture(autouse=True)
def _deterministic_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random ids order ties (same due time) differently on each run; hypothesis must replay."""
    counter = itertools.count()
    monkeypatch.setattr(
        queue_module, "new_job_id", lambda now_ms: f"{now_ms:013d}{next(counter):013d}"
    )
