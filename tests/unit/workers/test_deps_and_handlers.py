"""WorkerDeps from the environment, lazy building, and the handler table's contract."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jobs_core import ConfigurationError, Job, JobType, PermanentJobError, RetryableJobError
from jobs_core.secret_refs import EnvSecretResolver, SecretNotFoundError, env_name_for
from jobs_core.workers import (
    ENV_EMAIL_PROVIDER,
    ENV_WEBHOOK_ALLOW_LOCAL,
    WorkerDeps,
    build_handlers,
    deps_from_environ,
)
from jobs_core.workers.handlers import _all_of


def _job(job_type: JobType, payload: dict[str, object]) -> Job:
    now = datetime.now(UTC)
    return Job(id="01JTEST", type=job_type, payload=payload, created_at=now, next_run_at=now)


def test_defaults_suit_local_work() -> None:
    deps = WorkerDeps.from_env({})
    assert deps.email_provider == "mailbox"
    assert deps.mailbox_dir == Path(".local/mailbox")
    assert deps.secrets_source == "env"
    assert deps.webhook_allow_local is False
    assert deps.in_lambda is False
    assert deps.sender_address() == "Escrow <no-reply@escrow.local>"


def test_reads_every_variable() -> None:
    deps = WorkerDeps.from_env(
        {
            "EMAIL_PROVIDER": "SES",
            "EMAIL_FROM": "Escrow <no-reply@example.com>",
            "RESEND_API_URL": "http://resend.local",
            "RESEND_API_KEY_REF": "resend",
            "MAILBOX_DIR": "/tmp/mb",
            "STRIPE_API_KEY_REF": "escrow/stripe",
            "STRIPE_API_BASE": "http://127.0.0.1:1",
            "STRIPE_MAX_NETWORK_RETRIES": "3",
            "AUDIT_TABLE_NAME": "audit",
            "EFFECTS_TABLE_NAME": "effects",
            "WEBHOOK_ALLOW_LOCAL": "1",
            "WEBHOOK_SECRET_PREFIX": "partners/",
            "AWS_LAMBDA_FUNCTION_NAME": "job-processor",
        }
    )
    assert deps.email_provider == "ses"
    assert deps.email_from == "Escrow <no-reply@example.com>"
    assert deps.resend_api_url == "http://resend.local"
    assert deps.resend_api_key_ref == "resend"
    assert deps.mailbox_dir == Path("/tmp/mb")
    assert deps.stripe_api_key_ref == "escrow/stripe"
    assert deps.stripe_api_base == "http://127.0.0.1:1"
    assert deps.stripe_max_network_retries == 3
    assert (deps.audit_table_name, deps.effects_table_name) == ("audit", "effects")
    assert deps.webhook_allow_local is True
    assert deps.webhook_secret_prefix == "partners/"
    assert deps.in_lambda is True
    assert deps.secrets_source == "aws"


@pytest.mark.parametrize(
    "environ",
    [
        {ENV_EMAIL_PROVIDER: "smtp"},
        {ENV_WEBHOOK_ALLOW_LOCAL: "maybe"},
        {"SECRETS_SOURCE": "vault"},
        {"STRIPE_MAX_NETWORK_RETRIES": "-1"},
    ],
)
def test_bad_values_are_configuration_errors(environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        WorkerDeps.from_env(environ)


def test_repr_shows_no_secret() -> None:
    deps = WorkerDeps.from_env({"STRIPE_API_KEY": "sk_live_secret", "RESEND_API_KEY": "re_secret"})
    assert "sk_live_secret" not in repr(deps)
    assert "re_secret" not in repr(deps)


def test_deps_from_environ_uses_the_mapping_given() -> None:
    assert deps_from_environ({"EMAIL_PROVIDER": "resend"}).email_provider == "resend"


def test_building_handlers_imports_no_sdk_and_builds_no_client() -> None:
    """A Lambda that never runs a Stripe or AWS job pays for neither at cold start.

    (Powertools, and the botocore package marker it imports, come with the layer's
    logger, which every function uses; boto3 and the Stripe SDK must not.)"""
    code = (
        "import sys\n"
        "from jobs_core.workers import WorkerDeps, build_handlers\n"
        "deps = WorkerDeps.from_env({'EMAIL_PROVIDER': 'ses', 'STRIPE_API_KEY': 'sk_test_x'})\n"
        "handlers = build_handlers(deps)\n"
        "sdks = ('stripe', 'boto3', 'botocore.session', 'botocore.client')\n"
        "loaded = [m for m in sdks if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert deps.ses_client is None and deps.stripe_client is None\n"
        "assert deps.http_client is None and deps.effect_ledger is None\n"
        "print(len(handlers))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(JobType))


def test_every_job_type_has_a_handler() -> None:
    assert set(build_handlers(WorkerDeps())) == set(JobType)


@pytest.mark.parametrize("job_type", list(JobType), ids=str)
def test_an_invalid_payload_is_permanent(job_type: JobType) -> None:
    handler = build_handlers(WorkerDeps())[job_type]
    with pytest.raises(PermanentJobError, match="invalid"):
        handler(_job(job_type, {"transactionId": "esc-1", "unexpected": True}))


def test_mailbox_is_refused_inside_lambda(tmp_path: Path) -> None:
    deps = WorkerDeps.from_env({"AWS_LAMBDA_FUNCTION_NAME": "f", "EFFECTS_TABLE_NAME": "t"})
    job = _job(
        JobType.SEND_RELEASE_EMAIL,
        {"transactionId": "esc-1", "amount": 1, "recipientEmail": "a@example.com"},
    )
    with pytest.raises(PermanentJobError, match="local work only"):
        build_handlers(deps)[JobType.SEND_RELEASE_EMAIL](job)


def test_ses_needs_a_sender() -> None:
    with pytest.raises(ConfigurationError, match="EMAIL_FROM"):
        WorkerDeps(email_provider="ses").sender_address()


def test_env_secret_resolver() -> None:
    resolver = EnvSecretResolver(
        {"partner-acme": "whsec_a", "PARTNERS_GLOBEX": "whsec_b", "BUNDLE": '{"k": "v"}'}
    )
    assert resolver.get("partner-acme") == "whsec_a"
    assert resolver.get("partners/globex") == "whsec_b"
    assert resolver.get("bundle#k") == "v"
    assert env_name_for("escrow-jobs/partner.webhooks/acme") == "ESCROW_JOBS_PARTNER_WEBHOOKS_ACME"
    with pytest.raises(SecretNotFoundError, match="PARTNERS_INITECH"):
        resolver.get("partners/initech")
    assert "whsec" not in repr(resolver)


def test_webhook_secret_prefix_confines_lookups() -> None:
    deps = WorkerDeps(
        webhook_secret_prefix="escrow-jobs/partner-webhooks/",
        environ={"ESCROW_JOBS_PARTNER_WEBHOOKS_ACME": "whsec_a"},
    )
    assert deps.webhook_secret("acme") == "whsec_a"
    assert deps.webhook_secret("escrow-jobs/partner-webhooks/acme") == "whsec_a"
    for ref in ("../stripe", "/escrow/stripe", "arn:aws:secretsmanager:x", "ssm:/x"):
        with pytest.raises(ConfigurationError):
            deps.webhook_secret(ref)


def test_all_of_runs_every_effect_then_reports() -> None:
    ran: list[str] = []

    def ok(name: str) -> tuple[str, object]:
        return name, lambda: ran.append(name)

    def fails(name: str, exc: Exception) -> tuple[str, object]:
        def effect() -> None:
            ran.append(name)
            raise exc

        return name, effect

    with pytest.raises(RetryableJobError, match="b: later") as caught:
        _all_of(
            [
                fails("a", PermanentJobError("never")),
                fails("b", RetryableJobError("later", delay_s=9)),
                ok("c"),
            ]
        )  # type: ignore[list-item]
    assert ran == ["a", "b", "c"]
    assert caught.value.delay_s == 9
    with pytest.raises(PermanentJobError, match="a: never"):
        _all_of([fails("a", PermanentJobError("never")), ok("c")])  # type: ignore[list-item]
    with pytest.raises(ZeroDivisionError):
        _all_of([fails("a", ZeroDivisionError()), ok("c")])  # type: ignore[list-item]
