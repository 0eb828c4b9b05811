"""What operators do with the queue: look (status, statistics, listings, search, the audit)
and act (replay, purge, cancel, run now, pause, resume). ``JobQueue`` inherits it.

Every method is one script, one round trip. Actions take the ``actor`` (who asked) and
write it, with the time, to the audit list and to each touched job's history, in the
same script as the action. Nothing here runs on the enqueue, claim or settle paths.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import Settings
from ..errors import InvalidArgumentError, UnknownJobTypeError
from ..models import Job, JobState, JobType, PartnerHealth, QueueStats, TypeStats
from . import scripts
from .backends import ScriptArg
from .keys import QueueKeys

STATS_SCAN_CAP = 100_000
LIST_SCAN_CAP = 10_000  # entries a listing or a search reads at most per set
MAX_PAGE = 500
ListState = Literal["ready", "scheduled", "running", "dead"]
LIST_STATES: tuple[ListState, ...] = ("ready", "scheduled", "running", "dead")
_STATE_OF: dict[str, JobState] = {
    "ready": JobState.QUEUED,
    "scheduled": JobState.SCHEDULED,
    "running": JobState.RUNNING,
    "dead": JobState.DEAD,
}
_ACTOR = re.compile(r"^[^\x00-\x1f\x7f]{1,80}$")
_ESCROW_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of a listing: ``total`` jobs matched among the entries read (a lower
    bound when ``complete`` is False: the state holds more than one scan reads)."""

    jobs: list[Job]
    total: int
    complete: bool


class AuditEntry(BaseModel):
    """One operator action: who, when, what, on which jobs (the first 100 ids) or type."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    at: datetime
    actor: str
    action: str
    count: int
    ids: list[str] = Field(default_factory=list)
    type: str | None = None
    partner: str | None = None  # enable_partner


def request_token() -> str:
    """A fresh token for one operator request: every resent copy of that request carries
    it, so the script can tell a copy it has applied already."""
    return secrets.token_hex(8)


def check_actor(actor: str) -> str:
    """``actor`` if it is 1 to 80 printable characters, else ``InvalidArgumentError``."""
    if not isinstance(actor, str) or not _ACTOR.match(actor):
        raise InvalidArgumentError("actor: 1 to 80 printable characters", field="actor")
    return actor


def _type(job_type: JobType | str) -> JobType:
    try:
        return JobType(job_type)
    except ValueError:
        raise UnknownJobTypeError(f"unknown job type {job_type!r}", field="type") from None


class QueueOperations:
    """The operator half of ``JobQueue`` (which provides these attributes)."""

    settings: Settings
    keys: QueueKeys

    if TYPE_CHECKING:  # provided by JobQueue; declared here for the type checker only

        def now_ms(self) -> int: ...

        def _run(
            self, script: scripts.Script, keys: Sequence[str], args: list[ScriptArg]
        ) -> Any: ...

    # -- look ------------------------------------------------------------------------------

    def get_job_status(self, job_id: str) -> Job | None:
        """The job as it stands now, or None once its record has expired (or never existed)."""
        reply = self._run(scripts.STATUS, [self.keys.timeline], [self.keys.prefix, job_id])
        raw, due = reply[0], reply[1]
        if raw is None:
            return None
        job = Job.from_record(raw)
        if job.state in (JobState.QUEUED, JobState.SCHEDULED):
            if len(reply) > 2:  # the partner gate holds it (its partner, or its escrow's order)
                return job.model_copy(
                    update={"state": JobState.HELD if reply[2] == "held" else JobState.SCHEDULED}
                )
            if due is None:
                return job.model_copy(update={"state": JobState.RUNNING})
            return self._waiting(job, math.ceil(float(due)))  # whole ms (keys.py)
        return job

    def _waiting(self, job: Job, due_ms: int) -> Job:
        state = JobState.QUEUED if due_ms <= self.now_ms() else JobState.SCHEDULED
        return job.model_copy(update={"state": state, "next_run_at": _dt(due_ms)})

    def get_queue_stats(self) -> QueueStats:
        """Depth per type (ready, scheduled, running, oldest ready, paused), dead-letter size,
        the oldest ready job of the types not paused."""
        now = self.now_ms()
        keys = [self.keys.timeline, self.keys.dead]
        reply = self._run(scripts.STATS, keys, [now, STATS_SCAN_CAP])
        dead, total, oldest = int(reply[0]), int(reply[1]), int(reply[2])
        by_type = {t: TypeStats() for t in JobType}
        rest = reply[4:]
        for i in range(0, len(rest), 6):
            name = str(rest[i])
            if name in JobType._value2member_map_:
                first, since = int(rest[i + 4]), int(rest[i + 5])
                by_type[JobType(name)] = TypeStats(
                    ready=int(rest[i + 1]),
                    scheduled=int(rest[i + 2]),
                    running=int(rest[i + 3]),
                    oldest_ready_age_s=max(0.0, (now - first) / 1000) if first >= 0 else 0.0,
                    paused_since=_dt(since) if since >= 0 else None,
                )
        return QueueStats(
            by_type=by_type,
            dead_letter=dead,
            oldest_ready_age_s=max(0.0, (now - oldest) / 1000) if oldest >= 0 else 0.0,
            truncated=total > STATS_SCAN_CAP,
            disabled_endpoints=int(reply[3]),
        )

    # -- partners (the webhook gate) -------------------------------------------------------

    def enable_partner(self, partner: str, *, actor: str = "unknown") -> int:
        """Re-enable a partner's endpoint (disabled by a 410) and close its circuit; its held
        webhooks are due now, their attempts untouched. Returns how many were held. The
        action is audited."""
        keys = [self.keys.timeline, self.keys.audit]
        args: list[ScriptArg] = [
            self.keys.prefix,
            partner,
            self.now_ms(),
            check_actor(actor),
            request_token(),
        ]
        _, moved = self._run(scripts.ENABLE_PARTNER, keys, args)
        return int(moved)

    def partner_health(self, partners: Sequence[str] = ()) -> list[PartnerHealth]:
        """The health of ``partners``, or of every disabled partner when none is named."""
        args: list[ScriptArg] = [self.keys.prefix, self.now_ms(), *partners]
        r = self._run(scripts.LIST_PARTNERS, [self.keys.timeline], args)
        return [PartnerHealth.from_reply(r[i : i + 7]) for i in range(0, len(r), 7)]

    def list_jobs(
        self,
        state: ListState,
        *,
        job_type: JobType | str | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> JobPage:
        """One page of the jobs in ``state`` (of ``job_type``, or all), ordered by due time
        (ready, scheduled), lease deadline (running) or time of death (dead)."""
        if state not in LIST_STATES:
            raise InvalidArgumentError(f"state: one of {', '.join(LIST_STATES)}", field="state")
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidArgumentError(f"limit: between 1 and {MAX_PAGE}", field="limit")
        if offset < 0:
            raise InvalidArgumentError("offset: 0 or more", field="offset")
        wanted = "" if job_type is None else _type(job_type).value
        args: list[ScriptArg] = [
            self.keys.prefix,
            self.now_ms(),
            state,
            wanted,
            "desc" if newest_first else "asc",
            offset,
            limit,
            LIST_SCAN_CAP,
        ]
        reply = self._run(scripts.LIST_JOBS, [self.keys.timeline, self.keys.dead], args)
        jobs = []
        rest = reply[2:]
        for i in range(0, len(rest), 2):
            job, score = Job.from_record(rest[i]), int(float(rest[i + 1]))
            jobs.append(self._listed(job, state, score))
        return JobPage(jobs, int(reply[0]), bool(int(reply[1])))

    def _listed(self, job: Job, where: str, score: int) -> Job:
        if where in ("ready", "scheduled", "waiting"):
            return self._waiting(job, score)
        return job.model_copy(update={"state": _STATE_OF[where]})

    def find_jobs(self, escrow_id: str, *, limit: int = 100) -> tuple[list[Job], bool]:
        """The waiting, running and dead jobs of one escrow (the payload's transaction id),
        oldest first, and whether the search read everything. Succeeded jobs are not
        indexed (that would cost the hot path): find those by job id."""
        if not isinstance(escrow_id, str) or not _ESCROW_ID.match(escrow_id):
            raise InvalidArgumentError(
                "escrowId: 1 to 128 letters, digits or _.:-", field="escrowId"
            )
        text = '"transaction_id":' + json.dumps(escrow_id)
        args: list[ScriptArg] = [self.keys.prefix, text, LIST_SCAN_CAP, limit]
        reply = self._run(scripts.FIND_JOBS, [self.keys.timeline, self.keys.dead], args)
        rest = reply[1:]
        jobs = [
            self._listed(Job.from_record(rest[i]), str(rest[i + 1]), int(float(rest[i + 2])))
            for i in range(0, len(rest), 3)
        ]
        jobs.sort(key=lambda j: (j.created_at, j.id))
        return jobs, bool(int(reply[0]))

    def dead_letter_by_type(self) -> dict[JobType, int]:
        """Dead-lettered jobs per type (every type, zeros too), for the console's overview;
        reads the dead records (up to ``LIST_SCAN_CAP``), so it is not the monitor's call."""
        reply = self._run(scripts.COUNT_DEAD, [self.keys.dead], [self.keys.prefix, LIST_SCAN_CAP])
        counts = dict.fromkeys(JobType, 0)
        rest = reply[1:]
        for i in range(0, len(rest), 2):
            if str(rest[i]) in JobType._value2member_map_:
                counts[JobType(str(rest[i]))] = int(rest[i + 1])
        return counts

    def get_dead_letter_jobs(self, limit: int = 100, *, offset: int = 0) -> list[Job]:
        """Dead-lettered jobs, newest first, with their last error."""
        reply = self._run(scripts.LIST_DEAD, [self.keys.dead], [self.keys.prefix, offset, limit])
        return [Job.from_record(raw) for raw in reply]

    def audit_log(self, limit: int = 50, *, offset: int = 0) -> list[AuditEntry]:
        """The newest operator actions first (``keys.AUDIT_LIMIT`` are kept)."""
        reply = self._run(scripts.LIST_AUDIT, [self.keys.audit], [offset, limit])
        entries = []
        for raw in reply:
            data = json.loads(raw)
            ids = data.get("ids")
            entries.append(
                AuditEntry(
                    at=_dt(int(data["at"])),
                    actor=str(data["actor"]),
                    action=str(data["action"]),
                    count=int(data.get("count") or 0),
                    ids=[str(i) for i in ids] if isinstance(ids, list) else [],
                    type=data.get("type"),
                    partner=data.get("partner"),
                )
            )
        return entries

    # -- act -------------------------------------------------------------------------------

    def replay_dead_letter(
        self, job_ids: Sequence[str] | None = None, *, limit: int = 100, actor: str = "unknown"
    ) -> list[str]:
        """Queue dead-lettered jobs again with fresh attempts: the given ids, or the oldest
        ``limit``. Returns the ids replayed."""
        args: list[ScriptArg] = [
            self.keys.prefix,
            self.now_ms(),
            limit,
            check_actor(actor),
            request_token(),
            *(job_ids or []),
        ]
        keys = [self.keys.timeline, self.keys.dead, self.keys.audit]
        return [str(i) for i in self._run(scripts.REPLAY_DEAD, keys, args)]

    def purge_dead_letter(
        self, job_ids: Sequence[str] | None = None, *, limit: int = 1000, actor: str = "unknown"
    ) -> int:
        """Delete dead-lettered jobs for good: the given ids, or the oldest ``limit``."""
        args: list[ScriptArg] = [
            self.keys.prefix,
            limit,
            self.now_ms(),
            check_actor(actor),
            *(job_ids or []),
        ]
        return int(self._run(scripts.PURGE_DEAD, [self.keys.dead, self.keys.audit], args))

    def cancel_job(self, job_id: str, *, actor: str) -> None:
        """Take a waiting job (ready or scheduled) out of the queue; its record says
        ``cancelled`` for the retention. ``JobStateError`` if it runs or has finished,
        ``JobNotFoundError`` if there is no such job."""
        self._act_on_waiting(job_id, actor, "cancel")

    def run_job_now(self, job_id: str, *, actor: str) -> None:
        """Make a waiting job (scheduled, or backing off) due at once. ``JobStateError`` if
        it runs or has finished, ``JobNotFoundError`` if there is no such job."""
        self._act_on_waiting(job_id, actor, "run-now")

    def _act_on_waiting(self, job_id: str, actor: str, action: str) -> None:
        args: list[ScriptArg] = [
            self.keys.prefix,
            job_id,
            self.now_ms(),
            self.settings.finished_ttl_s,
            check_actor(actor),
            action,
        ]
        reply = self._run(scripts.ACT_ON_WAITING, [self.keys.timeline, self.keys.audit], args)
        scripts.check_action_code(reply, job_id, action)

    def pause_type(self, job_type: JobType | str, *, actor: str) -> bool:
        """Stop claiming ``job_type`` (its jobs wait, counted); False if it was paused."""
        return self._pause(job_type, actor, "pause")

    def resume_type(self, job_type: JobType | str, *, actor: str) -> bool:
        """Claim ``job_type`` again; False if it was not paused."""
        return self._pause(job_type, actor, "resume")

    def _pause(self, job_type: JobType | str, actor: str, action: str) -> bool:
        jtype = _type(job_type).value
        args: list[ScriptArg] = [
            self.keys.pause_member(jtype),
            self.now_ms(),
            check_actor(actor),
            action,
            jtype,
            request_token(),
        ]
        return bool(int(self._run(scripts.PAUSE, [self.keys.timeline, self.keys.audit], args)))


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
