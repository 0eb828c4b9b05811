"""Settings from the environment: backend choice, the original names, Lambda safety."""

from __future__ import annotations

from pathlib import Path

import pytest
from jobs_core import ConfigurationError, Settings


def test_embedded_by_default_outside_lambda() -> None:
    assert Settings.from_env({}).backend == "memory"


def test_no_redis_inside_lambda_is_an_error_at_start() -> None:
    with pytest.raises(ConfigurationError, match="no Redis configured inside Lambda"):
        Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "processor"})


def test_upstash_variables_and_the_original_kv_names() -> None:
    for url_var, token_var in (
        ("UPSTASH_REDIS_REST_URL", "UPSTASH_REDIS_REST_TOKEN"),
        ("KV_REST_API_URL", "KV_REST_API_TOKEN"),
    ):
        settings = Settings.from_env({url_var: "https://x.upstash.io", token_var: "tok"})
        assert settings.backend == "upstash" and settings.upstash_token == "tok"
        assert "tok" not in repr(settings)


def test_redis_url_and_explicit_backend() -> None:
    assert Settings.from_env({"REDIS_URL": "redis://h:6379/0"}).backend == "redis"
    with pytest.raises(ConfigurationError):
        Settings.from_env({"JOBS_BACKEND": "redis"})
    with pytest.raises(ConfigurationError):
        Settings.from_env({"JOBS_BACKEND": "sqlite"})


def test_the_upgrade_switch_and_the_finished_record_life() -> None:
    assert Settings.from_env({}).legacy_dedupe_keys is False
    assert Settings.from_env({"JOBS_LEGACY_DEDUPE": "true"}).legacy_dedupe_keys is True
    with pytest.raises(ConfigurationError):
        Settings.from_env({"JOBS_LEGACY_DEDUPE": "maybe"})
    assert Settings(retention_s=60, dedupe_window_s=3600).finished_ttl_s == 3600
    assert Settings(retention_s=86_400, dedupe_window_s=3600).finished_ttl_s == 86_400


def test_numeric_settings_are_checked() -> None:
    settings = Settings.from_env({"JOBS_DEDUPE_WINDOW_S": "60", "JOBS_NAMESPACE": "prod"})
    assert settings.dedupe_window_s == 60 and settings.namespace == "prod"
    with pytest.raises(ConfigurationError):
        Settings.from_env({"JOBS_RETENTION_S": "soon"})
    with pytest.raises(ConfigurationError):
        Settings.from_env({"JOBS_NAMESPACE": "a{b}"})


def test_job_ids_are_uuid7_of_their_time() -> None:
    import uuid

    from jobs_core.ids import new_job_id

    job_id = new_job_id(1_767_225_600_123)
    parsed = uuid.UUID(job_id)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert parsed.int >> 80 == 1_767_225_600_123
    assert str(parsed) == job_id
    assert new_job_id(1_767_225_600_124) > job_id
    assert len({new_job_id(1_767_225_600_123) for _ in range(10_000)}) == 10_000


def test_a_dedupe_keys_job_id_is_a_uuid8_of_the_key_alone() -> None:
    import uuid

    from jobs_core.ids import dedupe_job_id

    job_id = dedupe_job_id("escrow-esc_1-release-v3-send_release_email")
    parsed = uuid.UUID(job_id)
    assert (parsed.version, parsed.variant) == (8, uuid.RFC_4122)
    assert str(parsed) == job_id
    assert dedupe_job_id("escrow-esc_1-release-v3-send_release_email") == job_id
    assert len({dedupe_job_id(f"k-{i}") for i in range(10_000)}) == 10_000


def test_upstash_token_is_read_from_the_secret_named_in_aws() -> None:
    asked: list[str] = []

    def resolve(name: str) -> str:
        asked.append(name)
        return "tok-123\n"

    env = {"UPSTASH_REDIS_REST_URL": "https://x.upstash.io", "UPSTASH_TOKEN_PARAM": "dev/upstash"}
    settings = Settings.from_env(env, resolve_secret=resolve)
    assert settings.backend == "upstash"
    assert settings.upstash_token == "tok-123"
    assert asked == ["dev/upstash"]


def test_a_token_in_the_environment_wins_over_the_secret() -> None:
    def resolve(name: str) -> str:
        raise AssertionError("must not fetch")

    env = {
        "UPSTASH_REDIS_REST_URL": "https://x.upstash.io",
        "UPSTASH_TOKEN_PARAM": "dev/upstash",
        "UPSTASH_REDIS_REST_TOKEN": "local",
    }
    assert Settings.from_env(env, resolve_secret=resolve).upstash_token == "local"


def test_the_default_resolver_outside_lambda_reads_the_environment() -> None:
    env = {
        "UPSTASH_REDIS_REST_URL": "https://x.upstash.io",
        "UPSTASH_TOKEN_PARAM": "dev/upstash",
        "DEV_UPSTASH": "from-env",
    }
    assert Settings.from_env(env).upstash_token == "from-env"


def test_the_acl_command_prints_each_roles_rules() -> None:
    """What the README tells operators to run prints exactly the rules the tests run under."""
    import subprocess
    import sys

    from jobs_core.queue.acl import acl_rules

    for user, role in (("escrow-api", "queue"), ("queue-monitor", "monitor")):
        out = subprocess.run(
            [sys.executable, "-m", "jobs_core.queue.acl", "escrow-jobs-prod", role, user],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        rules = " ".join(acl_rules("escrow-jobs-prod", role=role))  # type: ignore[arg-type]
        assert out == f"ACL SETUSER {user} on >TOKEN {rules}\n"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "python -m jobs_core.queue.acl escrow-jobs-prod monitor queue-monitor" in readme
