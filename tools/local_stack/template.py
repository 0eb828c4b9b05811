"""What the local stack needs from ``template.yaml``, read from the template itself.

The routes (method, path, authorizer), each function's handler, timeout and schedules,
the DynamoDB tables' key schemas, and the environment variables that name a table all
come from the SAM template, so the local stack cannot drift from what is deployed.

CloudFormation's short tags (``!Ref``, ``!Sub``, ``!GetAtt`` ...) load as ``Tag``
values; ``Template.resolve`` evaluates the few forms the local stack needs.

    >>> template = Template.load(Path("template.yaml"))       # doctest: +SKIP
    >>> [r.route_key for r in template.routes()][:1]          # doctest: +SKIP
    ['POST /api/escrow']
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# PyYAML ships no type hints (and its stub package is not a dependency): used as Any.
yaml: Any = importlib.import_module("yaml")
DEFAULT_TIMEOUT_S = 3.0  # SAM's default function timeout
DEFAULT_MEMORY_MB = 128
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


@dataclass(frozen=True, slots=True)
class Tag:
    """A CloudFormation intrinsic written with a short tag: ``!Ref X`` is Tag("Ref", "X")."""

    name: str
    value: Any


def _tag(loader: Any, suffix: str, node: Any) -> Tag:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return Tag(suffix, value)


_Loader: Any = type("_Loader", (yaml.SafeLoader,), {})
_Loader.add_multi_constructor("!", _tag)


@dataclass(frozen=True, slots=True)
class TableSpec:
    logical_id: str
    create_args: dict[str, Any]  # CreateTable arguments but TableName
    ttl_attribute: str | None


@dataclass(frozen=True, slots=True)
class RouteSpec:
    method: str  # GET, POST, ... or ANY
    path: str  # /api/escrow/{id}
    function: str  # logical id of the function
    authorized: bool  # behind the API's default (JWT) authorizer

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    function: str
    name: str
    every_s: float


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    logical_id: str
    name: str  # the deployed FunctionName (resolved), or the logical id
    module: str  # importable module, e.g. functions.escrow_api.app
    attribute: str  # e.g. lambda_handler
    timeout_s: float
    memory_mb: int
    reserved_concurrency: int | None
    table_env: dict[str, str] = field(default_factory=dict)  # env var -> table logical id
    code_dir: Path | None = None  # the CodeUri folder: Lambda's task root
    handler_file: str = ""  # the handler's module inside code_dir, e.g. "app"


class Template:
    """A parsed SAM template; ``stack_name`` resolves ``${AWS::StackName}``."""

    def __init__(
        self,
        data: Mapping[str, Any],
        *,
        stack_name: str = "escrow-jobs-local",
        root: Path | None = None,
    ) -> None:
        self.data = data
        self.stack_name = stack_name
        self.root = root  # the template's folder: CodeUri paths are relative to it

    @classmethod
    def load(cls, path: Path, *, stack_name: str = "escrow-jobs-local") -> Template:
        with path.open() as f:
            data = yaml.load(f, Loader=_Loader)  # a SafeLoader subclass
        if not isinstance(data, dict) or "Resources" not in data:
            raise ValueError(f"{path} is not a CloudFormation template")
        return cls(data, stack_name=stack_name, root=path.resolve().parent)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.data.get("Resources") or {})

    def _of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == kind}

    def parameter_default(self, name: str) -> Any:
        return ((self.data.get("Parameters") or {}).get(name) or {}).get("Default")

    def resolve(self, value: Any) -> Any:
        """Evaluate ``!Ref`` to a parameter's default or a resource's logical id, and ``!Sub``
        with pseudo parameters and parameter defaults; other values pass through."""
        if not isinstance(value, Tag):
            return value
        if value.name == "Ref":
            pseudo = self._pseudo(value.value)
            if pseudo is not None:
                return pseudo
            default = self.parameter_default(value.value)
            return value.value if default is None else default
        if value.name == "Sub" and isinstance(value.value, str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(self._sub_var(m.group(1))), value.value)
        return value

    def _pseudo(self, name: str) -> str | None:
        return {
            "AWS::StackName": self.stack_name,
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }.get(name)

    def _sub_var(self, name: str) -> Any:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        if "." in name:  # ${Resource.Attr}: the logical id stands in
            return name.split(".", 1)[0]
        default = self.parameter_default(name)
        return name if default is None else default

    # -- tables -------------------------------------------------------------------------

    def tables(self) -> dict[str, TableSpec]:
        """Every ``AWS::DynamoDB::Table`` as CreateTable arguments (keys, indexes, billing)."""
        specs = {}
        for logical_id, resource in self._of_type("AWS::DynamoDB::Table").items():
            props = resource.get("Properties") or {}
            args: dict[str, Any] = {
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
                if props.get(key):
                    args[key] = props[key]
            if args["BillingMode"] == "PROVISIONED":
                args["ProvisionedThroughput"] = props.get(
                    "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
                )
            ttl = props.get("TimeToLiveSpecification") or {}
            ttl_attribute = ttl.get("AttributeName") if ttl.get("Enabled", True) else None
            specs[logical_id] = TableSpec(logical_id, args, ttl_attribute)
        return specs

    # -- functions, routes, schedules ---------------------------------------------------

    def _globals(self) -> dict[str, Any]:
        return dict(((self.data.get("Globals") or {}).get("Function")) or {})

    def functions(self) -> dict[str, FunctionSpec]:
        glob = self._globals()
        tables = set(self._of_type("AWS::DynamoDB::Table"))
        specs = {}
        for logical_id, resource in self._of_type("AWS::Serverless::Function").items():
            props = resource.get("Properties") or {}
            code_uri = str(props.get("CodeUri", "")).strip("/")
            handler = str(props.get("Handler") or glob.get("Handler") or "")
            module_file, _, attribute = handler.rpartition(".")
            module = ".".join([*code_uri.split("/"), *module_file.split("/")])
            env = ((props.get("Environment") or {}).get("Variables")) or {}
            table_env = {
                name: value.value
                for name, value in env.items()
                if isinstance(value, Tag) and value.name == "Ref" and value.value in tables
            }
            reserved = self.resolve(props.get("ReservedConcurrentExecutions"))
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                name=str(self.resolve(props.get("FunctionName")) or logical_id),
                module=module,
                attribute=attribute,
                timeout_s=float(
                    self.resolve(props.get("Timeout", glob.get("Timeout", DEFAULT_TIMEOUT_S)))
                ),
                memory_mb=int(
                    self.resolve(props.get("MemorySize", glob.get("MemorySize", DEFAULT_MEMORY_MB)))
                ),
                reserved_concurrency=None if reserved is None else int(reserved),
                table_env=table_env,
                code_dir=None if self.root is None else self.root / code_uri,
                handler_file=module_file,
            )
        return specs

    def _events(self, kind: str) -> list[tuple[str, str, dict[str, Any]]]:
        out = []
        for logical_id, resource in self._of_type("AWS::Serverless::Function").items():
            events = (resource.get("Properties") or {}).get("Events") or {}
            for name, event in events.items():
                if event.get("Type") == kind:
                    out.append((logical_id, name, event.get("Properties") or {}))
        return out

    def default_authorizer(self) -> str | None:
        for resource in self._of_type("AWS::Serverless::HttpApi").values():
            auth = (resource.get("Properties") or {}).get("Auth") or {}
            if auth.get("DefaultAuthorizer"):
                return str(auth["DefaultAuthorizer"])
        return None

    def routes(self) -> list[RouteSpec]:
        """The HTTP API's routes; a route opts out of the default authorizer with
        ``Auth: {Authorizer: NONE}``."""
        default = self.default_authorizer()
        routes = []
        for function, _, props in self._events("HttpApi"):
            auth = (props.get("Auth") or {}).get("Authorizer", default)
            method = str(props.get("Method", "ANY")).upper()
            method = "ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method
            routes.append(
                RouteSpec(
                    method=method,
                    path=str(props.get("Path", "/")),
                    function=function,
                    authorized=bool(auth) and str(auth).upper() != "NONE",
                )
            )
        return routes

    def secrets(self) -> dict[str, str]:
        """The ``AWS::SecretsManager::Secret`` resources: logical id -> resolved Name."""
        return {
            logical_id: str(self.resolve((r.get("Properties") or {}).get("Name", logical_id)))
            for logical_id, r in self._of_type("AWS::SecretsManager::Secret").items()
        }

    def environment(
        self, table_names: Mapping[str, str], *, skip: frozenset[str] = frozenset()
    ) -> dict[str, str]:
        """The functions' environment variables (Globals and every function, merged), as
        far as they resolve locally: a ``!Ref`` to a table gives ``table_names[id]``, to a
        secret its Name, to a parameter its default; a variable whose parameter has no
        default (or an empty one), or that depends on a Condition (``!If``), is left out,
        as are the names in ``skip``."""
        secrets = self.secrets()
        layers = [(self._globals().get("Environment") or {}).get("Variables") or {}]
        for resource in self._of_type("AWS::Serverless::Function").values():
            props = resource.get("Properties") or {}
            layers.append((props.get("Environment") or {}).get("Variables") or {})
        env: dict[str, str] = {}
        for variables in layers:
            for name, raw in variables.items():
                if name in skip:
                    continue
                value = self._env_value(raw, table_names, secrets)
                if value is not None:
                    env[name] = value
        return env

    def _env_value(
        self, raw: Any, table_names: Mapping[str, str], secrets: Mapping[str, str]
    ) -> str | None:
        if not isinstance(raw, Tag):
            return None if raw is None else str(raw)
        if raw.name == "Ref":
            if raw.value in table_names:
                return table_names[raw.value]
            if raw.value in secrets:
                return secrets[raw.value]
            if self._pseudo(raw.value) is not None:
                return self._pseudo(raw.value)
            default = self.parameter_default(raw.value)
            # An empty default (UpstashRedisRestUrl off the Upstash path) is no value.
            return None if default is None or str(default) == "" else str(default)
        if raw.name == "Sub" and isinstance(raw.value, str):
            names = re.findall(r"\$\{([^}.]+)\}", raw.value)
            if any(self._pseudo(n) is None and self.parameter_default(n) is None for n in names):
                return None
            return str(self.resolve(raw))
        return None

    def schedules(self) -> list[ScheduleSpec]:
        return [
            ScheduleSpec(function, name, schedule_seconds(str(props.get("Schedule", ""))))
            for function, name, props in self._events("Schedule")
        ]


def schedule_seconds(expression: str) -> float:
    """``rate(1 minute)`` -> 60.0; ``rate(5 minutes)`` -> 300.0. Cron expressions are not
    run locally: they count as once an hour.

    >>> schedule_seconds("rate(2 hours)")
    7200.0
    """
    match = re.fullmatch(r"\s*rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)\s*",
                         expression)  # fmt: skip
    if not match:
        return 3600.0
    unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
    return float(int(match.group(1)) * unit)
