"""Read ``template.yaml`` and ``samconfig.toml`` the way CloudFormation would, offline.

- ``load_template()``: the template as plain dicts, parsed by cfn-lint's decoder (which
  understands the short forms ``!Ref``, ``!Sub``, ``!GetAtt`` ...).
- ``samconfig_parameters(env)``: the ``parameter_overrides`` of a samconfig environment.
- ``Resolver``: evaluates ``Ref``, ``Fn::Sub``, ``Fn::GetAtt`` and ``Fn::Join`` against
  parameter values, pseudo parameters and the physical ids a test chose for resources.
- ``sam_transform()``: the template after the real SAM transform (aws-sam-translator),
  so tests can read the IAM roles, rules and permissions SAM generates.

Example::

    template = load_template()
    resolver = Resolver(template, samconfig_parameters("default"), {"EscrowTable": "t"})
    resolver.resolve({"Ref": "EscrowTable"})  # -> "t"
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"

STACK_NAME = "escrow-jobs-test"
PSEUDO = {
    "AWS::StackName": STACK_NAME,
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


@cache
def _decoded() -> str:
    from cfnlint.decode import decode

    template, matches = decode(str(TEMPLATE))
    assert not matches, [str(m) for m in matches]
    assert template is not None
    return json.dumps(template)  # plain dicts and lists, no decoder node classes


def load_template() -> dict[str, Any]:
    """A fresh copy of the parsed template (callers may change it)."""
    loaded: dict[str, Any] = json.loads(_decoded())
    return loaded


def resources_of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Serverless functions with the Globals merged in, as SAM does (maps merge, the
    function's own value wins)."""
    glob = template.get("Globals", {}).get("Function", {})
    out = {}
    for name, resource in resources_of_type(template, "AWS::Serverless::Function").items():
        props = copy.deepcopy(glob)
        for key, value in resource["Properties"].items():
            if key == "Environment":
                variables = {
                    **props.get("Environment", {}).get("Variables", {}),
                    **value.get("Variables", {}),
                }
                props["Environment"] = {"Variables": variables}
            else:
                props[key] = value
        out[name] = props
    return out


def function_folder(props: Mapping[str, Any]) -> str:
    """``functions/monitor/`` -> ``monitor``: the folder name that events/ uses too."""
    return Path(str(props["CodeUri"])).name


def samconfig_parameters(env: str = "default") -> dict[str, str]:
    config = tomllib.loads(SAMCONFIG.read_text())
    overrides = config[env]["deploy"]["parameters"]["parameter_overrides"]
    items = overrides if isinstance(overrides, list) else overrides.split()
    return dict(item.split("=", 1) for item in items)


def parameter_values(
    template: Mapping[str, Any], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Defaults, then ``overrides``; every parameter must end up with a value."""
    values = {
        name: str(p["Default"]) for name, p in template["Parameters"].items() if "Default" in p
    }
    values.update(overrides or {})
    missing = set(template["Parameters"]) - set(values)
    assert not missing, f"parameters without a value: {sorted(missing)}"
    return values


NO_VALUE = object()  # what !Ref AWS::NoValue resolves to: the key or item is dropped


class Resolver:
    """Evaluates the intrinsic functions this template uses (``Fn::If`` against the
    template's Conditions; a branch of ``AWS::NoValue`` drops its key)."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        refs: Mapping[str, str] | None = None,
        attrs: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.values: dict[str, str] = {**PSEUDO, **parameter_values(template, parameters)}
        self.refs = dict(refs or {})  # resource logical id -> what !Ref returns
        self.attrs = dict(attrs or {})  # "Resource.Attribute" -> what !GetAtt returns

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            kind = self.template["Parameters"].get(name, {}).get("Type", "")
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                return [v for v in self.values[name].split(",") if v]
            return self.values[name]
        if name in self.refs:
            return self.refs[name]
        resources = self.template["Resources"]
        if name in resources:
            props = resources[name].get("Properties", {})
            for key in ("FunctionName", "Name"):  # resources with a fixed physical name
                if key in props:
                    return str(self.resolve(props[key]))
            return f"<{name}>"  # a name CloudFormation would generate
        raise KeyError(f"!Ref to unknown {name!r}")

    def get_att(self, resource: str, attribute: str) -> str:
        key = f"{resource}.{attribute}"
        if key in self.attrs:
            return self.attrs[key]
        if resource not in self.template["Resources"]:
            raise KeyError(f"!GetAtt of unknown {resource!r}")
        return f"<{key}>"

    def sub(self, text: str, local: Mapping[str, Any] | None = None) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if local and name in local:
                return str(self.resolve(local[name]))
            if "." in name and name not in self.values:
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def condition(self, name: str) -> bool:
        return bool(self.test(self.template["Conditions"][name]))

    def test(self, value: Any) -> Any:
        """A condition expression: Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition."""
        [(key, arg)] = value.items()
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::Equals":
            left, right = (self.resolve(a) for a in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.test(arg[0])
        if key == "Fn::And":
            return all(self.test(a) for a in arg)
        if key == "Fn::Or":
            return any(self.test(a) for a in arg)
        raise KeyError(f"condition function {key!r}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.resolve(v) for v in value]
            return [i for i in items if i is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(key, arg)] = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(arg[0], arg[1])
                return self.sub(arg)
            if key == "Fn::GetAtt":
                resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(resource, attribute)
            if key == "Fn::Join":
                sep, items = arg
                resolved = self.resolve(items)
                return sep.join(str(i) for i in resolved)
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.resolve(then if self.condition(name) else otherwise)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}


def sam_transform(template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation template that SAM would deploy (local code URIs stand in as
    S3 URIs, as ``sam package`` would make them)."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    source = copy.deepcopy(dict(template or load_template()))
    for resource in source["Resources"].values():
        props = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://artifacts/{props[key].strip('/')}.zip"
    session = boto3.session.Session(
        region_name=PSEUDO["AWS::Region"], aws_access_key_id="x", aws_secret_access_key="x"
    )
    basic = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    translator = Translator({}, Parser(), boto_session=session)
    out: dict[str, Any] = translator.translate(
        source, {}, get_managed_policy_map=lambda: {"AWSLambdaBasicExecutionRole": basic}
    )
    return out
