"""Every Redis key name of the queue, in one place.

All keys of one queue share the hash tag ``{<namespace>}`` so every Lua script
touches a single Redis Cluster slot (Upstash requires the same). Scripts that
build per-job key names at run time (the ids come out of the timeline) receive
``prefix`` and append the suffixes below; nothing else in the package spells a
key name.

Layout (``P`` = ``{namespace}:``):

- ``P timeline``   sorted set; member ``<type>|<id>`` scored by the time the job is
  due (ready when score <= now, scheduled otherwise), and ``<type>|<id>|<token>``
  for a leased job, scored by *minus* its lease deadline. One range ``[-now, +inf]``
  then yields expired leases first (before any backlog), due jobs next, and the next
  job due: one probe finds all three. An enqueue scores a job a quarter of a
  millisecond before it is due (``enqueued_score``); every other path scores whole
  milliseconds, so a claim can tell a job still as its enqueue left it (claim hints).
- ``P dead``       sorted set of dead-lettered job ids scored by the time they died.
- ``P job:<id>``   the job record (JSON string); finished records carry a TTL. A job
  enqueued with a dedupe key has the id derived from the key (``ids.dedupe_job_id``),
  so its record is the dedupe key too. (``P dedupe:<k>`` -> id: earlier versions' dedupe
  keys, only read with ``Settings.legacy_dedupe_keys``, for one window after an upgrade.)
- ``P claim:<t>``  written by a resent claim: the ids it took under token ``t`` (''
  for none), so a late original of the same claim (which meets the resend's fence member,
  below) returns them and leases nothing.
- ``P audit``      list of operator actions (JSON, newest first, ``AUDIT_LIMIT`` kept).

The timeline also holds a few members that are not jobs (their "type" starts with ``~``
or ``!``):

- ``~pause|<type>`` per paused job type, scored by minus the time it was paused: below
  every due time, so the claim's one range read (which it makes anyway) sees the pauses
  first and skips those types. Pausing costs the idle poll nothing.
- ``~active|``, the processor-active marker, scored by minus its expiry (ms): live at
  ``now`` while its score is below ``-(now + 0.5)``, so a live marker is outside the
  claim's range. A processor
  sets it in its claim; an enqueuer reads it in the ZADD that queues its jobs (``LT CH``):
  knowing whether to kick a processor costs no command of its own.
- ``!fence|<token>|<expiry ms>``, written by a resent claim at minus its ``now``, where
  the original's scan begins: a late original that reads no record (every job hinted)
  meets it first. A later claim removes it once expired.
- ``~disabled|<partner>`` per partner whose endpoint is disabled, scored ``DISABLED_SCORE``
  (below every other score: outside the claim's range), so the monitor's one read of the
  timeline counts them too.

The partner gate (``lua/partner_gate.lua``; gated job types only):

- ``P route``         hash: job id -> ``<partner>\t<escrow>\t<version>\t<flag>``.
- ``P partner:<p>``   hash: the partner's health and flow state (disabled, fails, opens,
  open_until, tat (the rate's next slot), wake).
- ``P inflight:<p>``  sorted set: the partner's leased job ids by lease deadline.
- ``P held:<p>``      sorted set: ``<type>|<id>`` waiting for the partner (out of the timeline).
- ``P chain:<e>``     sorted set: escrow ``e``'s pending status webhooks by escrow version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

JOB = "job:"
CLAIM = "claim:"
PAUSE = "~pause"  # the pause member's "type" part (the scripts spell it too)
ACTIVE_MEMBER = "~active|"  # the processor-active marker (the scripts spell it too)
DISABLED_SCORE = -1e15  # a disabled partner's member: below any -deadline (scripts spell it)
AUDIT_LIMIT = 1000
PARTNER = "partner:"
HELD = "held:"
INFLIGHT = "inflight:"


FENCE = "!fence"  # a resent claim's fence member's "type" part (the scripts spell it too)


def enqueued_score(due_ms: int) -> str:
    """The timeline score an enqueue gives a job due at ``due_ms``: a quarter of a
    millisecond earlier, a fraction no other path writes (the claim's hint check)."""
    return f"{due_ms - 1}.75"


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """Key names of one queue namespace."""

    namespace: str
    # Spelled once: every script call names them.
    prefix: str = field(init=False, repr=False, compare=False)
    timeline: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prefix = "{" + self.namespace + "}:"
        object.__setattr__(self, "prefix", prefix)  # frozen: set once, here
        object.__setattr__(self, "timeline", prefix + "timeline")

    @property
    def dead(self) -> str:
        return self.prefix + "dead"

    @property
    def audit(self) -> str:
        return self.prefix + "audit"

    @staticmethod
    def pause_member(job_type: str) -> str:
        """The timeline member that marks ``job_type`` paused."""
        return f"{PAUSE}|{job_type}"

    def partner(self, partner: str) -> str:
        return self.prefix + PARTNER + partner

    def held(self, partner: str) -> str:
        return self.prefix + HELD + partner

    def job(self, job_id: str) -> str:
        return self.prefix + JOB + job_id
