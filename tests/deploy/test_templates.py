"""`chalice package` output: CloudFormation that passes cfn-lint, Terraform with what
Chalice leaves out and today's constraints, and stage policies without wildcards. The
committed stages have no batch path; the batch project switches it on for every stage
(configure --batch, on a copy). Each package is made once per run and shared
(`tests.packages`): the tests only read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib.surfaces.routes import PUBLIC_ROUTES
from deployment.batch_stack import (
    CHUNK_MAX_CONCURRENCY,
    MAX_RECEIVES,
    BatchStack,
    batch_stack,
    shared_resources,
)
from deployment.package import PackageRequestError, check_request
from deployment.policy import batch_problems, privilege_problems, stage_policy
from deployment.stages import stage_auth
from deployment.terraform import AWS_PROVIDER, REQUIRED_VERSION, attribute_problems
from layer_build.flavors import FLAVORS
from project_paths import CHALICE_CONFIG
from tests.batch_stages import with_batch
from tests.deploy.conftest import load
from tests.packages import Package, Packages, lint_errors

pytestmark = pytest.mark.deploy

STAGES = sorted(load(CHALICE_CONFIG)["stages"])


def own_runtime(stage: str) -> str:
    """The runtime `make vendor STAGE=` puts in vendor/ for the stage."""
    if stage.endswith("arm64"):
        return "lite-arm64"
    return "tensorflow" if stage.endswith("tensorflow") else "lite"


def test_prod_cloudformation_with_api_key_passes_cfn_lint(packages: Packages) -> None:
    chalice_dir = packages.project(batch=True) / ".chalice"
    package = packages(Package("prod", api_key=True, batch=True))
    template_path = package / "sam.json"
    assert lint_errors(package) == []

    resources = load(template_path)["Resources"]
    function = resources["APIHandler"]["Properties"]
    assert function["Runtime"] == "python3.12"
    assert function["Architectures"] == ["x86_64"]
    assert (function["MemorySize"], function["Timeout"]) == (256, 10)
    assert function["Environment"]["Variables"]["MODEL_BUCKET"] == "loan-models-prod"
    assert function["Layers"] == [{"Ref": "ManagedLayer"}]
    assert "EphemeralStorage" not in function
    role_policy = resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert role_policy == stage_policy("prod", chalice_dir)
    assert logs_where_the_role_may_write(resources) == "/aws/lambda/keras-model-serving-prod"
    assert resources["ApiHandlerLogGroup"]["Properties"]["RetentionInDays"] == 90
    # The optional API key: key, usage plan with throttling, and protected methods.
    plan = resources["UsagePlan"]["Properties"]
    assert plan["ApiStages"] == [{"ApiId": {"Ref": "RestAPI"}, "Stage": "api"}]
    assert set(plan["Throttle"]) == {"RateLimit", "BurstLimit"}
    assert resources["UsagePlanKey"]["Properties"]["KeyId"] == {"Ref": "ApiKey"}
    check_auth(resources["RestAPI"]["Properties"]["DefinitionBody"], "api_key")
    check_cloudformation_batch_path(resources, batch_stack("prod", chalice_dir / "config.json"),
                                    role_policy)  # fmt: skip


def check_cloudformation_batch_path(
    resources: dict[str, Any], stack: BatchStack, policy: dict[str, Any]
) -> None:
    """The stage's queues (chunks and input events redriven to the DLQ, visibility 6x the
    consumer's timeout), S3 allowed
    to send input events, and each handler named as chalice deploy names it, subscribed
    to its queue by reference with partial batch responses, with the stage policy."""
    queues = {r["Properties"]["QueueName"]: (name, r["Properties"])
              for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue"}  # fmt: skip
    assert set(queues) == {q.name for q in stack.queues}
    dlq_id, _ = queues[stack.dead_letters.name]
    for redriven in (stack.chunks, stack.input_events):  # both end in the one DLQ's handler
        assert queues[redriven.name][1]["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
            "maxReceiveCount": MAX_RECEIVES}  # fmt: skip
    for queue in stack.queues:
        queue_id, properties = queues[queue.name]
        assert properties["VisibilityTimeout"] == 6 * queue.timeout_s
        function = resources[queue.logical_id]["Properties"]
        assert function["FunctionName"] == queue.function
        assert function["Handler"] == f"app.{queue.handler}"
        assert function["Timeout"] == queue.timeout_s
        assert function["Environment"]["Variables"]["BATCH_CHUNK_QUEUE"] == stack.chunks.name
        role = resources[function["Role"]["Fn::GetAtt"][0]]["Properties"]
        assert role["Policies"][0]["PolicyDocument"] == policy
        [event] = function["Events"].values()
        assert event["Type"] == "SQS"
        assert event["Properties"]["Queue"] == {"Fn::Sub": f"${{{queue_id}.Arn}}"}
        assert event["Properties"]["BatchSize"] == queue.batch_size
        assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        scaling = event["Properties"].get("ScalingConfig")
        assert scaling == ({"MaximumConcurrency": CHUNK_MAX_CONCURRENCY}
                           if queue is stack.chunks else None)  # fmt: skip
        group = resources[f"{queue.logical_id}LogGroup"]["Properties"]["LogGroupName"]
        assert group == f"/aws/lambda/{queue.function}"
    [queue_policy] = [r["Properties"] for r in resources.values()
                      if r["Type"] == "AWS::SQS::QueuePolicy"]  # fmt: skip
    events_id, _ = queues[stack.input_events.name]
    assert queue_policy["Queues"] == [{"Ref": events_id}]
    [may_send] = queue_policy["PolicyDocument"]["Statement"]
    assert (may_send["Principal"], may_send["Action"]) == (
        {"Service": "s3.amazonaws.com"}, "sqs:SendMessage")  # fmt: skip
    assert may_send["Condition"]["ArnEquals"] == {"aws:SourceArn": f"arn:aws:s3:::{stack.bucket}"}


@pytest.mark.parametrize("stage", ["dev", "dev-tensorflow", "prod"])
def test_dev_cloudformation_carries_the_batch_path_and_passes_cfn_lint(
    packages: Packages, stage: str
) -> None:
    flavor = FLAVORS["tensorflow" if stage.endswith("tensorflow") else "lite"]
    chalice_dir = packages.project(batch=True) / ".chalice"
    package = packages(Package(stage, batch=True))
    assert lint_errors(package) == []
    resources = load(package / "sam.json")["Resources"]
    check_cloudformation_batch_path(resources, batch_stack(stage, chalice_dir / "config.json"),
                                    stage_policy(stage, chalice_dir))  # fmt: skip
    check_auth(resources["RestAPI"]["Properties"]["DefinitionBody"], stage_auth(stage))
    assert ("UsagePlan" in resources) == (stage_auth(stage) == "api_key")
    if flavor.ephemeral_storage_mb:  # every function unpacks the archived runtime
        functions = [r["Properties"] for r in resources.values()
                     if r["Type"] == "AWS::Serverless::Function"]  # fmt: skip
        assert len(functions) == 4
        assert {f["EphemeralStorage"]["Size"] for f in functions} == {flavor.ephemeral_storage_mb}


@pytest.mark.parametrize("stage", STAGES)
def test_a_bare_chalice_package_succeeds_for_every_stage(
    packages: Packages, tmp_path: Path, stage: str
) -> None:
    """`chalice package --stage S out/` as a Chalice user types it (after make vendor)."""
    chalice = Path(sys.executable).parent / "chalice"
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1"}
    with packages.chalice_in() as project:
        result = subprocess.run([str(chalice), "package", "--stage", stage,
                                 str(tmp_path / "out")], cwd=project, capture_output=True,
                                text=True, timeout=300, check=False, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    resources = load(tmp_path / "out" / "sam.json")["Resources"]
    arch = "arm64" if stage.endswith("arm64") else "x86_64"
    assert resources["APIHandler"]["Properties"]["Architectures"] == [arch]
    assert not any(r["Type"].startswith("AWS::SQS") for r in resources.values())


@pytest.mark.parametrize("stage", STAGES)
def test_every_committed_stage_packages_without_a_batch_path(
    packages: Packages, stage: str
) -> None:
    """The stages as committed, each packaged with its own runtime as vendor/ (the same
    packages the Lambda-like and arm64 tests read), name no queues: one function, no SQS
    anything, cfn-lint clean, and the architecture the stage sets (prod-arm64: arm64 on
    function and layer)."""
    package = packages(Package(stage, runtime=own_runtime(stage)))
    assert lint_errors(package) == []
    resources = load(package / "sam.json")["Resources"]
    kinds = {r["Type"] for r in resources.values()}
    assert not any("SQS" in kind for kind in kinds)
    [function] = [r["Properties"] for r in resources.values()
                  if r["Type"] == "AWS::Serverless::Function"]  # fmt: skip
    assert "Events" not in function
    arch = "arm64" if stage.endswith("arm64") else "x86_64"
    assert function["Architectures"] == [arch]
    assert resources["ManagedLayer"]["Properties"]["CompatibleArchitectures"] == [arch]
    assert logs_where_the_role_may_write(resources, batch=False) == (
        f"/aws/lambda/keras-model-serving-{stage}")  # fmt: skip


SECURITY: dict[str, Any] = {"iam": [{"sigv4": []}], "api_key": [{"api_key": []}], "none": None}
DEFINITIONS = {
    "iam": {"sigv4": {"in": "header", "type": "apiKey", "name": "Authorization",
                      "x-amazon-apigateway-authtype": "awsSigv4"}},
    "api_key": {"api_key": {"type": "apiKey", "name": "x-api-key", "in": "header"}},
    "none": None,
}  # fmt: skip


def check_auth(swagger: dict[str, Any], mode: str) -> None:
    """Every method of the REST API's swagger is public (PUBLIC_ROUTES) or carries the
    mode's security requirement, and the mode's scheme is defined."""
    methods = {(method.upper(), path): spec for path, item in swagger["paths"].items()
               for method, spec in item.items()}  # fmt: skip
    assert {("POST", "/predict"), ("GET", "/health"), ("POST", "/batch")} <= set(methods)
    for (method, path), spec in methods.items():
        assert "x-amazon-apigateway-integration" in spec  # merged, not replaced
        public = (method, path) in PUBLIC_ROUTES
        assert spec.get("security") == (None if public else SECURITY[mode]), (method, path)
    assert swagger.get("securityDefinitions") == DEFINITIONS[mode]


def logs_where_the_role_may_write(resources: dict[str, Any], batch: bool = True) -> str:
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
    handlers = ("score_batch_chunks", "fail_batch_chunks", "start_batch_jobs") if batch else ()
    groups = [group] + [f"{group}-{handler}" for handler in handlers]
    assert log_arns == {
        arn for g in groups for arn in (f"{prefix}{g}", f"{prefix}{g}:log-stream:*")
    }
    return group


def test_terraform_output_carries_log_retention_and_ephemeral_storage(
    packages: Packages,
) -> None:
    # The tensorflow flavor's template; vendor/ (the lite runtime) doesn't matter here.
    batch_project = packages.project(batch=True)
    out = packages(Package("dev-tensorflow", "terraform", batch=True))
    check_terraform_constraints(out)
    chalice_tf = load(out / "chalice.tf.json")
    check_auth(json.loads(chalice_tf["locals"]["chalice_api_swagger"]), "none")
    assert not (out / "api_key.tf.json").exists()
    resources = chalice_tf["resource"]
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
    stack = batch_stack("dev-tensorflow", batch_project / ".chalice" / "config.json")
    handlers = {q.handler for q in stack.queues}
    assert set(log_group) == set(override["aws_lambda_function"]) == {"api_handler", *handlers}

    # The batch path: queues (with the DLQ redrive) and an override for each mapping.
    queues = load(out / "batch_queues.tf.json")["resource"]
    by_name = {q["name"]: (key, q) for key, q in queues["aws_sqs_queue"].items()}
    assert set(by_name) == {q.name for q in stack.queues}
    dlq_key, _ = by_name[stack.dead_letters.name]
    for redriven in (stack.chunks, stack.input_events):
        assert by_name[redriven.name][1]["redrive_policy"] == (
            f"${{jsonencode({{deadLetterTargetArn = aws_sqs_queue.{dlq_key}.arn, "
            f"maxReceiveCount = {MAX_RECEIVES}}})}}")  # fmt: skip
    [(events_key, policy)] = queues["aws_sqs_queue_policy"].items()
    assert policy["queue_url"] == f"${{aws_sqs_queue.{events_key}.id}}"
    assert "s3.amazonaws.com" in policy["policy"]
    mappings = resources["aws_lambda_event_source_mapping"]
    overrides = load(out / "batch_event_sources_override.tf.json")["resource"][
        "aws_lambda_event_source_mapping"]  # fmt: skip
    assert set(overrides) == set(mappings)  # an override names resources Chalice made
    for queue in stack.queues:
        key, settings = by_name[queue.name]
        assert settings["visibility_timeout_seconds"] == 6 * queue.timeout_s
        assert queue.name in mappings[queue.terraform_mapping]["event_source_arn"]
        assert resources["aws_lambda_function"][queue.handler]["function_name"] == queue.function
        mapping = overrides[queue.terraform_mapping]
        assert mapping["event_source_arn"] == f"${{aws_sqs_queue.{key}.arn}}"
        assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
        assert mapping.get("scaling_config") == (
            {"maximum_concurrency": CHUNK_MAX_CONCURRENCY} if queue is stack.chunks else None
        )


def check_terraform_constraints(out: Path) -> None:
    """Terraform >= 1.5 and the AWS provider 5.x or 6.x (Chalice writes < 1.4.0 and < 5),
    no null provider, the stage as its own resource (provider 6 removed the deployment's
    stage_name), and every argument one the provider docs list for its resource type."""
    settings = load(out / "chalice.tf.json")["terraform"]
    assert settings == {"required_version": REQUIRED_VERSION,
                        "required_providers": {"aws": AWS_PROVIDER}}  # fmt: skip
    assert AWS_PROVIDER["version"] == ">= 5.0, < 7.0" and REQUIRED_VERSION == ">= 1.5"
    resources = load(out / "chalice.tf.json")["resource"]
    assert "stage_name" not in resources["aws_api_gateway_deployment"]["rest_api"]
    assert resources["aws_api_gateway_stage"]["rest_api"]["stage_name"] == "api"
    assert "null_data_source" not in load(out / "chalice.tf.json").get("data", {})
    assert attribute_problems(out) == []


@pytest.mark.parametrize("api_key", [False, True])
def test_terraform_carries_the_stages_auth(packages: Packages, api_key: bool) -> None:
    """prod is IAM; with --api-key, the key, its usage plan and the binding come in
    api_key.tf.json, referring to the resources Chalice's Terraform names."""
    out = packages(Package("prod", "terraform", api_key, batch=True))
    check_terraform_constraints(out)
    chalice_tf = load(out / "chalice.tf.json")
    check_auth(json.loads(chalice_tf["locals"]["chalice_api_swagger"]),
               "api_key" if api_key else "iam")  # fmt: skip
    assert (out / "api_key.tf.json").exists() == api_key
    if not api_key:
        return
    extra = load(out / "api_key.tf.json")["resource"]
    [plan] = extra["aws_api_gateway_usage_plan"].values()
    assert plan["throttle_settings"] == {"rate_limit": 50, "burst_limit": 100}
    assert plan["quota_settings"] == {"limit": 100000, "period": "DAY"}
    [stage] = plan["api_stages"]
    assert stage["api_id"] == "${aws_api_gateway_rest_api.rest_api.id}"
    assert set(chalice_tf["resource"]["aws_api_gateway_rest_api"]) == {"rest_api"}
    assert stage["stage"] == "${aws_api_gateway_stage.rest_api.stage_name}"
    [binding] = extra["aws_api_gateway_usage_plan_key"].values()
    assert binding == {"key_id": "${aws_api_gateway_api_key.client.id}", "key_type": "API_KEY",
                       "usage_plan_id": "${aws_api_gateway_usage_plan.client.id}"}  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_stage_policy_is_least_privilege(stage: str, tmp_path: Path) -> None:
    """As committed: logs of its one function and the model's bundles; with its batch
    path switched on, its prefixes too."""
    policy = stage_policy(stage)
    assert privilege_problems(policy) == []
    actions = {a for s in policy["Statement"] for a in s["Action"]}
    assert "s3:GetObject" in actions and not any("*" in action for action in actions)
    assert not any(action.startswith("sqs:") or action == "s3:PutObject" for action in actions)
    bucket = load(CHALICE_CONFIG)["stages"][stage]["environment_variables"]["MODEL_BUCKET"]
    s3_resources = [s["Resource"] for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
    assert s3_resources == [f"arn:aws:s3:::{bucket}/models/loan-grade/*"]
    with_batch(tmp_path, (stage,))
    batch_policy = stage_policy(stage, tmp_path / ".chalice")
    assert privilege_problems(batch_policy) == []
    s3_resources = [s["Resource"] for s in batch_policy["Statement"]
                    if "s3:GetObject" in s["Action"]]  # fmt: skip
    assert s3_resources == [f"arn:aws:s3:::{bucket}/models/loan-grade/*",
                            f"arn:aws:s3:::{bucket}/batch/{stage}/in/*",
                            f"arn:aws:s3:::{bucket}/batch/{stage}/out/*"]  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_stage_policy_grants_exactly_its_batch_path(stage: str, tmp_path: Path) -> None:
    config_path = with_batch(tmp_path)
    assert batch_problems(stage, tmp_path / ".chalice") == []
    stack = batch_stack(stage, config_path)
    policy = stage_policy(stage, tmp_path / ".chalice")
    sqs = {
        r
        for s in policy["Statement"]
        if any(a.startswith("sqs:") for a in s["Action"])
        for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    assert sqs == {f"arn:aws:sqs:*:*:{q.name}" for q in stack.queues}
    writes = [s["Resource"] for s in policy["Statement"] if "s3:PutObject" in s["Action"]]
    assert writes == [f"arn:aws:s3:::{stack.bucket}/batch/{stage}/out/*"]


def test_no_two_stages_share_queues_or_prefixes(tmp_path: Path) -> None:
    assert shared_resources() == []
    assert shared_resources(with_batch(tmp_path / "project")) == []
    config = load(tmp_path / "project" / ".chalice" / "config.json")
    config["stages"]["dev-tensorflow"]["environment_variables"].update(
        {k: v for k, v in config["stages"]["dev"]["environment_variables"].items()
         if k.startswith("BATCH_")})  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(config))
    problems = shared_resources(tmp_path / "config.json")
    assert "stages dev and dev-tensorflow share keras-model-serving-dev-batch-chunks" in problems
    assert "stages dev and dev-tensorflow share loan-models-dev batch/dev/in/" in problems


def test_package_refuses_a_stage_naming_only_some_of_its_queues(tmp_path: Path) -> None:
    config_path = with_batch(tmp_path, ("dev",))
    config = load(config_path)
    config["stages"]["dev"]["environment_variables"].pop("BATCH_CHUNK_QUEUE")
    config_path.write_text(json.dumps(config))
    with pytest.raises(PackageRequestError, match="stage dev: BATCH_CHUNK_QUEUE not set: a "
                       "stage names all three batch queues or none"):  # fmt: skip
        check_request(FLAVORS["lite"], "dev", "cloudformation", config_path)


def test_package_refuses_an_unknown_auth_mode(tmp_path: Path) -> None:
    config = load(CHALICE_CONFIG)
    config["stages"]["prod"]["environment_variables"]["API_AUTH"] = "open"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(PackageRequestError, match="stage prod: API_AUTH must be one of iam, "):
        check_request(FLAVORS["lite"], "prod", "cloudformation", tmp_path / "config.json")


def test_privilege_check_catches_wildcards() -> None:
    policy = {"Statement": [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/p/*"},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"},
        {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "arn:aws:logs:*:*:*"},
    ]}  # fmt: skip
    problems = privilege_problems(policy)
    assert len(problems) == 3
    assert "'s3:*'" in problems[0] and "'*'" in problems[1] and "arn:aws:logs:*:*:*" in problems[2]


def test_privilege_check_catches_unscoped_batch_grants() -> None:
    listing = {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "arn:aws:s3:::b",
               "Condition": {"StringLike": {"s3:prefix": ["batch/dev/in/*"]}}}  # fmt: skip
    assert privilege_problems({"Statement": [listing]}) == []
    unconditioned = {k: v for k, v in listing.items() if k != "Condition"}
    everything = {**listing, "Condition": {"StringLike": {"s3:prefix": ["*"]}}}
    policy = {"Statement": [
        unconditioned, everything,
        {"Effect": "Allow", "Action": ["sqs:*"], "Resource": "arn:aws:sqs:*:*:q"},
        {"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": "arn:aws:sqs:*:*:*"},
        {"Effect": "Allow", "Action": ["sqs:PurgeQueue"], "Resource": "arn:aws:sqs:*:*:q"},
    ]}  # fmt: skip
    problems = privilege_problems(policy)
    assert len(problems) == 5, problems
    assert "'arn:aws:s3:::b'" in problems[0] and "'arn:aws:s3:::b'" in problems[1]
    assert "'sqs:*'" in problems[2] and "arn:aws:sqs:*:*:*" in problems[3]
    assert "'sqs:PurgeQueue'" in problems[4]
