"""What `chalice package` can't express, as fragments merged into its output.

CloudFormation takes one `--merge-template`; this module composes the fragments a
package needs into that one file. Terraform output takes no merge template, so the
same settings are written as a Terraform override file (`*_override.tf.json`), which
Terraform merges into the resource Chalice generated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalice.package import TemplateDeepMerger

Template = dict[str, Any]

# The API Gateway stage in .chalice/config.json; SAM names its stage resource after it.
API_GATEWAY_STAGE = "api"
FUNCTION_LOGICAL_ID = "APIHandler"  # Chalice's name for the REST API's function
TERRAFORM_FUNCTION = "api_handler"
KEY_PROTECTED_ROUTES = {"/predict": "post", "/model": "get"}  # /health stays open for probes


def ephemeral_storage(size_mb: int) -> Template:
    """Raise the function's /tmp (512 MB by default) so an archived runtime unpacks."""
    return {"Resources": {FUNCTION_LOGICAL_ID: {"Properties": {"EphemeralStorage": {
        "Size": size_mb}}}}}  # fmt: skip


def function_name(name: str) -> Template:
    """Name the function as `chalice deploy` does (`<app_name>-<stage>`).

    Chalice's CloudFormation sets no FunctionName, so CloudFormation would generate one
    (`<stack>-APIHandler-<random>`) and the function would log to a group the stage
    policy, scoped to `/aws/lambda/<app_name>-<stage>`, does not let it write.
    """
    return {"Resources": {FUNCTION_LOGICAL_ID: {"Properties": {"FunctionName": name}}}}


def log_group_name(function: str) -> Template:
    """Put the retention on the log group the function writes to, `/aws/lambda/<name>`.

    Chalice 1.34 writes the group's name as `/aws/lambda/${ApiHandler}` and then renames
    the function resource to `APIHandler`, leaving a reference CloudFormation can't
    resolve (cfn-lint E1019). Needed whenever a stage sets `log_retention_in_days`.
    """
    return {"Resources": {"ApiHandlerLogGroup": {"Properties": {
        "LogGroupName": f"/aws/lambda/{function}"}}}}  # fmt: skip


def api_key(stage: str = API_GATEWAY_STAGE) -> Template:
    """An API key, a usage plan with throttling and a daily quota, and key-protected routes.

    Chalice's `api_key_required` only marks methods; it creates no key and no plan, and
    a key outside a usage plan is refused by API Gateway. This adds all three.
    """
    security: Template = {"security": [{"api_key": []}]}
    return {
        "Parameters": {
            "ApiRateLimit": {"Type": "Number", "Default": 50,
                             "Description": "Steady requests per second for the key"},
            "ApiBurstLimit": {"Type": "Number", "Default": 100,
                              "Description": "Burst of requests the key may send at once"},
            "ApiDailyQuota": {"Type": "Number", "Default": 100000,
                              "Description": "Requests per day for the key"},
        },
        "Resources": {
            "RestAPI": {"Properties": {"DefinitionBody": {
                "securityDefinitions": {"api_key": {
                    "type": "apiKey", "name": "x-api-key", "in": "header"}},
                "paths": {path: {method: security}
                          for path, method in KEY_PROTECTED_ROUTES.items()},
            }}},
            "ApiKey": {
                "Type": "AWS::ApiGateway::ApiKey",
                "Properties": {"Enabled": True,
                               "Name": {"Fn::Sub": "${AWS::StackName}-client"}},
            },
            "UsagePlan": {
                "Type": "AWS::ApiGateway::UsagePlan",
                # SAM names the stage it creates <api logical id><stage name>Stage.
                "DependsOn": f"RestAPI{stage}Stage",
                "Properties": {
                    "ApiStages": [{"ApiId": {"Ref": "RestAPI"}, "Stage": stage}],
                    "Throttle": {"RateLimit": {"Ref": "ApiRateLimit"},
                                 "BurstLimit": {"Ref": "ApiBurstLimit"}},
                    "Quota": {"Limit": {"Ref": "ApiDailyQuota"}, "Period": "DAY"},
                },
            },
            "UsagePlanKey": {
                "Type": "AWS::ApiGateway::UsagePlanKey",
                "Properties": {"KeyId": {"Ref": "ApiKey"}, "KeyType": "API_KEY",
                               "UsagePlanId": {"Ref": "UsagePlan"}},
            },
        },
        "Outputs": {"ApiKeyId": {
            "Value": {"Ref": "ApiKey"},
            "Description": "aws apigateway get-api-key --include-value --api-key <id>"}},
    }  # fmt: skip


def compose(fragments: list[Template]) -> Template:
    """Deep-merge fragments into one merge template (later fragments win on conflict)."""
    merger = TemplateDeepMerger()
    merged: Template = {}
    for fragment in fragments:
        merged = merger.merge(fragment, merged)
    return merged


def terraform_ephemeral_storage(size_mb: int) -> Template:
    """The Terraform override equivalent of `ephemeral_storage`."""
    return {"resource": {"aws_lambda_function": {TERRAFORM_FUNCTION: {
        "ephemeral_storage": {"size": size_mb}}}}}  # fmt: skip


def terraform_log_group(retention_days: int) -> Template:
    """The function's log group with retention, which Chalice's Terraform output lacks."""
    return {"resource": {"aws_cloudwatch_log_group": {TERRAFORM_FUNCTION: {
        "name": f"/aws/lambda/${{aws_lambda_function.{TERRAFORM_FUNCTION}.function_name}}",
        "retention_in_days": retention_days}}}}  # fmt: skip


def write_json(template: Template, path: Path) -> Path:
    """Write a template as indented JSON and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(template, indent=2) + "\n")
    return path
