"""`chalice package` output: CloudFormation that passes cfn-lint, Terraform with what
Chalice leaves out, and stage policies without wildcards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployment.cfn_lint import cfn_lint_errors
from deployment.package import PackageOptionUnsupported, chalice_package
from deployment.policy import privilege_problems, stage_policy
from deployment.project import copy_project
from layer_build.flavors import FLAVORS
from project_paths import CHALICE_CONFIG
from tests.deploy.conftest import load

pytestmark = pytest.mark.deploy

STAGES = sorted(load(CHALICE_CONFIG)["stages"])


@pytest.fixture(scope="module")
def project(lite_vendor: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with the lite runtime as its vendor/."""
    return copy_project(tmp_path_factory.mktemp("project"), lite_vendor)


def test_prod_cloudformation_with_api_key_passes_cfn_lint(project: Path, tmp_path: Path) -> None:
    chalice_package(FLAVORS["lite"], "prod", api_key=True, project_dir=project,
                    out=tmp_path / "package")  # fmt: skip
    template_path = tmp_path / "package" / "sam.json"
    assert cfn_lint_errors(template_path) == []

    resources = load(template_path)["Resources"]
    function = resources["APIHandler"]["Properties"]
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["x86_64"]
    assert (function["MemorySize"], function["Timeout"]) == (256, 10)
    assert function["Environment"]["Variables"]["MODEL_BUCKET"] == "loan-models-prod"
    assert function["Layers"] == [{"Ref": "ManagedLayer"}]
    assert "EphemeralStorage" not in function
    role_policy = resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert role_policy == stage_policy("prod")
    assert logs_where_the_role_may_write(resources) == "/aws/lambda/keras-model-serving-prod"
    assert resources["ApiHandlerLogGroup"]["Properties"]["RetentionInDays"] == 90
    # The optional API key: key, usage plan with throttling, and protected methods.
    plan = resources["UsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": "api"}]
    assert set(plan["Throttle"]) == {"RateLimit", "BurstLimit"}
    assert resources["UsagePlanKey"]["Properties"]["KeyId"] == {"Ref": "ApiKey"}
    paths = resources["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    assert paths["/predict"]["post"]["security"] == [{"api_key": []}]
    assert paths["/model"]["get"]["security"] == [{"api_key": []}]
    assert "security" not in paths["/health"]["get"]
    assert "x-amazon-apigateway-integration" in paths["/predict"]["post"]  # merged, not replaced


def logs_where_the_role_may_write(resources: dict[str, Any]) -> str:
    """The function's name is what `chalice deploy` names it (CloudFormation would
    otherwise generate one), and the group it logs to, the retention group and the role's
    log permissions all name it: returns that log group."""
    name = resources["APIHandler"]["Properties"]["FunctionName"]
    group = f"/aws/lambda/{name}"
    assert resources["ApiHandlerLogGroup"]["Properties"]["LogGroupName"] == group
    document = resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    log_arns = {arn for statement in document["Statement"] for arn in statement["Resource"]
                if any(action.startswith("logs:") for action in statement["Action"])}  # fmt: skip
    prefix = "arn:aws:logs:*:*:log-group:"
    assert log_arns == {f"{prefix}{group}", f"{prefix}{group}:log-stream:*"}
    return group


def test_terraform_output_carries_log_retention_and_ephemeral_storage(
    project: Path, tmp_path: Path
) -> None:
    flavor = FLAVORS["tensorflow"]  # the template under test; vendor/ content doesn't matter
    out = tmp_path / "package"
    chalice_package(flavor, "dev-tensorflow", "terraform", project_dir=project, out=out)
    resources = load(out / "chalice.tf.json")["resource"]
    function = resources["aws_lambda_function"]["api_handler"]
    assert function["function_name"] == "keras-model-serving-dev-tensorflow"  # as the policy's
    assert (function["runtime"], function["memory_size"], function["timeout"]) == (
        "python3.12", 1769, 30)  # fmt: skip
    assert function["environment"]["variables"]["MODEL_ENGINE"] == "keras"
    assert function["layers"] == ["${aws_lambda_layer_version.managed-layer.arn}"]
    override = load(out / "ephemeral_storage_override.tf.json")["resource"]
    assert override["aws_lambda_function"]["api_handler"]["ephemeral_storage"] == {"size": 2048}
    assert set(override["aws_lambda_function"]) <= set(resources["aws_lambda_function"])
    log_group = load(out / "log_group.tf.json")["resource"]["aws_cloudwatch_log_group"]
    assert log_group["api_handler"] == {
        "name": "/aws/lambda/${aws_lambda_function.api_handler.function_name}",
        "retention_in_days": 14,
    }


def test_api_key_is_refused_for_terraform() -> None:
    with pytest.raises(PackageOptionUnsupported, match="CloudFormation"):
        chalice_package(FLAVORS["lite"], "prod", "terraform", api_key=True)


@pytest.mark.parametrize("stage", STAGES)
def test_stage_policy_is_least_privilege(stage: str) -> None:
    policy = stage_policy(stage)
    assert privilege_problems(policy) == []
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert "s3:GetObject" in actions and not any("*" in action for action in actions)
    bucket = load(CHALICE_CONFIG)["stages"][stage]["environment_variables"]["MODEL_BUCKET"]
    s3_resources = [s["Resource"] for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
    assert s3_resources == [f"arn:aws:s3:::{bucket}/models/loan-grade/*"]


def test_privilege_check_catches_wildcards() -> None:
    policy = {"Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/p/*"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "arn:aws:logs:*:*:*"},
    ]}  # fmt: skip
    problems = privilege_problems(policy)
    assert len(problems) == 3
    assert "'s3:*'" in problems[0] and "'*'" in problems[1] and "arn:aws:logs:*:*:*" in problems[2]
