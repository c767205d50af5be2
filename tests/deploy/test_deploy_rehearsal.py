"""`chalice deploy` as a Chalice user types it, and `make deploy`'s steps, against moto's
server standing in for AWS (AWS_ENDPOINT_URL, dummy credentials), read back with boto3:

- a bare `chalice deploy --stage S` of dev, prod and prod-arm64 as committed (functions,
  routes and their auth, layer, architecture; no batch path, so no event sources);
- a bare `chalice deploy` of a stage whose config names its batch queues, after
  `batch_setup --queues-only` made them: Chalice subscribes the three handlers as declared;
- `make deploy` of dev with its batch path and API_AUTH=api_key (queues, mappings with
  partial batch responses, notification, key helper), `chalice delete`, then afresh
  with iam, each method's authorization read back.

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

from chalicelib.surfaces.routes import PUBLIC_ROUTES
from deployment.batch_stack import CHUNK_MAX_CONCURRENCY, BatchStack, batch_stack
from deployment.moto_aws import aws_stand_in
from deployment.policy import stage_policy
from deployment.project import copy_project
from deployment.stages import stage_auth, stage_environment
from layer_build.cache import runtime_vendor_dir
from layer_build.flavors import FLAVORS
from layer_build.platforms import ARM64
from localdev.servers import LOCAL_AWS_ENV, MotoServer
from project_paths import PROJECT_DIR
from tests.batch_stages import with_batch

FUNCTION = "keras-model-serving-dev"
ROLE = "keras-model-serving-dev-api_handler"  # Chalice: <app>-<stage>-<function>
RESERVED_CONCURRENCY = 5  # the option, switched on in the rehearsal's copy of the config

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def aws() -> Iterator[MotoServer]:
    with aws_stand_in() as server:
        yield server


def run(command: list[str], cwd: Path, aws: MotoServer) -> str:
    env = {**LOCAL_AWS_ENV, "AWS_ENDPOINT_URL": aws.url, "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            check=False, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def chalice(project: Path, aws: MotoServer, *args: str) -> str:
    return run([str(Path(sys.executable).parent / "chalice"), *args], project, aws)


def make_deploy(project: Path, aws: MotoServer, stage: str) -> str:
    """What `make deploy STAGE=` runs after building vendor/ (the copy has its own)."""
    command = [sys.executable, "-m", "deployment.deploy", "--stage", stage,
               "--project-dir", str(project)]  # fmt: skip
    return run(command, PROJECT_DIR, aws)


def client(aws: MotoServer, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=aws.url,
        region_name=LOCAL_AWS_ENV["AWS_DEFAULT_REGION"],
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
    )


V2_MODELS = ("/v2/models/{name}", "/v2/models/{name}/versions/{version}")
ROUTES = {
    ("POST", "/predict"), ("GET", "/health"), ("GET", "/model"), ("GET", "/openapi.json"),
    ("POST", "/batch"), ("GET", "/batch/{job}"),
    ("GET", "/v2"), ("GET", "/v2/health/live"), ("GET", "/v2/health/ready"),
    *(("GET", path) for path in V2_MODELS), *(("GET", f"{path}/ready") for path in V2_MODELS),
    *(("POST", f"{path}/infer") for path in V2_MODELS),
}  # fmt: skip
AUTHORIZATION = {"iam": "AWS_IAM", "none": None}


@pytest.fixture(scope="module")
def arm64_vendor() -> Path:
    """The lite runtime built from aarch64 wheels (cached; no proof: it can't run here)."""
    return runtime_vendor_dir(FLAVORS["lite"], arch=ARM64)


def deployed_resources(project: Path, stage: str) -> dict[str, Any]:
    deployed = json.loads((project / ".chalice" / "deployed" / f"{stage}.json").read_text())
    return {r["resource_type"]: r for r in deployed["resources"]}


@pytest.mark.parametrize("stage", ["dev", "prod", "prod-arm64"])
def test_bare_chalice_deploy_of_a_committed_stage(
    aws: MotoServer, lite_vendor: Path, arm64_vendor: Path, tmp_path: Path, stage: str
) -> None:
    """`make vendor STAGE=S`, then `chalice deploy --stage S`: nothing else."""
    arch = "arm64" if stage.endswith("arm64") else "x86_64"
    project = copy_project(tmp_path / "project", arm64_vendor if arch == "arm64" else lite_vendor)
    print(chalice(project, aws, "deploy", "--stage", stage))
    name = f"keras-model-serving-{stage}"
    lam = client(aws, "lambda")
    function = lam.get_function(FunctionName=name)["Configuration"]
    assert function["Runtime"] == "python3.12" and function["Handler"] == "app.app"
    assert function["Architectures"] == [arch]
    assert function["Environment"]["Variables"] == stage_environment(stage)
    [layer] = function["Layers"]
    *_, layer_name, version = layer["Arn"].split(":")  # moto's GetLayerVersionByArn 500s
    layer_version = lam.get_layer_version(LayerName=layer_name, VersionNumber=int(version))
    assert layer_version["CompatibleRuntimes"] == ["python3.12"]
    assert layer_version["CompatibleArchitectures"] == [arch]
    assert 20 * 2**20 < layer_version["Content"]["CodeSize"] < 50 * 2**20  # the lite runtime
    # No batch path declared: no batch functions, no event sources.
    names = {f["FunctionName"] for f in lam.list_functions()["Functions"]}
    assert {n for n in names if n.startswith(f"{name}-")} == set()
    assert lam.list_event_source_mappings(FunctionName=name)["EventSourceMappings"] == []
    api_id = deployed_resources(project, stage)["rest_api"]["rest_api_id"]
    auth = method_auth(aws, api_id)
    assert set(auth) == ROUTES
    mode = stage_auth(stage)
    for (method, path), (authorization, key_required) in auth.items():
        public = (method, path) in PUBLIC_ROUTES
        assert authorization == (None if public else AUTHORIZATION[mode]), (method, path)
        assert not key_required
    print(chalice(project, aws, "delete", "--stage", stage))
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)


def test_bare_chalice_deploy_subscribes_a_declared_batch_path(
    aws: MotoServer, lite_vendor: Path, tmp_path: Path
) -> None:
    """A stage naming its queues (configure --batch): once they exist, a plain `chalice
    deploy` subscribes the three handlers to them as declared; the helper then adds what
    Chalice can't (partial batch responses, maximum concurrency, the notification)."""
    project = copy_project(tmp_path / "project", lite_vendor)
    stack = batch_stack("prod", with_batch(project, ("prod",)))
    client(aws, "s3").create_bucket(Bucket=stack.bucket)
    helper = [sys.executable, "-m", "deployment.batch_setup", "--stage", "prod",
              "--project-dir", str(project)]  # fmt: skip
    print(run([*helper, "--queues-only"], PROJECT_DIR, aws))
    print(chalice(project, aws, "deploy", "--stage", "prod"))
    sqs, lam = client(aws, "sqs"), client(aws, "lambda")
    for queue in stack.queues:
        arn = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=queue.name)[
            "QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # fmt: skip
        [mapping] = lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
        assert mapping["FunctionArn"].endswith(f":function:{queue.function}")
        assert mapping["BatchSize"] == queue.batch_size
        assert not mapping.get("FunctionResponseTypes")  # Chalice can't set it
    print(run(helper, PROJECT_DIR, aws))
    check_mappings(aws, stack)
    print(chalice(project, aws, "delete", "--stage", "prod"))
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []


def check_mappings(aws: MotoServer, stack: BatchStack) -> None:
    """Each queue's one mapping has partial batch responses; the chunk one a concurrency cap."""
    sqs, lam = client(aws, "sqs"), client(aws, "lambda")
    for queue in stack.queues:
        arn = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=queue.name)[
            "QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # fmt: skip
        [mapping] = lam.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        if queue is stack.chunks:
            assert mapping["ScalingConfig"] == {"MaximumConcurrency": CHUNK_MAX_CONCURRENCY}


def with_reserved_concurrency(config: dict[str, Any]) -> None:
    """The rehearsal's dev: reserved concurrency on, and the API key auth (dev is `none`
    in the real config), so `make deploy` also runs the key helper."""
    config["stages"]["dev"]["reserved_concurrency"] = RESERVED_CONCURRENCY
    config["stages"]["dev"]["environment_variables"]["API_AUTH"] = "api_key"


def set_auth(project: Path, mode: str) -> None:
    config_path = project / ".chalice" / "config.json"
    config = json.loads(config_path.read_text())
    config["stages"]["dev"]["environment_variables"]["API_AUTH"] = mode
    config_path.write_text(json.dumps(config, indent=2))


def method_auth(aws: MotoServer, api_id: str) -> dict[tuple[str, str], tuple[Any, bool]]:
    """(authorizationType, apiKeyRequired) of every method of the deployed API."""
    apigw = client(aws, "apigateway")
    return {
        (method, resource["path"]): (spec.get("authorizationType"), spec["apiKeyRequired"])
        for resource in apigw.get_resources(restApiId=api_id)["items"]
        for method in resource.get("resourceMethods", {})
        for spec in [
            apigw.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
        ]
    }


def check_api_key(aws: MotoServer, api_id: str) -> None:
    """One key, one usage plan on the deployed API's stage with throttling and a quota,
    one binding; every method but the public ones needs the key."""
    apigw = client(aws, "apigateway")
    [key] = apigw.get_api_keys()["items"]
    assert key["name"] == f"{FUNCTION}-client" and key["enabled"]
    [plan] = apigw.get_usage_plans()["items"]
    assert plan["name"] == FUNCTION
    assert plan["apiStages"] == [{"apiId": api_id, "stage": "api"}]
    assert plan["throttle"] == {"rateLimit": 50.0, "burstLimit": 100}
    assert plan["quota"]["limit"] == 100000 and plan["quota"]["period"] == "DAY"
    [bound] = apigw.get_usage_plan_keys(usagePlanId=plan["id"])["items"]
    assert bound["id"] == key["id"]
    for (method, path), (_, key_required) in method_auth(aws, api_id).items():
        assert key_required == ((method, path) not in PUBLIC_ROUTES), (method, path)


def test_make_deploy_with_the_batch_path_then_delete(
    aws: MotoServer, lite_vendor: Path, tmp_path: Path
) -> None:
    project = copy_project(tmp_path / "project", lite_vendor, with_reserved_concurrency)
    stack = batch_stack("dev", with_batch(project, ("dev",)))
    policy = stage_policy("dev", project / ".chalice")
    client(aws, "s3").create_bucket(Bucket=stack.bucket)  # the model bucket exists already
    print(make_deploy(project, aws, "dev"))
    deployed_env = stage_environment("dev", project / ".chalice" / "config.json")
    deployed = json.loads((project / ".chalice" / "deployed" / "dev.json").read_text())
    by_type = {r["resource_type"]: r for r in deployed["resources"]}

    lam = client(aws, "lambda")
    function = lam.get_function(FunctionName=FUNCTION)["Configuration"]
    assert function["Runtime"] == "python3.12" and function["Handler"] == "app.app"
    assert function["Architectures"] == ["x86_64"]
    assert (function["MemorySize"], function["Timeout"]) == (256, 10)
    assert function["Environment"]["Variables"] == deployed_env
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
    assert document == policy
    assert iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"] == []

    api_id = by_type["rest_api"]["rest_api_id"]
    apigw = client(aws, "apigateway")
    methods = {}
    for resource in apigw.get_resources(restApiId=api_id)["items"]:
        for method in resource.get("resourceMethods", {}):
            integration = apigw.get_integration(restApiId=api_id, resourceId=resource["id"],
                                                httpMethod=method)  # fmt: skip
            methods[(method, resource["path"])] = integration
    assert set(methods) == ROUTES
    for integration in methods.values():
        assert integration["type"].upper() == "AWS_PROXY"  # Chalice writes aws_proxy
        assert function["FunctionArn"] in integration["uri"]
    assert [s["stageName"] for s in apigw.get_stages(restApiId=api_id)["item"]] == ["api"]
    permission = json.loads(lam.get_policy(FunctionName=FUNCTION)["Policy"])["Statement"]
    assert any(s["Principal"] == {"Service": "apigateway.amazonaws.com"} for s in permission)

    # Retention lands on Chalice's own name for the group (<function>-api_handler), not on
    # /aws/lambda/<function> where Lambda writes; the README gives the one-line fix.
    # The batch functions' groups are named as they log (<function> is <app>-<stage>-<handler>).
    log_groups = client(aws, "logs").describe_log_groups(
        logGroupNamePrefix=f"/aws/lambda/{FUNCTION}")["logGroups"]  # fmt: skip
    assert {group["logGroupName"] for group in log_groups} == {
        f"/aws/lambda/{FUNCTION}-{handler}" for handler in
        ("api_handler", "score_batch_chunks", "fail_batch_chunks", "start_batch_jobs")}  # fmt: skip
    assert {group["retentionInDays"] for group in log_groups} == {14}

    check_batch_path(aws, function["Role"].rsplit("/", 1)[0], policy, deployed_env, stack)
    # The helpers alone, again (after a plain `chalice deploy`): nothing doubles.
    for module in ("deployment.batch_setup", "deployment.api_keys"):
        print(run([sys.executable, "-m", module, "--stage", "dev", "--project-dir", str(project)],
                  PROJECT_DIR, aws))  # fmt: skip
    check_batch_path(aws, function["Role"].rsplit("/", 1)[0], policy, deployed_env, stack)
    check_api_key(aws, api_id)

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
    assert lam.list_event_source_mappings()["EventSourceMappings"] == []
    # The queues are the helper's, not Chalice's: they stay (README: teardown).
    sqs = client(aws, "sqs")
    assert {sqs.get_queue_url(QueueName=q.name)["QueueUrl"].rsplit("/", 1)[1]
            for q in stack.queues} == {q.name for q in stack.queues}  # fmt: skip

    # The stage deployed afresh with IAM (moto can't redeploy over a layer: no
    # GetLayerVersionByArn): SigV4 on every method but the public ones.
    set_auth(project, "iam")
    print(make_deploy(project, aws, "dev"))
    deployed = json.loads((project / ".chalice" / "deployed" / "dev.json").read_text())
    [api] = [r for r in deployed["resources"] if r["resource_type"] == "rest_api"]
    auth = method_auth(aws, api["rest_api_id"])
    assert ("POST", "/predict") in auth
    for (method, path), (authorization, key_required) in auth.items():
        public = (method, path) in PUBLIC_ROUTES
        assert authorization == (None if public else "AWS_IAM"), (method, path)
        assert not key_required, (method, path)
    print(chalice(project, aws, "delete", "--stage", "dev"))


def check_batch_path(aws: MotoServer, role_prefix: str, policy: dict[str, Any],
                     environment: dict[str, str], stack: BatchStack) -> None:  # fmt: skip
    """The stage's queues, the DLQ redrives, the queue policy for S3, the three event
    source mappings with partial batch responses, the bucket's notification, and each
    batch function with its own role holding the stage policy."""
    sqs, lam, iam = client(aws, "sqs"), client(aws, "lambda"), client(aws, "iam")
    attributes = {}
    for queue in stack.queues:
        url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
        attributes[queue.name] = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["All"])["Attributes"]  # fmt: skip
    chunks, dlq, events = (attributes[q.name] for q in stack.queues)
    for redriven in (chunks, events):  # a poison chunk or input event ends in the DLQ handler
        assert json.loads(redriven["RedrivePolicy"]) == {
            "deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 3}  # fmt: skip
    for queue in stack.queues:  # above 6x the consumer's timeout, as AWS advises
        assert int(attributes[queue.name]["VisibilityTimeout"]) >= 6 * queue.timeout_s
    assert (int(chunks["VisibilityTimeout"]), int(events["VisibilityTimeout"])) == (360, 1800)
    [may_send] = json.loads(events["Policy"])["Statement"]
    assert may_send["Principal"] == {"Service": "s3.amazonaws.com"}
    assert may_send["Condition"]["ArnEquals"] == {"aws:SourceArn": f"arn:aws:s3:::{stack.bucket}"}

    for queue in stack.queues:
        function = lam.get_function(FunctionName=queue.function)["Configuration"]
        assert function["Handler"] == f"app.{queue.handler}"
        assert function["Timeout"] == queue.timeout_s
        assert function["Environment"]["Variables"] == environment
        role = f"{role_prefix}/keras-model-serving-dev-{queue.handler}"
        assert function["Role"] == role
        [name] = iam.list_role_policies(RoleName=role.rsplit("/", 1)[1])["PolicyNames"]
        assert iam.get_role_policy(RoleName=role.rsplit("/", 1)[1], PolicyName=name)[
            "PolicyDocument"] == policy  # fmt: skip
        [mapping] = lam.list_event_source_mappings(
            EventSourceArn=attributes[queue.name]["QueueArn"])["EventSourceMappings"]  # fmt: skip
        assert mapping["FunctionArn"] == function["FunctionArn"]
        assert mapping["BatchSize"] == queue.batch_size
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        if queue is stack.chunks:
            assert mapping["ScalingConfig"] == {"MaximumConcurrency": CHUNK_MAX_CONCURRENCY}

    notification = client(aws, "s3").get_bucket_notification_configuration(Bucket=stack.bucket)
    [input_events] = notification["QueueConfigurations"]
    assert input_events["QueueArn"] == events["QueueArn"]
    assert input_events["Events"] == ["s3:ObjectCreated:*"]
    [rule] = input_events["Filter"]["Key"]["FilterRules"]  # S3 answers "Prefix", moto as sent
    assert (rule["Name"].lower(), rule["Value"]) == ("prefix", stack.input_prefix)
