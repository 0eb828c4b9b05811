"""The local stack reads routes, handlers, tables and environment from template.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
from local_stack.lambda_runtime import LocalFunction
from local_stack.template import Tag, Template, schedule_seconds

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(ROOT / "template.yaml", stack_name="stk")


CONSOLE_ROUTES = {
    "GET /api/jobs",
    "GET /api/jobs/{jobId}",
    "GET /api/jobs/audit",
    "GET /api/jobs/history",
    "GET /",
    "GET /console/{asset}",
}


def test_routes_match_the_api_and_its_authorizer(template: Template) -> None:
    routes = {r.route_key: r for r in template.routes()}
    assert set(routes) == {
        "POST /api/escrow",
        "POST /api/escrow/release",
        "POST /api/escrow/refund",
        "POST /api/escrow/dispute",
        "POST /api/escrow/resolve",
        "GET /api/escrow/{id}",
        "POST /api/stripe/webhook",
        "GET /api/jobs/process",
        "POST /api/jobs/process",
        *CONSOLE_ROUTES,
    }
    unauthenticated = {k for k, r in routes.items() if not r.authorized}
    assert unauthenticated == {
        "POST /api/stripe/webhook",
        "GET /api/jobs/process",
        "POST /api/jobs/process",
        *CONSOLE_ROUTES,  # the processor checks its own token (the page itself holds no data)
    }
    assert {routes[k].function for k in CONSOLE_ROUTES} == {"JobProcessorFunction"}
    assert routes["GET /api/escrow/{id}"].function == "EscrowApiFunction"
    assert routes["GET /api/jobs/process"].function == "JobProcessorFunction"


def test_functions_resolve_to_importable_handlers(template: Template) -> None:
    functions = template.functions()
    assert set(functions) == {"EscrowApiFunction", "JobProcessorFunction", "MonitorFunction"}
    processor = functions["JobProcessorFunction"]
    assert processor.name == "stk-job-processor"
    assert processor.module == "functions.job_processor.app"
    assert processor.timeout_s == 60.0
    assert processor.reserved_concurrency == 5
    assert functions["MonitorFunction"].timeout_s == 15.0  # from Globals
    assert functions["MonitorFunction"].memory_mb == 256
    for spec in functions.values():
        assert spec.code_dir is not None and (spec.code_dir / "app.py").is_file()
        assert callable(LocalFunction(spec).handler())


def test_tables_come_with_their_key_schemas_and_ttl(template: Template) -> None:
    tables = template.tables()
    escrow = tables["EscrowTable"]
    assert escrow.create_args["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert escrow.create_args["BillingMode"] == "PAY_PER_REQUEST"
    assert escrow.ttl_attribute == "expires_at"
    assert tables["AuditTable"].ttl_attribute is None
    assert [k["AttributeName"] for k in tables["AuditTable"].create_args["KeySchema"]] == [
        "escrow_id",
        "event_id",
    ]


def test_environment_resolves_tables_secrets_and_defaults(template: Template) -> None:
    env = template.environment(
        {"EscrowTable": "t-escrow", "AuditTable": "t-audit", "EffectsTable": "t-effects"},
        skip=frozenset({"POWERTOOLS_SERVICE_NAME"}),
    )
    assert env["ESCROW_TABLE_NAME"] == "t-escrow"
    assert env["AUDIT_TABLE_NAME"] == "t-audit"
    assert env["EFFECTS_TABLE_NAME"] == "t-effects"
    assert env["JOB_PROCESSOR_TOKEN_PARAM"] == "stk/job-processor-token"  # the secret's Name
    assert env["JOB_PROCESSOR_FUNCTION_NAME"] == "stk-job-processor"
    assert env["STRIPE_API_KEY_REF"] == "escrow-jobs/stripe-api-key"  # parameter default
    assert env["JOBS_NAMESPACE"] == "escrow-jobs"
    assert "UPSTASH_REDIS_REST_URL" not in env  # a parameter with an empty default
    assert "REDIS_URL" not in env and "JOBS_REDIS_CLUSTER" not in env  # !If: ElastiCache
    assert "EMAIL_FROM" not in env
    assert "POWERTOOLS_SERVICE_NAME" not in env


def test_schedules(template: Template) -> None:
    assert {(s.function, s.every_s) for s in template.schedules()} == {
        ("EscrowApiFunction", 60.0),
        ("EscrowApiFunction", 3600.0),  # the reconciler (its Input names the task)
        ("JobProcessorFunction", 60.0),
        ("MonitorFunction", 60.0),
    }


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60.0),
        ("rate(5 minutes)", 300.0),
        ("rate(1 day)", 86400.0),
        ("cron(0 12 * * ? *)", 3600.0),
    ],
)
def test_schedule_seconds(expression: str, seconds: float) -> None:
    assert schedule_seconds(expression) == seconds


def test_short_tags_and_other_shapes(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        """
Parameters:
  Name: {Type: String, Default: thing}
Globals:
  Function: {Timeout: 7}
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties: {}
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PROVISIONED
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: by-x
          KeySchema: [{AttributeName: id, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/fn/
      Handler: handler.main
      Environment:
        Variables:
          A: !Sub "${AWS::StackName}-${Name}"
          B: !GetAtt Table.Arn
          C: plain
      Events:
        Any:
          Type: HttpApi
          Properties: {Method: any, Path: "/{proxy+}", ApiId: !Ref Api}
"""
    )
    template = Template.load(path, stack_name="s")
    fn = template.functions()["Fn"]
    assert (fn.module, fn.attribute, fn.timeout_s, fn.name) == ("src.fn.handler", "main", 7.0, "Fn")
    assert template.environment({"Table": "tbl"}) == {"A": "s-thing", "C": "plain"}
    [route] = template.routes()
    assert (route.method, route.path, route.authorized) == ("ANY", "/{proxy+}", False)
    table = template.tables()["Table"]
    assert table.create_args["GlobalSecondaryIndexes"][0]["IndexName"] == "by-x"
    assert table.create_args["ProvisionedThroughput"]["ReadCapacityUnits"] == 5
    assert template.resolve(Tag("Ref", "Name")) == "thing"
    assert template.resolve(Tag("Ref", "AWS::Region")) == "us-east-1"


def test_rejects_a_file_that_is_not_a_template(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("just: a mapping\n")
    with pytest.raises(ValueError, match="not a CloudFormation template"):
        Template.load(path)
