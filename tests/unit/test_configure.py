"""deployment.configure's pure logic: validation, the planned config and policy files."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from deployment.configure import (
    ConfigureError,
    Plan,
    Request,
    bucket_name_problem,
    log_statement,
    plan,
    read_statement,
)
from deployment.policy import privilege_problems

BUCKET = "loan-models-123456789012-eu-west-1"


def shared_policy(*functions: str) -> dict[str, Any]:
    """A policy file as the project had it: one file for a stage and its tensorflow twin."""
    logs = log_statement(functions[0])
    logs["Resource"] = [arn.replace(functions[0], f) for f in functions for arn in
                        log_statement(functions[0])["Resource"]]  # fmt: skip
    extra = {"Sid": "Extra", "Effect": "Allow", "Action": ["s3:ListBucket"],
             "Resource": "arn:aws:s3:::loan-models-dev/models/*"}  # fmt: skip
    read = read_statement("loan-models-dev", "models/loan-grade")
    return {"Version": "2012-10-17", "Statement": [logs, read, extra]}


def project_config() -> dict[str, Any]:
    def stage(policy: str, **extra: Any) -> dict[str, Any]:
        env = {"MODEL_BUCKET": "loan-models-dev", "MODEL_PREFIX": "models/loan-grade"}
        return {"autogen_policy": False, "iam_policy_file": policy,
                "environment_variables": env, **extra}  # fmt: skip

    return {"version": "2.0", "app_name": "app", "stages": {
        "dev": stage("policy-dev.json"),
        "dev-tensorflow": stage("policy-dev.json", lambda_memory_size=1769),
        "prod": stage("policy-prod.json"),
    }}  # fmt: skip


def project_policies() -> dict[str, dict[str, Any]]:
    return {"policy-dev.json": shared_policy("app-dev", "app-dev-tensorflow"),
            "policy-prod.json": shared_policy("app-prod")}  # fmt: skip


def configured(
    *stages: str, model: str = "credit-risk", memory: int | None = None, batch: bool = True
) -> Plan:
    request = Request(BUCKET, model, stages, memory, batch)
    return plan(project_config(), project_policies(), request)


def statement(document: dict[str, Any], sid: str) -> dict[str, Any]:
    [found] = [s for s in document["Statement"] if s.get("Sid") == sid]
    return found


def test_a_stage_gets_the_bucket_the_model_prefix_and_its_own_policy() -> None:
    result = configured("prod", memory=512)
    prod = result.config["stages"]["prod"]
    assert prod["environment_variables"] == {
        "MODEL_BUCKET": BUCKET, "MODEL_PREFIX": "models/credit-risk",
        # --batch: the stage's own queues and prefixes (app.py subscribes to them).
        "BATCH_CHUNK_QUEUE": "app-prod-batch-chunks",
        "BATCH_DEAD_LETTER_QUEUE": "app-prod-batch-chunks-dlq",
        "BATCH_EVENTS_QUEUE": "app-prod-batch-input-events",
        "BATCH_INPUT_PREFIX": "batch/prod/in/", "BATCH_OUTPUT_PREFIX": "batch/prod/out/",
    }  # fmt: skip
    assert prod["lambda_functions"]["score_batch_chunks"] == {"lambda_timeout": 60}
    assert prod["lambda_memory_size"] == 512
    assert prod["iam_policy_file"] == "policy-prod.json"
    policy = result.policies["policy-prod.json"]
    assert statement(policy, "ReadModelBundles")["Resource"] == (
        f"arn:aws:s3:::{BUCKET}/models/credit-risk/*")  # fmt: skip
    groups = [f"arn:aws:logs:*:*:log-group:/aws/lambda/app-prod{function}" for function in
              ("", "-score_batch_chunks", "-fail_batch_chunks", "-start_batch_jobs")]  # fmt: skip
    assert statement(policy, "OwnLogGroups")["Resource"] == [
        arn for group in groups for arn in (group, f"{group}:log-stream:*")]  # fmt: skip
    # The batch path: exactly its prefixes and its own queues.
    assert statement(policy, "ReadBatchInput")["Resource"] == (
        f"arn:aws:s3:::{BUCKET}/batch/prod/in/*")  # fmt: skip
    assert statement(policy, "WriteBatchOutput") == {
        "Sid": "WriteBatchOutput", "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": f"arn:aws:s3:::{BUCKET}/batch/prod/out/*"}  # fmt: skip
    listing = statement(policy, "ListBatchPrefixes")
    assert listing["Resource"] == f"arn:aws:s3:::{BUCKET}"
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [
        "batch/prod/in/*", "batch/prod/out/*"]}}  # fmt: skip
    assert statement(policy, "ConsumeBatchQueues")["Resource"] == [
        f"arn:aws:sqs:*:*:app-prod-batch-{name}"
        for name in ("chunks", "chunks-dlq", "input-events")]  # fmt: skip
    assert statement(policy, "SendBatchChunks") == {
        "Sid": "SendBatchChunks", "Effect": "Allow",
        "Action": ["sqs:GetQueueUrl", "sqs:SendMessage"],
        "Resource": "arn:aws:sqs:*:*:app-prod-batch-chunks"}  # fmt: skip
    assert privilege_problems(policy) == []
    assert set(result.policies) == {"policy-prod.json"}  # dev's files untouched
    assert result.config["stages"]["dev"] == project_config()["stages"]["dev"]


def test_a_stage_sharing_its_policy_file_is_split_from_its_twin_whose_access_stays() -> None:
    result = configured("dev-tensorflow")
    stages = result.config["stages"]
    assert stages["dev-tensorflow"]["iam_policy_file"] == "policy-dev-tensorflow.json"
    assert stages["dev"]["iam_policy_file"] == "policy-dev.json"
    assert stages["dev"]["environment_variables"]["MODEL_BUCKET"] == "loan-models-dev"
    dev, tf = result.policies["policy-dev.json"], result.policies["policy-dev-tensorflow.json"]
    # Each role may write only its own function's logs now.
    assert all(
        "app-dev-tensorflow" not in arn for arn in statement(dev, "OwnLogGroups")["Resource"]
    )
    assert all("app-dev-tensorflow" in arn for arn in statement(tf, "OwnLogGroups")["Resource"])
    # dev keeps reading the old model; dev-tensorflow reads the new one.
    assert statement(dev, "ReadModelBundles")["Resource"].startswith(
        "arn:aws:s3:::loan-models-dev/"
    )
    assert statement(tf, "ReadModelBundles")["Resource"].startswith(f"arn:aws:s3:::{BUCKET}/")
    # Statements configure doesn't own are kept, in both files.
    assert statement(dev, "Extra") == statement(tf, "Extra") == shared_policy("x")["Statement"][2]
    assert result.unused == ()


def test_configuring_both_stages_of_a_pair_keeps_them_consistent() -> None:
    result = configured("dev", "dev-tensorflow")
    reads = {name: statement(doc, "ReadModelBundles") for name, doc in result.policies.items()}
    assert set(reads) == {"policy-dev.json", "policy-dev-tensorflow.json"}
    assert len({read["Resource"] for read in reads.values()}) == 1
    for doc in result.policies.values():
        assert privilege_problems({"Statement": doc["Statement"][:2]}) == []


def test_planning_the_result_again_changes_nothing() -> None:
    first = configured("dev", "prod")
    policies = {**project_policies(), **first.policies}
    again = plan(first.config, policies, Request(BUCKET, "credit-risk", ("dev", "prod")))
    assert again.config == first.config
    assert set(again.policies) == {"policy-dev.json", "policy-prod.json"}
    assert all(policies[name] == doc for name, doc in again.policies.items())


def test_a_stage_with_a_generated_policy_gets_a_file_of_its_own() -> None:
    config = project_config()
    config["stages"]["prod"] = {"autogen_policy": True}
    result = plan(config, project_policies(), Request(BUCKET, "m", ("prod",), batch=True))
    assert result.config["stages"]["prod"]["autogen_policy"] is False
    assert [s["Sid"] for s in result.policies["policy-prod.json"]["Statement"]] == [
        "OwnLogGroups", "ReadModelBundles", "ReadBatchInput", "WriteBatchOutput",
        "ListBatchPrefixes", "ConsumeBatchQueues", "SendBatchChunks"]  # fmt: skip
    assert result.unused == ()  # policy-prod.json is the stage's own again


def test_a_custom_policy_file_no_stage_uses_any_more_is_reported() -> None:
    config = project_config()
    config["stages"]["prod"]["iam_policy_file"] = "prod-role.json"
    policies = {**project_policies(), "prod-role.json": shared_policy("app-prod")}
    del policies["policy-prod.json"]
    result = plan(config, policies, Request(BUCKET, "m", ("prod",)))
    assert result.config["stages"]["prod"]["iam_policy_file"] == "policy-prod.json"
    assert result.unused == ("prod-role.json",)


def test_the_input_is_not_modified() -> None:
    config, policies = project_config(), project_policies()
    before = copy.deepcopy((config, policies))
    plan(config, policies, Request(BUCKET, "m", ("dev",)))
    assert (config, policies) == before


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ab", "3-63 characters"),
        ("a" * 64, "3-63 characters"),
        ("Loan-Models", "lowercase"),
        ("loan_models", "lowercase"),
        ("-loan-models", "start and end"),
        ("loan-models-", "start and end"),
        ("loan..models", "adjacent periods"),
        ("192.168.5.4", "IP address"),
        ("xn--loan", "reserves"),
        ("loan-models-s3alias", "reserves"),
        ("loan--ol-s3", "reserves"),
    ],
)
def test_bucket_names_breaking_s3_rules_are_refused(name: str, problem: str) -> None:
    assert problem in (bucket_name_problem(name) or "")
    with pytest.raises(ConfigureError, match="S3's naming rules"):
        plan(project_config(), project_policies(), Request(name, "m", ("dev",)))


@pytest.mark.parametrize("name", ["abc", BUCKET, "loan.models.eu", "a" * 63])
def test_valid_bucket_names_pass(name: str) -> None:
    assert bucket_name_problem(name) is None


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (Request(BUCKET, "a/b", ("dev",)), "model name 'a/b'"),
        (Request(BUCKET, "", ("dev",)), "model name ''"),
        (
            Request(BUCKET, "m", ("staging",)),
            "no stage 'staging'.*stages: dev, dev-tensorflow, prod",
        ),
        (Request(BUCKET, "m", ("dev",), memory_mb=64), "--memory must be 128-10240"),
    ],
)
def test_bad_requests_are_refused_before_planning(request_: Request, message: str) -> None:
    with pytest.raises(ConfigureError, match=message):
        plan(project_config(), project_policies(), request_)


def test_a_function_name_lambda_would_refuse_is_caught() -> None:
    config = project_config()
    config["app_name"] = "a" * 61  # "-dev" makes 65
    with pytest.raises(ConfigureError, match="1-64 letters"):
        plan(config, project_policies(), Request(BUCKET, "m", ("dev",)))


def test_a_missing_policy_file_is_named() -> None:
    policies = project_policies()
    del policies["policy-dev.json"]
    with pytest.raises(ConfigureError, match=r"names \.chalice/policy-dev\.json, which does not"):
        plan(project_config(), policies, Request(BUCKET, "m", ("prod", "dev")))


def test_without_batch_a_stage_gets_no_queues_and_no_batch_grants() -> None:
    """A stage's batch path is switched on by --batch only; configuring a stage that has
    one without it keeps it; a stage without one has no batch function or grant."""
    plain = configured("prod", batch=False)
    prod = plain.config["stages"]["prod"]
    assert not any(name.startswith("BATCH_") for name in prod["environment_variables"])
    assert "lambda_functions" not in prod
    policy = plain.policies["policy-prod.json"]
    assert [s["Sid"] for s in policy["Statement"]] == ["OwnLogGroups", "ReadModelBundles", "Extra"]
    assert statement(policy, "OwnLogGroups")["Resource"] == [
        "arn:aws:logs:*:*:log-group:/aws/lambda/app-prod",
        "arn:aws:logs:*:*:log-group:/aws/lambda/app-prod:log-stream:*"]  # fmt: skip
    with_batch = configured("prod")
    again = plan(with_batch.config, with_batch.policies, Request(BUCKET, "other", ("prod",)))
    assert again.config["stages"]["prod"]["environment_variables"]["BATCH_CHUNK_QUEUE"] == (
        "app-prod-batch-chunks")  # fmt: skip
    assert "SendBatchChunks" in [s["Sid"] for s in again.policies["policy-prod.json"]["Statement"]]


def test_half_a_batch_declaration_is_refused() -> None:
    config = project_config()
    config["stages"]["prod"]["environment_variables"]["BATCH_CHUNK_QUEUE"] = "q"
    with pytest.raises(ConfigureError, match="stage prod: BATCH_DEAD_LETTER_QUEUE, "
                       "BATCH_EVENTS_QUEUE not set: a stage names all three"):  # fmt: skip
        plan(config, project_policies(), Request(BUCKET, "m", ("prod",)))
