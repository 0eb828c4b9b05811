"""``escrow-jobs jobs list|show|cancel|run-now``, ``queue pause|resume`` and ``--version``,
in-process on the embedded Redis; each action audited with the actor."""

from __future__ import annotations

import json
from typing import Any

from escrow_jobs_cli import __version__
from escrow_jobs_cli.cli import EXIT_BAD_INPUT, EXIT_DECLINED, EXIT_NOT_FOUND, EXIT_OK
from jobs_core import JobQueue, JobState, Settings

from tests.unit.cli.conftest import RunCli, TtyInput

EMAIL = "send_release_email"


def _queue(env: dict[str, str]) -> JobQueue:
    return JobQueue.from_settings(Settings.from_env(env))


def _email(escrow: str = "esc-1") -> dict[str, Any]:
    return {"transactionId": escrow, "recipientEmail": "bob@example.com", "amount": 100}


def test_version(run_cli: RunCli) -> None:
    run = run_cli("--version")
    assert run.code == EXIT_OK and run.out.strip() == f"escrow-jobs {__version__}"


def test_jobs_list_by_state_type_and_escrow(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    queue = _queue(memory_env)
    ids = [queue.enqueue_job(EMAIL, _email(f"esc-{i}")) for i in range(3)]
    queue.enqueue_job(EMAIL, _email("esc-9"), delay_s=600)
    run = run_cli("jobs", "list", "--state", "ready", "--type", EMAIL, "--limit", "2")
    assert run.code == EXIT_OK, run.err
    assert "1-2 of 3 ready send_release_email jobs (oldest first)" in run.out
    data = json.loads(run_cli("jobs", "list", "--json", "--newest").out)
    assert data["total"] == 3 and {j["id"] for j in data["jobs"]} == set(ids)
    scheduled = json.loads(run_cli("jobs", "list", "--state", "scheduled", "--json").out)
    assert [j["transactionId"] for j in scheduled["jobs"]] == ["esc-9"]
    found = json.loads(run_cli("jobs", "list", "--escrow", "esc-1", "--json").out)
    assert [j["id"] for j in found["jobs"]] == [ids[1]]
    assert run_cli("jobs", "list", "--state", "finished").code == EXIT_BAD_INPUT
    assert run_cli("jobs", "list", "--type", "nope").code == EXIT_BAD_INPUT


def test_jobs_show_prints_every_attempt(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    queue = _queue(memory_env)
    job_id = queue.enqueue_job(EMAIL, _email(), max_attempts=2)
    queue.fail(queue.claim(1)[0], "SES refused bob@example.com", delay_s=0)
    queue.fail(queue.claim(1)[0], "still refused", permanent=True)
    run = run_cli("jobs", "show", job_id)
    assert run.code == EXIT_OK
    assert "attempts and actions:" in run.out and "retried" in run.out and "dead" in run.out
    assert "b***@example.com" in run.out and "bob@example.com" not in run.out
    view = json.loads(run_cli("jobs", "show", job_id, "--json").out)
    assert [e["kind"] for e in view["history"]] == ["retried", "dead"]
    assert all(e["processor"] for e in view["history"])


def test_cancel_asks_first_and_run_now(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    queue = _queue(memory_env)
    env = {**memory_env, "ESCROW_JOBS_ACTOR": "erin"}
    waiting = queue.enqueue_job(EMAIL, _email(), delay_s=600)
    assert run_cli("jobs", "cancel", waiting, env=env).code == EXIT_BAD_INPUT  # no terminal
    declined = run_cli("jobs", "cancel", waiting, env=env, stdin=TtyInput("n\n"))
    assert declined.code == EXIT_DECLINED
    assert run_cli("jobs", "run-now", waiting, env=env).code == EXIT_OK
    assert queue.get_job_status(waiting).state is JobState.QUEUED  # type: ignore[union-attr]
    assert run_cli("jobs", "cancel", waiting, "--yes", env=env).code == EXIT_OK
    assert queue.get_job_status(waiting).state is JobState.CANCELLED  # type: ignore[union-attr]
    again = run_cli("jobs", "cancel", waiting, "--yes", "--json", env=env)
    assert again.code == EXIT_DECLINED
    assert json.loads(again.out)["error"]["state"] == "cancelled"
    assert run_cli("jobs", "run-now", "no-such-job", env=env).code == EXIT_NOT_FOUND
    assert [(e.actor, e.action) for e in queue.audit_log()] == [
        ("erin", "cancel"),
        ("erin", "run-now"),
    ]


def test_queue_pause_and_resume(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    queue = _queue(memory_env)
    queue.enqueue_job(EMAIL, _email())
    assert run_cli("queue", "pause", EMAIL).out.strip() == f"paused {EMAIL}"
    assert "was paused already" in run_cli("queue", "pause", EMAIL).out
    assert queue.claim(10) == []
    stats = run_cli("stats").out
    assert next(x for x in stats.splitlines() if x.startswith(EMAIL)).split()[-1] == "paused"
    assert run_cli("queue", "resume", EMAIL, "--json").code == EXIT_OK
    assert len(queue.claim(10)) == 1
    assert run_cli("queue", "pause", "nope").code == EXIT_BAD_INPUT
    actors = {e.actor for e in queue.audit_log()}
    assert len(actors) == 1 and next(iter(actors)).endswith("(cli)")


def test_tables_fit_the_terminal_width(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    queue = _queue(memory_env)
    job_id = queue.enqueue_job(EMAIL, _email())
    queue.fail(queue.claim(1)[0], "a long error " * 30, permanent=True)
    env = {**memory_env, "COLUMNS": "90"}
    for argv in (("dlq", "list"), ("jobs", "list", "--state", "dead"), ("stats",)):
        out = run_cli(*argv, env=env).out
        assert max(len(line) for line in out.splitlines()) <= 90, argv
    shown = run_cli("jobs", "show", job_id, env=env).out
    attempts = shown.split("attempts and actions:\n")[1].split("payload:")[0]
    assert max(len(line) for line in attempts.splitlines()) <= 90
