"""`chalice deploy` and `chalice delete` against moto's server standing in for AWS
(AWS_ENDPOINT_URL, dummy credentials), read back with boto3.

moto can't import Chalice's Swagger 2.0 REST API unaided; `deployment/moto_aws.py` says
exactly why and shims those two calls in the stand-in (a moto server in this process,
on a port the kernel picked). Everything else is moto as is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployment.moto_aws import aws_stand_in
from deployment.policy import stage_policy
from deployment.project import copy_project
from deployment.stages import stage_environment
from localdev.servers import LOCAL_AWS_ENV, MotoServer

FUNCTION = "keras-model-serving-dev"
ROLE = "keras-model-serving-dev-api_handler"  # Chalice: <app>-<stage>-<function>
RESERVED_CONCURRENCY = 5  # the option, switched on in the rehearsal's copy of the config

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoServer]:
    with aws_stand_in() as server:
        yield server


def chalice(project: Path, aws: MotoServer, *args: str) -> str:
    env = {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": aws.url, "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "chalice"), *args], cwd=project, env=env,
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def client(aws: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=aws.url,
        region_name=LOCAL_AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


def with_reserved_concurrency(config: dict[str, Any]) -> None:
    config["stages"]["dev"]["reserved_concurrency"] = RESERVED_CONCURRENCY


def test_deploy_then_delete(aws: MotoServer, lite_vendor: Path, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project", lite_vendor, with_reserved_concurrency)
    print(chalice(project, aws, "deploy", "--stage", "dev"))
    deployed = json.loads((project / ".chalice" / "deployed" / "dev.json").read_text())
    by_type = {r["resource_type"]: r for r in deployed["resources"]}

    lam = client(aws, "lambda")
    function = lam.get_function(FunctionName=FUNCTION)["Configuration"]
    assert function["Runtime"] == "python3.12" and function["Handler"] == "app.app"
    assert function["Architectures"] == ["x86_64"]
    assert (function["MemorySize"], function["Timeout"]) == (256, 10)
    assert function["Environment"]["Variables"] == stage_environment("dev")
    [layer] = function["Layers"]
    *_, layer_name, version = layer["Arn"].split(":")  # moto's GetLayerVersionByArn 500s
    layer_version = lam.get_layer_version(LayerName=layer_name, VersionNumber=int(version))
    assert layer_version["CompatibleRuntimes"] == ["python3.12"]
    assert 20 * 2**20 < layer_version["Content"]["CodeSize"] < 50 * 2**20  # the lite runtime
    assert lam.get_function_concurrency(FunctionName=FUNCTION)[
        "ReservedConcurrentExecutions"] == RESERVED_CONCURRENCY  # fmt: skip
    assert function["Role"].endswith(f":role/{ROLE}")

    iam = client(aws, "iam")
    [policy_name] = iam.list_role_policies(RoleName=ROLE)["PolicyNames"]
    document = iam.get_role_policy(RoleName=ROLE, PolicyName=policy_name)["PolicyDocument"]
    assert document == stage_policy("dev")
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []

    api_id = by_type["rest_api"]["rest_api_id"]
    apigw = client(aws, "apigateway")
    methods = {}
    for resource in apigw.get_resources(restApiId=api_id)["items"]:
        for method in resource.get("resourceMethods", {}):
            integration = apigw.get_integration(restApiId=api_id, resourceId=resource["id"],
                                                httpMethod=method)  # fmt: skip
            methods[(method, resource["path"])] = integration
    v2_models = ("/v2/models/{name}", "/v2/models/{name}/versions/{version}")
    assert set(methods) == {
        ("POST", "/predict"), ("GET", "/health"), ("GET", "/model"), ("GET", "/openapi.json"),
        ("GET", "/v2"), ("GET", "/v2/health/live"), ("GET", "/v2/health/ready"),
        *(("GET", path) for path in v2_models), *(("GET", f"{path}/ready") for path in v2_models),
        *(("POST", f"{path}/infer") for path in v2_models),
    }  # fmt: skip
    for integration in methods.values():
        assert integration["type"].upper() == "AWS_PROXY"  # Chalice writes aws_proxy
        assert function["FunctionArn"] in integration["uri"]
    assert [s["stageName"] for s in apigw.get_stages(restApiId=api_id)["item"]] == ["api"]
    permission = json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]
    assert any(s["Principal"] == {"Service": "apigateway.amazonaws.com"} for s in permission)

    # Retention lands on Chalice's own name for the group (<function>-api_handler), not on
    # /aws/lambda/<function> where Lambda writes; the README gives the one-line fix.
    [log_group] = client(aws, "logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{FUNCTION}")["logGroups"]  # fmt: skip
    assert log_group["logGroupName"] == by_type["log_group"]["log_group_name"]
    assert log_group["retentionInDays"] == 14

    print(chalice(project, aws, "delete", "--stage", "dev"))
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=FUNCTION)
    with pytest.raises(apigw.exceptions.NotFoundException):
        apigw.get_rest_api(restApiId=api_id)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=ROLE)
    remaining_layers = [
        version
        for listed in lam.list_layers()["Layers"]
        for version in lam.list_layer_versions(LayerName=listed["LayerName"])["LayerVersions"]
    ]
    assert remaining_layers == []
