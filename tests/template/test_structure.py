"""What the issue asks of template.yaml and samconfig.toml, checked on the parsed template
and on the CloudFormation that the SAM transform makes of it (routes, rules, IAM roles)."""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.template.cfn import (
    SAMCONFIG,
    TEMPLATE,
    Resolver,
    functions,
    resources_of_type,
    samconfig_parameters,
)

ESCROW_ROUTES = {
    ("POST", "/api/escrow"),
    ("POST", "/api/escrow/release"),
    ("POST", "/api/escrow/refund"),
    ("POST", "/api/escrow/dispute"),
    ("POST", "/api/escrow/resolve"),
    ("GET", "/api/escrow/{id}"),
}
OPEN_ROUTES = {  # no JWT authorizer: Stripe signs its events, the processor checks a token
    ("POST", "/api/stripe/webhook"): "EscrowApiFunction",
    ("GET", "/api/jobs/process"): "JobProcessorFunction",
    ("POST", "/api/jobs/process"): "JobProcessorFunction",
    ("GET", "/api/jobs"): "JobProcessorFunction",
    ("GET", "/api/jobs/{jobId}"): "JobProcessorFunction",
    ("GET", "/api/jobs/audit"): "JobProcessorFunction",
    ("GET", "/api/jobs/history"): "JobProcessorFunction",
    ("GET", "/"): "JobProcessorFunction",  # the console page (static; it asks for the token)
    ("GET", "/console/{asset}"): "JobProcessorFunction",
}
ENV_NAMES = {
    "EscrowApiFunction": {
        "ESCROW_TABLE_NAME", "STRIPE_API_KEY_REF", "STRIPE_WEBHOOK_SECRET_REF",
        "JOB_PROCESSOR_FUNCTION_NAME", "ESCROW_ROLES_CLAIM", "ESCROW_ADMIN_EMAIL",
    },
    "JobProcessorFunction": {
        "ESCROW_TABLE_NAME", "AUDIT_TABLE_NAME", "EFFECTS_TABLE_NAME", "EMAIL_PROVIDER",
        "EMAIL_FROM", "STRIPE_API_KEY_REF", "WEBHOOK_SECRET_PREFIX", "JOB_PROCESSOR_TOKEN_PARAM",
        "JOB_PROCESSOR_FUNCTION_NAME", "JOB_PROCESSOR_MAX_FANOUT",
    },
    "MonitorFunction": set(),
}  # fmt: skip
COMMON_ENV = {
    "JOBS_BACKEND", "JOBS_NAMESPACE", "UPSTASH_REDIS_REST_URL", "UPSTASH_TOKEN_PARAM",
    "POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL",
    "REDIS_URL", "JOBS_REDIS_CLUSTER",  # the optional ElastiCache Serverless path
    "JOBS_LEGACY_DEDUPE",  # the upgrade switch (README, "Upgrading a running queue")
}  # fmt: skip


def test_the_template_reads_top_down() -> None:
    text = TEMPLATE.read_text()
    sections = ["\nParameters:", "\nConditions:", "\nGlobals:", "\nResources:", "\nOutputs:"]
    positions = [text.index(s) for s in sections]
    assert positions == sorted(positions)
    order = ["  JobsCoreLayer:", "  EscrowApiFunction:", "  JobProcessorFunction:",
             "  MonitorFunction:", "  HttpApi:", "  EscrowTable:", "  AlarmTopic:",
             "  QueueDashboard:"]  # fmt: skip
    positions = [text.index(s) for s in order]
    assert positions == sorted(positions)


def test_functions_on_python_3_13_arm64_each_with_its_log_group(template: dict[str, Any]) -> None:
    for name, props in functions(template).items():
        assert props["Runtime"] == "python3.13", name
        assert props["Architectures"] == ["arm64"], name
        group = template["Resources"][props["LoggingConfig"]["LogGroup"]["Ref"]]
        assert group["Type"] == "AWS::Logs::LogGroup"
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"}
        assert group["Properties"]["LogGroupName"] == {
            "Fn::Sub": props["FunctionName"]["Fn::Sub"].replace("${", "/aws/lambda/${", 1)
        }


def test_routes_and_who_guards_them(transformed: dict[str, Any]) -> None:
    api = transformed["Resources"]["HttpApi"]["Properties"]["Body"]
    routes = {}
    for path, methods in api["paths"].items():
        for method, op in methods.items():
            uri = op["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            target = re.search(r"\$\{(\w+)\.Arn\}", uri)
            assert target
            routes[(method.upper(), path)] = (target.group(1), op["security"])
    assert set(routes) == ESCROW_ROUTES | set(OPEN_ROUTES)
    for route in ESCROW_ROUTES:
        assert routes[route] == ("EscrowApiFunction", [{"JwtAuthorizer": []}]), route
    for route, function in OPEN_ROUTES.items():
        assert routes[route] == (function, [{"NONE": []}]), route
    jwt = api["components"]["securitySchemes"]["JwtAuthorizer"]["x-amazon-apigateway-authorizer"]
    assert jwt["type"] == "jwt"
    assert jwt["identitySource"] == "$request.header.Authorization"
    assert jwt["jwtConfiguration"] == {
        "issuer": {"Ref": "JwtIssuer"},
        "audience": [{"Ref": "JwtAudience"}],
    }


def test_processor_monitor_and_outbox_sweep_run_every_minute(transformed: dict[str, Any]) -> None:
    rules = resources_of_type(transformed, "AWS::Events::Rule")
    targets = {
        rule["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]: rule["Properties"]
        for rule in rules.values()
    }
    assert set(targets) == {"JobProcessorFunction", "MonitorFunction", "EscrowApiFunction"}
    for props in targets.values():
        assert props["ScheduleExpression"] == "rate(1 minute)"


def test_processor_concurrency_bounds_its_fan_out(template: dict[str, Any]) -> None:
    props = functions(template)["JobProcessorFunction"]
    assert props["ReservedConcurrentExecutions"] == {"Ref": "ProcessorReservedConcurrency"}
    assert props["Environment"]["Variables"]["JOB_PROCESSOR_MAX_FANOUT"] == {
        "Ref": "ProcessorMaxFanout"
    }
    params = template["Parameters"]
    assert params["ProcessorReservedConcurrency"]["Default"] == 5
    for env in ("default", "prod"):
        values = {**{k: str(v.get("Default")) for k, v in params.items()},
                  **samconfig_parameters(env)}  # fmt: skip
        # the drain itself plus its fan-out must fit in the reserved concurrency
        assert int(values["ProcessorMaxFanout"]) < int(values["ProcessorReservedConcurrency"])


def test_failed_scheduled_runs_are_not_resent(template: dict[str, Any]) -> None:
    for name in ("JobProcessorFunction", "MonitorFunction"):
        config = functions(template)[name]["EventInvokeConfig"]
        assert config["MaximumRetryAttempts"] == 0, name


@pytest.mark.parametrize(
    ("table", "keys", "ttl"),
    [
        ("EscrowTable", [("pk", "HASH"), ("sk", "RANGE")], "expires_at"),
        ("AuditTable", [("escrow_id", "HASH"), ("event_id", "RANGE")], None),
        ("EffectsTable", [("effect_id", "HASH")], "expires_at"),
    ],
)
def test_tables(
    template: dict[str, Any], table: str, keys: list[tuple[str, str]], ttl: str | None
) -> None:
    resource = template["Resources"][table]
    props = resource["Properties"]
    assert [(k["AttributeName"], k["KeyType"]) for k in props["KeySchema"]] == keys
    assert {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]} == {
        name: "S" for name, _ in keys
    }
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    if ttl:
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"


def test_each_function_gets_the_variables_it_reads(template: dict[str, Any]) -> None:
    for name, props in functions(template).items():
        env = props["Environment"]["Variables"]
        assert set(env) == COMMON_ENV | ENV_NAMES[name], name
    processor = functions(template)["JobProcessorFunction"]["Environment"]["Variables"]
    assert processor["EMAIL_PROVIDER"] == "ses"
    assert processor["JOB_PROCESSOR_FUNCTION_NAME"] == processor_name(template)
    api = functions(template)["EscrowApiFunction"]["Environment"]["Variables"]
    assert api["JOB_PROCESSOR_FUNCTION_NAME"] == processor_name(template)
    glob = template["Globals"]["Function"]["Environment"]["Variables"]
    assert glob["POWERTOOLS_METRICS_NAMESPACE"] == "EscrowJobs"
    assert glob["UPSTASH_REDIS_REST_URL"] == {"Ref": "UpstashRedisRestUrl"}
    # The upgrade switch reaches every function that enqueues (all of them read Settings).
    assert glob["JOBS_LEGACY_DEDUPE"] == {"Ref": "LegacyDedupe"}
    assert template["Parameters"]["LegacyDedupe"]["Default"] == "false"


def test_every_function_is_traced(template: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["Tracing"] == "Active"
    for name, props in functions(template).items():
        assert props.get("Tracing", "Active") == "Active", name


def test_roles_come_from_one_claim_named_by_a_parameter(template: dict[str, Any]) -> None:
    api = functions(template)["EscrowApiFunction"]["Environment"]["Variables"]
    assert api["ESCROW_ROLES_CLAIM"] == {"Ref": "RolesClaim"}
    assert template["Parameters"]["RolesClaim"]["Default"] == "cognito:groups"


def processor_name(template: dict[str, Any]) -> Any:
    return template["Resources"]["JobProcessorFunction"]["Properties"]["FunctionName"]


UPSTASH_TOKENS = {  # each function's own least-privilege Upstash token
    "EscrowApiFunction": "ApiUpstashTokenSecretName",
    "JobProcessorFunction": "ProcessorUpstashTokenSecretName",
    "MonitorFunction": "MonitorUpstashTokenSecretName",
}
SECRET_REFS = {  # variable -> the parameter naming the secret, or the stack's own secret
    "STRIPE_API_KEY_REF": {"Ref": "StripeApiKeySecretName"},
    "STRIPE_WEBHOOK_SECRET_REF": {"Ref": "StripeWebhookSecretName"},
    "WEBHOOK_SECRET_PREFIX": {"Ref": "PartnerWebhookSecretPrefix"},
    "JOB_PROCESSOR_TOKEN_PARAM": {"Ref": "ProcessorTokenSecret"},
}


def test_secrets_travel_by_name_only(template: dict[str, Any]) -> None:
    secretish = re.compile(r"TOKEN|SECRET|KEY|PASSWORD", re.IGNORECASE)
    for name, props in functions(template).items():
        for var, value in props["Environment"]["Variables"].items():
            if var == "UPSTASH_TOKEN_PARAM":
                assert value == {"Ref": UPSTASH_TOKENS[name]}, f"{name}: its own Upstash token"
            elif secretish.search(var):
                assert value == SECRET_REFS[var], f"{name}: {var} must name a secret"
    for param, spec in template["Parameters"].items():
        if secretish.search(param):
            assert param.endswith(("SecretName", "SecretPrefix")), f"{param} looks like a value"
            assert "Default" not in spec or "/" in str(spec["Default"])  # a name, not a value
    token = template["Resources"]["ProcessorTokenSecret"]["Properties"]
    assert "SecretString" not in token
    assert token["GenerateSecretString"]["PasswordLength"] >= 32


def _statements(transformed: dict[str, Any], function: str) -> list[dict[str, Any]]:
    role_name = transformed["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
    role = transformed["Resources"][role_name]["Properties"]
    # SAM adds the VPC access policy (network interfaces only, no data) for the VpcConfig
    # of the optional ElastiCache path, whatever its condition says; and X-Ray's write
    # policy for Tracing: Active.
    assert sorted(role["ManagedPolicyArns"]) == [
        "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
    ]
    out = []
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            resources = statement["Resource"]
            out.append(
                {
                    "actions": set(actions if isinstance(actions, list) else [actions]),
                    "resources": resources if isinstance(resources, list) else [resources],
                    "effect": statement["Effect"],
                }
            )
    return out


def _granted(statements: list[dict[str, Any]], prefix: str) -> list[Any]:
    """Resources of every statement that grants an action starting with ``prefix``."""
    return [r for s in statements if any(a.startswith(prefix) for a in s["actions"])
            for r in s["resources"]]  # fmt: skip


def _secret_names(transformed: dict[str, Any], resources: list[Any]) -> set[str]:
    names = set()
    for r in resources:
        if r == {"Ref": "ProcessorTokenSecret"}:
            names.add("ProcessorTokenSecret")
        else:
            match = re.search(r":secret:\$\{(\w+)\}", r["Fn::Sub"])
            assert match, r
            names.add(match.group(1))
    return names


def test_least_privilege_per_function(transformed: dict[str, Any]) -> None:
    roles = {f: _statements(transformed, f) for f in ENV_NAMES}
    for function, statements in roles.items():
        for s in statements:
            assert s["effect"] == "Allow"
            # GetMetricData (the console's chart) has no resource-level permissions in IAM:
            # the only wildcard resource, for that one read-only action.
            if s["actions"] != {"cloudwatch:GetMetricData"}:
                assert "*" not in s["resources"], f"{function} has a wildcard resource"
            assert not any(a.endswith("*") for a in s["actions"]), function
            assert "cloudwatch:PutMetricData" not in s["actions"]  # EMF is log lines

    monitor = roles["MonitorFunction"]
    assert {a for s in monitor for a in s["actions"]} == {"secretsmanager:GetSecretValue"}
    assert _secret_names(transformed, _granted(monitor, "secretsmanager:")) == {
        "MonitorUpstashTokenSecretName"
    }

    processor, api = roles["JobProcessorFunction"], roles["EscrowApiFunction"]
    assert _granted(processor, "cloudwatch:") == ["*"]
    assert _granted(api, "cloudwatch:") == [] and _granted(monitor, "cloudwatch:") == []
    assert _granted(api, "ses:") == [] and _granted(monitor, "ses:") == []
    assert len(_granted(processor, "ses:")) == 1
    assert _secret_names(transformed, _granted(processor, "secretsmanager:")) == {
        "ProcessorTokenSecret", "ProcessorUpstashTokenSecretName", "StripeApiKeySecretName",
        "PartnerWebhookSecretPrefix",
    }  # fmt: skip
    assert _secret_names(transformed, _granted(api, "secretsmanager:")) == {
        "ApiUpstashTokenSecretName", "StripeApiKeySecretName", "StripeWebhookSecretName",
    }  # fmt: skip

    own_arn = "function:${AWS::StackName}-job-processor"
    for statements in (processor, api):
        [invoke] = _granted(statements, "lambda:")
        assert invoke["Fn::Sub"].endswith(own_arn)

    def tables(statements: list[dict[str, Any]]) -> set[str]:
        found = set()
        for r in _granted(statements, "dynamodb:"):
            found.add(r["Fn::GetAtt"][0] if "Fn::GetAtt" in r else r["Fn::Sub"][2:].split(".")[0])
        return found

    assert tables(api) == {"EscrowTable"}
    assert tables(processor) == {"EscrowTable", "AuditTable", "EffectsTable"}
    assert not any(
        {"dynamodb:Scan", "dynamodb:DeleteTable"} & s["actions"] for s in processor + api
    )


def test_alarm_topic_and_its_email_subscription(template: dict[str, Any]) -> None:
    [topic] = resources_of_type(template, "AWS::SNS::Topic")
    [subscription] = resources_of_type(template, "AWS::SNS::Subscription").values()
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": topic},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert template["Conditions"]["HasAlarmEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }


def test_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert "execute-api" in outputs["ApiUrl"]["Value"]["Fn::Sub"]
    for table in ("EscrowTable", "AuditTable", "EffectsTable"):
        assert outputs[f"{table}Name"]["Value"] == {"Ref": table}
    assert outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}


@pytest.mark.parametrize("env", ["default", "prod"])
def test_samconfig_environment_deploys_this_template(template: dict[str, Any], env: str) -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    deploy = config[env]["deploy"]["parameters"]
    assert deploy["stack_name"].startswith("escrow-jobs-")
    assert deploy["region"]
    assert "CAPABILITY_IAM" in deploy["capabilities"].split()
    overrides = samconfig_parameters(env)
    assert set(overrides) <= set(template["Parameters"])
    resolver = Resolver(template, overrides)  # fails if a parameter has no value
    for name, spec in template["Parameters"].items():
        value = resolver.values[name]
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), (env, name, value)
        if "AllowedValues" in spec:
            assert value in {str(v) for v in spec["AllowedValues"]}, (env, name)
        if "MinLength" in spec:
            assert len(value) >= spec["MinLength"], (env, name)
        if spec["Type"] == "Number":
            number = float(value)
            assert number >= spec.get("MinValue", number), (env, name)
            assert number <= spec.get("MaxValue", number), (env, name)


def test_samconfig_environments_do_not_share_a_stack_or_a_queue() -> None:
    config = tomllib.loads(SAMCONFIG.read_text())
    envs = ["default", "prod"]
    stacks = {config[e]["deploy"]["parameters"]["stack_name"] for e in envs}
    namespaces = {samconfig_parameters(e)["JobsNamespace"] for e in envs}
    tokens = [samconfig_parameters(e)[p] for e in envs for p in UPSTASH_TOKENS.values()]
    assert len(stacks) == len(namespaces) == len(envs)
    assert len(set(tokens)) == len(tokens)  # no token shared by environments or functions
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert samconfig_parameters("prod").get("AlarmEmail")


DYNAMODB_ACTIONS = {
    "get_item": "dynamodb:GetItem",
    "put_item": "dynamodb:PutItem",
    "update_item": "dynamodb:UpdateItem",
    "delete_item": "dynamodb:DeleteItem",
    "query": "dynamodb:Query",
    "scan": "dynamodb:Scan",
    "batch_get_item": "dynamodb:BatchGetItem",
    "batch_write_item": "dynamodb:BatchWriteItem",
}
TRANSACT_ACTIONS = {  # TransactWriteItems is authorised per item
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
CODE_OF = {  # where each function's DynamoDB calls live
    "EscrowApiFunction": ["functions/escrow_api"],
    "JobProcessorFunction": ["functions/job_processor", "layers/jobs_core/jobs_core/workers"],
}


def _dynamodb_actions_in(folders: list[str]) -> set[str]:
    from tests.template.cfn import ROOT

    needed = set()
    for folder in folders:
        for source in (ROOT / folder).rglob("*.py"):
            text = source.read_text()
            for method, action in DYNAMODB_ACTIONS.items():
                if re.search(rf"\.{method}\(", text):
                    needed.add(action)
            if ".transact_write_items(" in text:
                for kind, action in TRANSACT_ACTIONS.items():
                    if re.search(rf"[\"']{kind}[\"']\s*:", text):
                        needed.add(action)
    return needed


@pytest.mark.parametrize("function", sorted(CODE_OF))
def test_every_dynamodb_call_in_the_code_is_granted(
    transformed: dict[str, Any], function: str
) -> None:
    """Least privilege must still let the code work: each DynamoDB operation the
    function's code performs is among the actions its role grants."""
    needed = _dynamodb_actions_in(CODE_OF[function])
    granted = {a for s in _statements(transformed, function) for a in s["actions"]}
    assert needed, f"no DynamoDB call found for {function}: the scan is broken"
    assert needed <= granted, f"{function} calls {sorted(needed - granted)} without the right"
