"""Chalice's Terraform made acceptable to today's Terraform and AWS provider.

Chalice 1.34 writes `required_version = ">= 0.12.26, < 1.4.0"` and the AWS provider
`>= 3.61.0, < 5` (chalice/package.py, TerraformGenerator.generate): Terraform 1.4 and
later refuse the configuration at `terraform init` ("Unsupported Terraform Core
version"). `modernise` rewrites it after `chalice package`:

- constraints: Terraform >= 1.5, hashicorp/aws >= 5.0, < 7.0 (5.x and 6.x);
- `aws_api_gateway_deployment`: AWS provider 6.0 removed `stage_name`,
  `stage_description`, `invoke_url` and `execution_arn` (version 6 upgrade guide,
  "Resource aws_api_gateway_deployment"); the stage becomes an `aws_api_gateway_stage`
  (in 5.x already the documented way) and the deployment is redeployed when the
  API's swagger changes through `triggers` (what `stage_description` did);
- the unused `null_data_source` (deprecated by the null provider) and the null
  provider with it.

`attribute_problems` checks the output statically against the arguments the provider
documentation lists for each resource type used (`DOCUMENTED`); providers can't be
downloaded here, so nothing is planned or validated against their schemas.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REQUIRED_VERSION = ">= 1.5"
AWS_PROVIDER = {"source": "hashicorp/aws", "version": ">= 5.0, < 7.0"}
DEPLOYMENT, STAGE = "aws_api_gateway_deployment", "aws_api_gateway_stage"
# Removed from aws_api_gateway_deployment in AWS provider 6.0.
REMOVED = {DEPLOYMENT: ("stage_name", "stage_description", "canary_settings", "invoke_url",
                        "execution_arn")}  # fmt: skip

# The arguments (and meta-arguments) each resource type used here takes, in both the 5.x
# and 6.x AWS provider documentation (hashicorp/terraform-provider-aws,
# website/docs/r/<type>.html.markdown; meta-arguments from Terraform's language docs).
META = {"depends_on", "lifecycle", "count", "for_each", "provider"}
DOCUMENTED: dict[str, set[str]] = {
    "aws_iam_role": {"name", "assume_role_policy", "path", "description", "tags"},
    "aws_iam_role_policy": {"name", "policy", "role"},
    "aws_lambda_function": {"function_name", "role", "handler", "runtime", "filename",
                            "source_code_hash", "memory_size", "timeout", "environment",
                            "tags", "layers", "architectures", "ephemeral_storage",
                            "reserved_concurrent_executions", "vpc_config", "tracing_config"},
    "aws_lambda_layer_version": {"layer_name", "filename", "source_code_hash",
                                 "compatible_runtimes", "compatible_architectures"},
    "aws_lambda_permission": {"function_name", "action", "principal", "source_arn",
                              "statement_id"},
    "aws_lambda_event_source_mapping": {"event_source_arn", "function_name", "batch_size",
                                        "maximum_batching_window_in_seconds",
                                        "function_response_types", "scaling_config",
                                        "starting_position", "enabled"},
    "aws_api_gateway_rest_api": {"name", "body", "binary_media_types",
                                 "endpoint_configuration", "policy", "description"},
    DEPLOYMENT: {"rest_api_id", "triggers", "description", "variables"},
    STAGE: {"stage_name", "rest_api_id", "deployment_id", "description", "variables"},
    "aws_api_gateway_api_key": {"name", "enabled", "description", "value"},
    "aws_api_gateway_usage_plan": {"name", "api_stages", "throttle_settings",
                                   "quota_settings", "description"},
    "aws_api_gateway_usage_plan_key": {"key_id", "key_type", "usage_plan_id"},
    "aws_cloudwatch_log_group": {"name", "retention_in_days"},
    "aws_sqs_queue": {"name", "visibility_timeout_seconds", "message_retention_seconds",
                      "redrive_policy", "redrive_allow_policy", "delay_seconds"},
    "aws_sqs_queue_policy": {"queue_url", "policy"},
    "aws_s3_bucket_notification": {"bucket", "lambda_function", "queue"},
}  # fmt: skip
_REFERENCE = re.compile(r"\b(aws_[a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z0-9_]+)")


def modernise(path: Path) -> dict[str, Any]:
    """Rewrite Chalice's chalice.tf.json at `path` in place; returns the new document."""
    document: dict[str, Any] = json.loads(path.read_text())
    document["terraform"] = {"required_version": REQUIRED_VERSION,
                             "required_providers": {"aws": dict(AWS_PROVIDER)}}  # fmt: skip
    data = document.get("data", {})
    data.pop("null_data_source", None)
    resources = document.setdefault("resource", {})
    for name, deployment in resources.get(DEPLOYMENT, {}).items():
        stage_name = deployment.pop("stage_name")
        redeploy = deployment.pop("stage_description", None)
        if redeploy:
            deployment["triggers"] = {"redeployment": redeploy}
        resources.setdefault(STAGE, {})[name] = {
            "stage_name": stage_name, "rest_api_id": deployment["rest_api_id"],
            "deployment_id": f"${{{DEPLOYMENT}.{name}.id}}"}  # fmt: skip
    text = json.dumps(document, indent=2)
    for attribute in ("invoke_url", "execution_arn"):  # now the stage's
        text = re.sub(rf"\b{DEPLOYMENT}\.([A-Za-z0-9_-]+)\.{attribute}\b",
                      rf"{STAGE}.\1.{attribute}", text)  # fmt: skip
    path.write_text(text + "\n")
    return dict(json.loads(text))


def attribute_problems(directory: Path) -> list[str]:
    """Every resource argument in the directory's *.tf.json that the provider docs do not
    list for its type, every reference to an attribute AWS provider 6 removed, and a
    constraint that would refuse Terraform 1.5+ or the 5.x/6.x provider."""
    problems = []
    for path in sorted(directory.glob("*.tf.json")):
        document = json.loads(path.read_text())
        for kind, resources in document.get("resource", {}).items():
            known = DOCUMENTED.get(kind)
            for name, arguments in resources.items():
                if known is None:
                    problems.append(f"{path.name}: {kind}.{name}: type not checked here")
                    continue
                unknown = sorted(set(arguments) - known - META)
                if unknown:
                    problems.append(f"{path.name}: {kind}.{name}: {', '.join(unknown)}")
        for kind, attribute in (m.group(1, 3) for m in _REFERENCE.finditer(path.read_text())):
            if attribute in REMOVED.get(kind, ()):
                problems.append(f"{path.name}: refers to {kind}.{attribute} (removed in 6.0)")
        settings = document.get("terraform", {})
        if settings and settings.get("required_version") != REQUIRED_VERSION:
            problems.append(f"{path.name}: required_version {settings.get('required_version')}")
        for provider, spec in settings.get("required_providers", {}).items():
            if provider != "aws" or spec != AWS_PROVIDER:
                problems.append(f"{path.name}: provider {provider} {spec}")
    return problems
