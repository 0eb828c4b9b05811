"""``escrow-jobs`` against a real Redis: every command, bulk replay with its progress bar,
the real handlers in ``drain``, an unreachable Redis, and the Upstash REST backend."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

from jobs_core import JobQueue, JobState

from tests.support.redis_server import free_port
from tests.support.upstash_server import UpstashServer

from .conftest import RunCli, TtyInput

RELEASE = {"transactionId": "esc-1", "recipientEmail": "seller@example.com", "amount": 12345}


def _kill(queue: JobQueue, count: int, error: str = "permanent failure") -> list[str]:
    ids = queue.enqueue_jobs(
        [
            ("audit_log_created", {"transactionId": f"esc-{i}", "action": "a", "actor": "u"})
            for i in range(count)
        ]
    )
    remaining = count
    while remaining:
        claimed = queue.claim(min(remaining, 500), types=["audit_log_created"])
        for job in claimed:
            queue.fail(job, error, permanent=True)
        remaining -= len(claimed)
    return ids


def test_stats_enqueue_and_show(run_cli: RunCli, queue: JobQueue) -> None:
    created = run_cli("enqueue", "send_release_email", "--payload", json.dumps(RELEASE), "--json")
    assert created.code == 0, created.err
    job_id = json.loads(created.out)["id"]
    assert queue.get_job_status(job_id) is not None

    stats = json.loads(run_cli("stats", "--json").out)
    assert stats["backend"] == "redis"
    assert stats["byType"]["send_release_email"]["ready"] == 1
    assert stats["ready"] == 1

    shown = run_cli("jobs", "show", job_id)
    assert shown.code == 0
    assert "s***@example.com" in shown.out
    assert "seller@example.com" not in shown.out
    assert "seller@example.com" in run_cli("jobs", "show", job_id, "--show-pii").out


def test_dlq_commands_and_bulk_replay_with_progress(run_cli: RunCli, queue: JobQueue) -> None:
    ids = _kill(queue, 250, error="SES refused bob@example.com")
    listed = run_cli("dlq", "list", "--limit", "5")
    assert listed.code == 0
    assert "1-5 of 250 dead-lettered jobs" in listed.out
    assert "b***@example.com" in listed.out

    shown = json.loads(run_cli("dlq", "show", ids[0], "--json").out)
    assert (shown["id"], shown["state"]) == (ids[0], "dead")

    replay = run_cli("dlq", "replay", "--all", "--batch-size", "100", "--progress")
    assert replay.code == 0, replay.err
    assert "replayed 250 job(s)" in replay.out
    drawn = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", replay.err)
    assert "0/250" in drawn and "100/250" in drawn and "200/250" in drawn  # batches of 100
    assert "250/250 replayed" in drawn

    stats = queue.get_queue_stats()
    assert (stats.dead_letter, stats.ready) == (0, 250)
    job = queue.get_job_status(ids[-1])
    assert job is not None and job.state is JobState.QUEUED and job.attempts == 0


def test_json_replay_has_no_progress_bar(run_cli: RunCli, queue: JobQueue) -> None:
    ids = _kill(queue, 3)
    run = run_cli("dlq", "replay", *ids, "--json", "--progress")
    assert json.loads(run.out)["replayed"] == 3
    assert run.err == ""


def test_purge_asks_first(run_cli: RunCli, queue: JobQueue) -> None:
    _kill(queue, 4)
    assert run_cli("dlq", "purge", stdin=TtyInput("no\n")).code == 1
    assert run_cli("dlq", "purge").code == 2  # not a terminal, no --yes: refuses
    assert queue.get_queue_stats().dead_letter == 4
    run = run_cli("dlq", "purge", stdin=TtyInput("y\n"))
    assert run.code == 0
    assert "purged 4 job(s)" in run.out
    assert queue.get_queue_stats().dead_letter == 0


def test_drain_runs_the_real_handlers(
    run_cli: RunCli, queue: JobQueue, cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **cli_env,
        "EMAIL_PROVIDER": "mailbox",
        "MAILBOX_DIR": str(tmp_path / "mailbox"),
        "LOCAL_STATE_DIR": str(tmp_path / "state"),
    }
    email_id = queue.enqueue_job("send_release_email", RELEASE)
    bad_id = queue.enqueue_job(
        "webhook_escrow_status_changed",
        {
            "transactionId": "esc-1",
            "amount": 100,
            "webhookUrl": "https://10.0.0.1/hook",  # private address: refused for good
            "webhookSecretRef": "partner",
            "status": "released",
        },
    )
    run = run_cli("drain", "--limit", "10", "--json", env=env)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    outcomes = {j["id"]: j["outcome"] for j in report["jobs"]}
    assert outcomes[email_id] == "succeeded"
    assert outcomes[bad_id] == "dead_lettered"

    [mail] = list((tmp_path / "mailbox").glob("*.eml"))
    message = message_from_bytes(mail.read_bytes(), policy=policy.default)
    assert message["To"] == "seller@example.com"
    assert "$123.45" in message.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    assert queue.get_job_status(email_id).state is JobState.SUCCEEDED  # type: ignore[union-attr]
    assert "job succeeded" in run.err  # the processor's log went to stderr, not stdout


def test_drain_only_the_named_types(run_cli: RunCli, queue: JobQueue, tmp_path: Path) -> None:
    email_id = queue.enqueue_job("send_release_email", RELEASE)
    run = run_cli("drain", "--type", "audit_log_created")
    assert run.code == 0
    assert "no job was due" in run.out
    assert queue.get_job_status(email_id).state is JobState.QUEUED  # type: ignore[union-attr]


def test_unreachable_redis_exits_3_with_a_message(run_cli: RunCli) -> None:
    env = {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "JOBS_REDIS_RETRIES": "0"}
    for argv in (["stats"], ["dlq", "list"], ["jobs", "show", "x"], ["drain"]):
        run = run_cli(*argv, env=env)
        assert run.code == 3, (argv, run.err)
        assert run.err.startswith("error: cannot reach Redis")
        assert "Traceback" not in run.err
    as_json = run_cli("--json", "stats", env=env)
    body = json.loads(as_json.out)
    assert body["exitCode"] == 3
    assert body["error"]["kind"] == "redis_unreachable"
    assert body["error"]["backend"] == "redis"


def test_console_script_exit_codes_in_a_subprocess(redis_url: str) -> None:
    script = Path(sys.executable).with_name("escrow-jobs")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS", "UPSTASH", "JOBS"))}
    down = subprocess.run(
        [str(script), "stats"],
        env={**base, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 3
    assert down.stderr.startswith("error: cannot reach Redis")
    assert "Traceback" not in down.stderr

    bad = subprocess.run(
        [str(script), "enqueue", "send_release_email", "--payload", "{"],
        env={**base, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert "not valid JSON" in bad.stderr

    ok = subprocess.run(
        [str(script), "--json", "stats"],
        env={**base, "REDIS_URL": redis_url, "JOBS_NAMESPACE": "cli-subprocess"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["namespace"] == "cli-subprocess"


def test_upstash_backend_from_the_environment(
    run_cli: RunCli, upstash_server: UpstashServer
) -> None:
    upstash_server.reset()
    env = {
        "UPSTASH_REDIS_REST_URL": upstash_server.url,
        "UPSTASH_REDIS_REST_TOKEN": upstash_server.token,
        "JOBS_NAMESPACE": "cli-upstash",
    }
    created = run_cli("--json", "enqueue", "send_release_email", "--payload",
                      json.dumps(RELEASE), env=env)  # fmt: skip
    assert created.code == 0, created.err
    stats = json.loads(run_cli("stats", "--json", env=env).out)
    assert stats["backend"] == "upstash"
    assert stats["byType"]["send_release_email"]["ready"] >= 1

    wrong = run_cli("stats", env={**env, "UPSTASH_REDIS_REST_TOKEN": "s3cr3t-wrong-token"})
    assert wrong.code == 3
    assert wrong.err.startswith("error: Redis failed: [upstash]")
    assert "s3cr3t" not in wrong.err  # the token is never echoed
