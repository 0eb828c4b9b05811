"""The Lua scripts: loading, running (EVALSHA, EVAL on NOSCRIPT), resending, return codes.

Each ``lua/<name>.lua`` is one atomic queue operation and opens with a header
listing its KEYS, ARGV and return value. A call is one Redis command. A call that
fails transiently (connection, timeout, 5xx) is resent a few times with short
delays; every script is written so a resend cannot double its effect, whichever copy
arrives first: a resend may run before a late original (TCP back-off, a slow HTTPS
edge). The claim script is told when it is a resend, so that even a resend that took
nothing fences its token against the late original.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from ..errors import (
    BackendError,
    JobNotFoundError,
    JobStateError,
    LeaseLostError,
    ScriptNotLoadedError,
)
from .backends.base import Backend, ScriptArg

RESEND_DELAYS_S = (0.05, 0.2, 0.5)


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str
    read_only: bool = False  # run as EVALSHA_RO / EVAL_RO: a read-only token may run it

    @classmethod
    def load(cls, name: str, *, read_only: bool = False, prelude: str | None = None) -> Script:
        """``lua/<name>.lua``, after ``lua/<prelude>.lua`` (shared functions) when given."""
        lua = Path(__file__).parent / "lua"  # not importlib.resources: its import costs ms
        source = lua.joinpath(f"{name}.lua").read_text("utf-8")
        if prelude is not None:
            source = lua.joinpath(f"{prelude}.lua").read_text("utf-8") + "\n" + source
        sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324
        return cls(name, source, sha, read_only)


ENQUEUE = Script.load("enqueue_jobs")
CLAIM = Script.load("claim_jobs", prelude="partner_gate")
SETTLE = Script.load("settle_jobs", prelude="partner_gate")
EXTEND = Script.load("extend_leases")
# The scripts that only read run read-only, so the monitor needs no write rights.
STATUS = Script.load("job_status", read_only=True)
STATS = Script.load("queue_stats", read_only=True)
LIST_DEAD = Script.load("list_dead", read_only=True)
REPLAY_DEAD = Script.load("replay_dead")
PURGE_DEAD = Script.load("purge_dead")
LIST_JOBS = Script.load("list_jobs", read_only=True)
FIND_JOBS = Script.load("find_jobs", read_only=True)
ACT_ON_WAITING = Script.load("act_on_waiting_job")
PAUSE = Script.load("pause_type", prelude="audited_request")
LIST_AUDIT = Script.load("list_audit", read_only=True)
COUNT_DEAD = Script.load("count_dead", read_only=True)
ENABLE_PARTNER = Script.load("enable_partner", prelude="audited_request")
LIST_PARTNERS = Script.load("list_partners", read_only=True)

CLAIM_HEADER = 4  # claim_jobs returns {reaped, dead_lettered, next due, oom, records...}


def run(
    backend: Backend,
    script: Script,
    keys: Sequence[str],
    args: list[ScriptArg],
    *,
    retries: int = 2,
    resend_flag_index: int | None = None,
) -> Any:
    """Run ``script`` as one command; resend up to ``retries`` times on transient errors.

    ``resend_flag_index`` names the argument that is set to ``"1"`` on a resend.
    """
    attempt = 0
    while True:
        try:
            try:
                if script.read_only:
                    return backend.evalsha_ro(script.sha, keys, args)
                return backend.evalsha(script.sha, keys, args)
            except ScriptNotLoadedError:
                if script.read_only:
                    return backend.eval_ro(script.source, keys, args)
                return backend.eval(script.source, keys, args)
        except BackendError as exc:
            if not exc.transient or attempt >= min(retries, len(RESEND_DELAYS_S)):
                raise
            time.sleep(RESEND_DELAYS_S[attempt])
            attempt += 1
            if resend_flag_index is not None:
                args[resend_flag_index] = "1"


class SettleCode(IntEnum):
    """Per-job codes returned by ``settle_jobs.lua`` and ``extend_leases.lua``."""

    LEASE_LOST = 0
    SETTLED = 1
    ALREADY_SETTLED = 2  # a resend of a settle that was applied


def check_settle_code(code: int, job_id: str) -> None:
    """The one place that turns a settle code into an exception."""
    if SettleCode(int(code)) is SettleCode.LEASE_LOST:
        raise LeaseLostError(job_id)


class ActionCode(IntEnum):
    """Codes returned by ``act_on_waiting_job.lua`` (with the job's state)."""

    NOT_FOUND = 0
    DONE = 1
    WRONG_STATE = 2


def check_action_code(reply: Sequence[Any], job_id: str, action: str) -> None:
    """The one place that turns an action's code into an exception."""
    code = ActionCode(int(reply[0]))
    if code is ActionCode.NOT_FOUND:
        raise JobNotFoundError(job_id)
    if code is ActionCode.WRONG_STATE:
        raise JobStateError(job_id, str(reply[1]), action)
