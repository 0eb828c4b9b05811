"""The optional ElastiCache Serverless path (RedisBackend=elasticache-serverless): off by
default, so an Upstash deploy is unchanged; when on, a TLS cluster-mode cache in the VPC,
the functions in its subnets, and settings that reach it as the code reads them."""

from __future__ import annotations

from typing import Any

import pytest
from jobs_core import RedisBackend, Settings
from jobs_core.queue.backends import backend_from_settings

from tests.template.cfn import Resolver, functions, samconfig_parameters

ENVIRONMENTS = ["default", "prod"]
CACHE_RESOURCES = {
    "FunctionSecurityGroup", "FunctionToCacheEgress", "CacheSecurityGroup", "ServerlessCache",
}  # fmt: skip
ELASTICACHE = {
    "RedisBackend": "elasticache-serverless",
    "CacheVpcId": "vpc-0123456789abcdef0",
    "CacheSubnetIds": "subnet-0aaa,subnet-0bbb",
}
ENDPOINT = {
    "ServerlessCache.Endpoint.Address": "q-abc.serverless.euw1.cache.amazonaws.com",
    "ServerlessCache.Endpoint.Port": "6379",
}


def created(template: dict[str, Any], resolver: Resolver) -> set[str]:
    return {
        name
        for name, res in template["Resources"].items()
        if "Condition" not in res or resolver.condition(res["Condition"])
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_by_default_nothing_changes_for_upstash(template: dict[str, Any], env: str) -> None:
    resolver = Resolver(template, samconfig_parameters(env))
    assert not created(template, resolver) & CACHE_RESOURCES
    assert all(template["Resources"][r]["Condition"] == "UseElastiCache" for r in CACHE_RESOURCES)
    for name, props in functions(template).items():
        resolved = resolver.resolve(props)
        assert "VpcConfig" not in resolved, name
        variables = resolved["Environment"]["Variables"]
        assert variables["JOBS_BACKEND"] == "upstash"
        assert "REDIS_URL" not in variables and "JOBS_REDIS_CLUSTER" not in variables


def test_elasticache_serverless_is_a_tls_cluster_in_the_vpc(template: dict[str, Any]) -> None:
    resolver = Resolver(template, samconfig_parameters("prod") | ELASTICACHE, attrs=ENDPOINT)
    assert created(template, resolver) >= CACHE_RESOURCES
    cache = resolver.resolve(template["Resources"]["ServerlessCache"]["Properties"])
    assert cache["Engine"] in ("valkey", "redis")
    assert cache["SubnetIds"] == ["subnet-0aaa", "subnet-0bbb"]
    assert cache["SecurityGroupIds"] == ["<CacheSecurityGroup>"]
    # The cache takes connections from the functions' security group only, on its ports.
    cache_sg = resolver.resolve(template["Resources"]["CacheSecurityGroup"]["Properties"])
    assert cache_sg["SecurityGroupIngress"] == [
        {
            "Description": cache_sg["SecurityGroupIngress"][0]["Description"],
            "IpProtocol": "tcp",
            "FromPort": 6379,
            "ToPort": 6380,
            "SourceSecurityGroupId": "<FunctionSecurityGroup>",
        }
    ]
    for name, props in functions(template).items():
        resolved = resolver.resolve(props)
        assert resolved["VpcConfig"] == {
            "SecurityGroupIds": ["<FunctionSecurityGroup>"],
            "SubnetIds": ["subnet-0aaa", "subnet-0bbb"],
        }, name
        variables = resolved["Environment"]["Variables"]
        assert variables["REDIS_URL"] == ("rediss://q-abc.serverless.euw1.cache.amazonaws.com:6379")
        # As the code reads it: the cluster client over TLS, and no Upstash secret read.
        env = {k: str(v) for k, v in variables.items()}

        def no_secret(name: str) -> str:
            raise AssertionError(f"read the secret {name}")

        settings = Settings.from_env(env, resolve_secret=no_secret)
        assert (settings.backend, settings.redis_cluster) == ("redis", True)
        backend = backend_from_settings(settings)
        assert isinstance(backend, RedisBackend) and backend.cluster is True


def test_rules_refuse_a_half_configured_backend(template: dict[str, Any]) -> None:
    rules = template["Rules"]
    assert rules["UpstashNeedsItsUrl"]["RuleCondition"] == {
        "Fn::Equals": [{"Ref": "RedisBackend"}, "upstash"]
    }
    needs = {str(a["Assert"]) for a in rules["ElastiCacheNeedsANetwork"]["Assertions"]}
    assert any("CacheVpcId" in a for a in needs) and any("CacheSubnetIds" in a for a in needs)
