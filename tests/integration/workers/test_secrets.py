"""Secrets through Powertools parameters against moto's Secrets Manager and SSM."""

from __future__ import annotations

import json
from collections.abc import Callable

import boto3
import pytest
from jobs_core import Job, JobType
from jobs_core.secret_refs import AwsSecretResolver, SecretNotFoundError
from jobs_core.workers import WorkerDeps, build_handlers
from local_stack.stripe_server import StripeServer

from tests.integration.workers.conftest import Aws


def test_secrets_manager_ssm_and_json_fields(aws: Aws) -> None:
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="escrow/stripe", SecretString="sk_test_from_sm")
    sm.create_secret(Name="escrow/bundle", SecretString=json.dumps({"api_key": "k-1"}))
    boto3.client("ssm").put_parameter(
        Name="/escrow/partner", Value="whsec_ssm", Type="SecureString"
    )
    resolver = AwsSecretResolver()
    assert resolver.get("escrow/stripe") == "sk_test_from_sm"
    assert resolver.get("escrow/bundle#api_key") == "k-1"
    assert resolver.get("/escrow/partner") == "whsec_ssm"
    assert resolver.get("ssm:/escrow/partner") == "whsec_ssm"
    with pytest.raises(SecretNotFoundError, match="ResourceNotFoundException"):
        resolver.get("escrow/missing")
    with pytest.raises(SecretNotFoundError, match="ParameterNotFound"):
        resolver.get("/escrow/missing")
    with pytest.raises(SecretNotFoundError, match="no JSON field"):
        resolver.get("escrow/bundle#nope")


def test_values_are_cached_for_max_age(aws: Aws) -> None:
    sm = boto3.client("secretsmanager")
    sm.create_secret(Name="escrow/rotating", SecretString="v1")
    resolver = AwsSecretResolver(max_age_s=300)
    assert resolver.get("escrow/rotating") == "v1"
    sm.put_secret_value(SecretId="escrow/rotating", SecretString="v2")
    assert resolver.get("escrow/rotating") == "v1"  # cached: no call per job
    assert AwsSecretResolver(max_age_s=0).get("escrow/rotating") == "v2"


def test_stripe_key_from_secrets_manager_inside_lambda(
    aws: Aws, stripe_server: StripeServer, new_job: Callable[..., Job]
) -> None:
    boto3.client("secretsmanager").create_secret(
        Name="escrow-jobs/stripe", SecretString=stripe_server.api_key
    )
    deps = WorkerDeps.from_env(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "job-processor",  # -> secrets from AWS
            "STRIPE_API_KEY_REF": "escrow-jobs/stripe",
            "STRIPE_API_BASE": stripe_server.url,
            "STRIPE_MAX_NETWORK_RETRIES": "0",
        }
    )
    intent = stripe_server.create_payment_intent(100, "usd")
    build_handlers(deps)[JobType.STRIPE_CAPTURE_PAYMENT](
        new_job(
            JobType.STRIPE_CAPTURE_PAYMENT,
            {"transactionId": "esc-8", "amount": 100, "paymentIntentId": intent["id"]},
        )
    )
    assert stripe_server.payment_intent(intent["id"])["status"] == "succeeded"
