"""The CLI's commands on the embedded Redis, its parser, its errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from escrow_jobs_cli.cli import EXIT_BAD_INPUT, EXIT_DECLINED, EXIT_NOT_FOUND, EXIT_OK
from escrow_jobs_cli.parser import build_parser
from jobs_core import JobQueue, JobState, Settings

from .conftest import RunCli, TtyInput

RELEASE = '{"transactionId": "esc-1", "recipientEmail": "bob@example.com", "amount": 10000}'


def _queue(env: dict[str, str]) -> JobQueue:
    return JobQueue.from_settings(Settings.from_env(env))


def _dead(env: dict[str, str], count: int) -> list[str]:
    queue = _queue(env)
    ids = queue.enqueue_jobs(
        [
            (
                "send_release_email",
                {"transactionId": f"esc-{i}", "recipientEmail": "b@x.io", "amount": 100},
            )
            for i in range(count)
        ]
    )
    for claimed in queue.claim(count, types=["send_release_email"]):
        queue.fail(claimed, "boom for b@x.io", permanent=True)
    return ids


def test_enqueue_then_show_with_redaction(run_cli: RunCli) -> None:
    run = run_cli("--json", "enqueue", "send_release_email", "--payload", RELEASE)
    assert run.code == EXIT_OK, run.err
    created = json.loads(run.out)
    assert created["type"] == "send_release_email"
    assert created["state"] == "queued"

    shown = run_cli("jobs", "show", created["id"], "--json")
    view = json.loads(shown.out)
    assert view["payload"]["recipient_email"] == "b***@example.com"
    assert "bob@example.com" not in shown.out

    whole = run_cli("jobs", "show", created["id"], "--show-pii")
    assert "bob@example.com" in whole.out
    assert "state:" in whole.out


def test_enqueue_options_dedupe_delay_attempts(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    first = json.loads(
        run_cli(
            "--json",
            "enqueue",
            "send_release_email",
            "--payload",
            RELEASE,
            "--dedupe-key",
            "k-1",
            "--delay",
            "60",
            "--max-attempts",
            "5",
            "--correlation-id",
            "req-9",
        ).out
    )
    again = json.loads(
        run_cli(
            "--json", "enqueue", "send_release_email", "--payload", RELEASE, "--dedupe-key", "k-1"
        ).out
    )
    assert again["id"] == first["id"]
    job = _queue(memory_env).get_job_status(first["id"])
    assert job is not None
    assert job.state is JobState.SCHEDULED
    assert (job.max_attempts, job.correlation_id, job.dedupe_key) == (5, "req-9", "k-1")


def test_enqueue_payload_from_file_and_stdin(
    run_cli: RunCli, tmp_path: Path, memory_env: dict[str, str]
) -> None:
    path = tmp_path / "p.json"
    path.write_text(RELEASE)
    assert run_cli("enqueue", "send_release_email", "--payload", f"@{path}").code == EXIT_OK
    import io

    run = run_cli("enqueue", "send_release_email", "--payload", "-", stdin=io.StringIO(RELEASE))
    assert run.code == EXIT_OK
    assert _queue(memory_env).get_queue_stats().ready == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["enqueue", "no_such_type", "--payload", "{}"], "unknown job type 'no_such_type'"),
        (["enqueue", "send_release_email", "--payload", "{nope"], "is not valid JSON"),
        (["enqueue", "send_release_email", "--payload", "[1]"], "must be a JSON object"),
        (["enqueue", "send_release_email", "--payload", "@/no/such/file"], "cannot read"),
        (
            ["enqueue", "send_release_email", "--payload", '{"transactionId": "e"}'],
            "payload.amount: Field required",
        ),
        (
            ["enqueue", "send_release_email", "--payload", RELEASE, "--delay", "-1"],
            "--delay: must be between",
        ),
        (
            ["enqueue", "send_release_email", "--payload", RELEASE, "--dedupe-key", "a b"],
            "dedupe_key",
        ),
        (["enqueue", "send_release_email"], "--payload"),
        (["dlq", "replay"], "give the job ids to replay, or --all"),
        (["dlq", "replay", "x", "--all"], "not both"),
        (["dlq", "list", "--limit", "0"], "must be between 1 and 1000"),
        (["stats", "--interval", "0"], "at least 0.1"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
        (["drain", "--type", "nope"], "unknown job type"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(
    run_cli: RunCli, argv: list[str], message: str
) -> None:
    run = run_cli(*argv)
    assert run.code == EXIT_BAD_INPUT
    assert message in run.err
    assert run.err.startswith("error: ")
    assert "Traceback" not in run.err
    assert run.out == ""


def test_bad_input_as_json(run_cli: RunCli) -> None:
    run = run_cli("enqueue", "send_release_email", "--payload", '{"transactionId": "e"}', "--json")
    assert run.code == EXIT_BAD_INPUT
    body = json.loads(run.out)
    assert body["exitCode"] == EXIT_BAD_INPUT
    assert body["error"]["kind"] == "bad_input"
    assert body["error"]["field"].startswith("payload.")
    assert run.err == ""


def test_configuration_error_exits_2(run_cli: RunCli) -> None:
    run = run_cli("stats", env={"JOBS_BACKEND": "bogus"})
    assert run.code == EXIT_BAD_INPUT
    assert "configuration error" in run.err


def test_memory_backend_is_announced(run_cli: RunCli) -> None:
    run = run_cli("stats", env={})
    assert run.code == EXIT_OK
    assert "no Redis configured" in run.err


def test_stats_table_and_json(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    _queue(memory_env).enqueue_job(
        "audit_log_created", {"transactionId": "e", "action": "a", "actor": "u"}
    )
    _dead(memory_env, 2)
    table = run_cli("stats")
    assert table.code == EXIT_OK
    line = next(x for x in table.out.splitlines() if x.startswith("audit_log_created"))
    assert line.split()[1:4] == ["1", "0", "0"]
    assert "dead letter: 2" in table.out

    data = json.loads(run_cli("stats", "--json").out)
    audit = data["byType"]["audit_log_created"]
    assert (audit["ready"], audit["scheduled"], audit["running"]) == (1, 0, 0)
    assert audit["paused"] is False and 0 <= audit["oldestReadyAgeS"] < 60
    assert (data["ready"], data["deadLetter"], data["backend"]) == (1, 2, "memory")
    assert data["namespace"] == memory_env["JOBS_NAMESPACE"]


def test_stats_watch_refreshes_count_times(run_cli: RunCli) -> None:
    run = run_cli("stats", "--watch", "--count", "3", "--json")
    lines = run.out.strip().splitlines()
    assert run.code == EXIT_OK
    assert len(lines) == 3
    assert all(json.loads(x)["deadLetter"] == 0 for x in lines)
    text = run_cli("stats", "--watch", "--count", "2", "--interval", "0.5")
    assert text.out.count("refreshing every 0.5s") == 2


def test_not_found_exits_4(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    run = run_cli("jobs", "show", "01NOPE")
    assert run.code == EXIT_NOT_FOUND
    assert "not found" in run.err
    live = _queue(memory_env).enqueue_job(
        "audit_log_created", {"transactionId": "e", "action": "a", "actor": "u"}
    )
    run = run_cli("dlq", "show", live)
    assert run.code == EXIT_NOT_FOUND
    assert "its state is queued" in run.err


def test_dlq_list_show_replay_purge(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    ids = _dead(memory_env, 3)
    listed = json.loads(run_cli("dlq", "list", "--json").out)
    assert listed["total"] == 3
    assert {j["id"] for j in listed["jobs"]} == set(ids)
    assert all(j["lastError"] == "boom for b***@x.io" for j in listed["jobs"])
    assert "1-3 of 3" in run_cli("dlq", "list").out

    shown = json.loads(run_cli("dlq", "show", ids[0], "--json").out)
    assert shown["state"] == "dead"

    replay = json.loads(run_cli("dlq", "replay", ids[0], "01UNKNOWN", "--json").out)
    assert replay == {"replayed": 1, "ids": [ids[0]], "notFound": ["01UNKNOWN"]}
    assert _queue(memory_env).get_queue_stats().dead_letter == 2

    declined = run_cli("dlq", "purge", stdin=TtyInput("n\n"))
    assert declined.code == EXIT_DECLINED
    assert "Delete 2 dead-lettered job(s) for good? [y/N]" in declined.err
    assert _queue(memory_env).get_queue_stats().dead_letter == 2

    refused = run_cli("dlq", "purge")  # stdin is not a terminal and no --yes
    assert refused.code == EXIT_BAD_INPUT
    assert "--yes" in refused.err

    purged = run_cli("dlq", "purge", ids[1], stdin=TtyInput("y\n"))
    assert (purged.code, purged.out.strip()) == (
        EXIT_OK,
        "purged 1 job(s) from the dead-letter queue",
    )
    assert json.loads(run_cli("dlq", "purge", "--yes", "--json").out) == {"purged": 1}
    assert _queue(memory_env).get_queue_stats().dead_letter == 0
    assert "empty" in run_cli("dlq", "purge", "--yes").out


def test_replay_only_unknown_ids_exits_4(run_cli: RunCli) -> None:
    run = run_cli("dlq", "replay", "01A", "01B")
    assert run.code == EXIT_NOT_FOUND
    assert "not in the dead-letter queue: 01A, 01B" in run.out


def test_global_options_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--json", "--show-pii", "dlq", "list"])
    after = parser.parse_args(["dlq", "list", "--json", "--show-pii"])
    for args in (before, after):
        assert args.json is True
        assert args.show_pii is True
    assert not hasattr(parser.parse_args(["stats"]), "json")


def test_redis_url_and_namespace_options_override_the_environment(run_cli: RunCli) -> None:
    run = run_cli("--namespace", "other-ns", "stats", "--json")
    assert json.loads(run.out)["namespace"] == "other-ns"


def test_ctrl_c_ends_a_watch_quietly(memory_env: dict[str, str]) -> None:
    import io

    from escrow_jobs_cli.main import main

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    out, err = io.StringIO(), io.StringIO()
    code = main(["stats", "--watch"], environ=memory_env, stdout=out, stderr=err, sleep=interrupt)
    assert code == EXIT_OK
    assert out.getvalue().count("TYPE") == 1
    assert err.getvalue() == ""


@pytest.mark.parametrize(
    ("env", "argv", "names"),
    [
        ({"REDIS_URL": "localhost:6379"}, ["stats"], "REDIS_URL"),
        ({"REDIS_URL": "http://localhost:6379/0"}, ["stats"], "REDIS_URL"),
        ({"REDIS_URL": "redis://localhost:port/0"}, ["dlq", "list"], "REDIS_URL"),
        ({}, ["--redis-url", "redis//oops", "stats"], "--redis-url"),
        ({}, ["stats", "--redis-url", "redis://:s3cret@localhost:99999/0"], "--redis-url"),
    ],
)
def test_a_malformed_redis_url_is_a_configuration_error_exit_2(
    run_cli: RunCli, env: dict[str, str], argv: list[str], names: str
) -> None:
    run = run_cli(*argv, env=env)
    assert run.code == EXIT_BAD_INPUT
    assert run.err.startswith("error: configuration error:") and names in run.err
    assert "Traceback" not in run.err and "s3cret" not in run.err
    as_json = json.loads(run_cli("--json", *argv, env=env).out)
    assert as_json["exitCode"] == EXIT_BAD_INPUT
    assert as_json["error"]["kind"] == "configuration"


def test_a_dedupe_hit_says_it_was_a_duplicate(run_cli: RunCli) -> None:
    args = ("enqueue", "send_release_email", "--payload", RELEASE, "--dedupe-key", "esc-1-rel")
    first = run_cli(*args)
    assert first.code == EXIT_OK and first.out.startswith("enqueued send_release_email job")
    job_id = first.out.split()[3]
    again = run_cli(*args)
    assert again.code == EXIT_OK
    assert again.out.strip() == (
        f"not enqueued: dedupe key 'esc-1-rel' already holds send_release_email job {job_id}"
        " (queued)"
    )
    as_json = json.loads(run_cli("--json", *args).out)
    assert as_json == {"id": job_id, "type": "send_release_email", "state": "queued",
                       "duplicate": True}  # fmt: skip
    fresh = json.loads(run_cli("--json", *args[:-1], "esc-2-rel").out)
    assert fresh["duplicate"] is False and fresh["id"] != job_id


def test_purge_and_replay_of_unknown_ids_agree(run_cli: RunCli, memory_env: dict[str, str]) -> None:
    [dead] = _dead(memory_env, 1)
    for verb in ("replay", "purge"):
        run = run_cli("dlq", verb, "01UNKNOWN", "--yes" if verb == "purge" else "--no-progress")
        assert run.code == EXIT_NOT_FOUND, (verb, run.out, run.err)
    partly = run_cli("dlq", "purge", dead, "01UNKNOWN", "--yes", "--json")
    assert partly.code == EXIT_OK
    assert json.loads(partly.out) == {"purged": 1, "notFound": 1}
    assert _queue(memory_env).get_queue_stats().dead_letter == 0
