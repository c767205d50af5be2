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

from deployment.batch_stack import (
    CHUNK_MAX_CONCURRENCY,
    DEAD_LETTER_RETENTION_S,
    MAX_RECEIVES,
    BatchQueue,
    BatchStack,
)

Template = dict[str, Any]

# The API Gateway stage in .chalice/config.json; SAM names its stage resource after it.
API_GATEWAY_STAGE = "api"
FUNCTION_LOGICAL_ID = "APIHandler"  # Chalice's name for the REST API's function
TERRAFORM_FUNCTION = "api_handler"
# A usage plan's defaults: steady requests per second, burst, requests per day.
RATE_LIMIT, BURST_LIMIT, DAILY_QUOTA = 50, 100, 100_000


def ephemeral_storage(size_mb: int, functions: tuple[str, ...] = (FUNCTION_LOGICAL_ID,)
                      ) -> Template:  # fmt: skip
    """Raise the functions' /tmp (512 MB by default) so an archived runtime unpacks."""
    return {"Resources": {function: {"Properties": {"EphemeralStorage": {
        "Size": size_mb}}} for function in functions}}  # fmt: skip


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
    """An API key, a usage plan with throttling and a daily quota, and the plan-key binding.

    Which methods need the key is Chalice's swagger (`api_key_required`, set by app.py on
    every non-public route under API_AUTH=api_key); it creates no key and no plan, and a
    key outside a usage plan is refused by API Gateway. This adds them.
    """
    return {
        "Parameters": {
            "ApiRateLimit": {"Type": "Number", "Default": RATE_LIMIT,
                             "Description": "Steady requests per second for the key"},
            "ApiBurstLimit": {"Type": "Number", "Default": BURST_LIMIT,
                              "Description": "Burst of requests the key may send at once"},
            "ApiDailyQuota": {"Type": "Number", "Default": DAILY_QUOTA,
                              "Description": "Requests per day for the key"},
        },
        "Resources": {
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


def terraform_api_key(stage: str = API_GATEWAY_STAGE) -> Template:
    """`api_key` for Terraform: Chalice's REST API body already marks the methods."""
    return {"resource": {
        "aws_api_gateway_api_key": {"client": {
            "name": "${aws_api_gateway_rest_api.rest_api.name}-client", "enabled": True}},
        "aws_api_gateway_usage_plan": {"client": {
            "name": "${aws_api_gateway_rest_api.rest_api.name}-client",
            "api_stages": [{"api_id": "${aws_api_gateway_rest_api.rest_api.id}",
                            "stage": "${aws_api_gateway_stage.rest_api.stage_name}"}],
            "throttle_settings": {"rate_limit": RATE_LIMIT, "burst_limit": BURST_LIMIT},
            "quota_settings": {"limit": DAILY_QUOTA, "period": "DAY"}}},
        "aws_api_gateway_usage_plan_key": {"client": {
            "key_id": "${aws_api_gateway_api_key.client.id}", "key_type": "API_KEY",
            "usage_plan_id": "${aws_api_gateway_usage_plan.client.id}"}},
    }, "output": {"api_key_id": {"value": "${aws_api_gateway_api_key.client.id}"}}}  # fmt: skip


# The queues' logical ids (CloudFormation) and resource names (Terraform).
QUEUE_IDS = {"chunks": "BatchChunkQueue", "dead_letters": "BatchDeadLetterQueue",
             "input_events": "BatchInputEventsQueue"}  # fmt: skip
TERRAFORM_QUEUES = {"chunks": "batch_chunks", "dead_letters": "batch_dead_letters",
                    "input_events": "batch_input_events"}  # fmt: skip
PARTIAL_BATCH = ["ReportBatchItemFailures"]  # every batch handler returns batchItemFailures
# Queues whose poison messages go to the one batch dead-letter queue after MAX_RECEIVES:
# chunks (the handler marks the part failed) and input events (it ends the job `failed`).
REDRIVEN = ("chunks", "input_events")


def _roles(stack: BatchStack) -> dict[str, BatchQueue]:
    return {"chunks": stack.chunks, "dead_letters": stack.dead_letters,
            "input_events": stack.input_events}  # fmt: skip


def s3_may_send(stack: BatchStack, queue_arn: Any, account: Any) -> Template:
    """The input-events queue's policy: the stage's bucket in this account may send."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "InputNotifications", "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{stack.bucket}"},
                      "StringEquals": {"aws:SourceAccount": account}}}]}  # fmt: skip


def batch_queues(stack: BatchStack, log_groups: bool) -> Template:
    """The batch path for CloudFormation: the three queues (chunk and input-events queues
    redriven to the dead-letter queue after MAX_RECEIVES, visibility 6x each consumer's
    timeout), S3 allowed
    to send to the input-events queue, and on each SQS event source what Chalice can't
    set: the queue by reference (created before the mapping), partial batch responses
    and, on the chunk mapping, the maximum concurrency. Names each handler's function as
    `chalice deploy` does, so its logs land where the stage policy lets it write.

    The bucket's notification is not here: the bucket exists outside the stack
    (`python -m deployment.batch_setup --stage S --notification-only` adds it)."""
    resources: Template = {}
    for role, queue in _roles(stack).items():
        properties: Template = {"QueueName": queue.name,
                                "VisibilityTimeout": queue.visibility_timeout_s}  # fmt: skip
        if role in REDRIVEN:
            properties["RedrivePolicy"] = {
                "deadLetterTargetArn": {"Fn::GetAtt": [QUEUE_IDS["dead_letters"], "Arn"]},
                "maxReceiveCount": MAX_RECEIVES}  # fmt: skip
        if role == "dead_letters":
            properties["MessageRetentionPeriod"] = DEAD_LETTER_RETENTION_S
        resources[QUEUE_IDS[role]] = {"Type": "AWS::SQS::Queue", "Properties": properties}
        # Fn::Sub, like Chalice's value, so the merge replaces it (a reference: the
        # queue is created before the mapping).
        event: Template = {"Queue": {"Fn::Sub": f"${{{QUEUE_IDS[role]}.Arn}}"},
                           "FunctionResponseTypes": PARTIAL_BATCH}  # fmt: skip
        if role == "chunks":
            event["ScalingConfig"] = {"MaximumConcurrency": CHUNK_MAX_CONCURRENCY}
        resources[queue.logical_id] = {
            "Properties": {
                "FunctionName": queue.function,
                "Events": {f"{queue.logical_id}SqsEventSource": {"Properties": event}},
            }
        }
        if log_groups:  # Chalice made one (log_retention_in_days) named by a reference
            resources[f"{queue.logical_id}LogGroup"] = {"Properties": {
                "LogGroupName": f"/aws/lambda/{queue.function}"}}  # fmt: skip
    events_arn = {"Fn::GetAtt": [QUEUE_IDS["input_events"], "Arn"]}
    resources["BatchInputEventsQueuePolicy"] = {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {"Queues": [{"Ref": QUEUE_IDS["input_events"]}],
                       "PolicyDocument": s3_may_send(stack, events_arn,
                                                      {"Ref": "AWS::AccountId"})},
    }  # fmt: skip
    return {"Resources": resources}


def terraform_batch_queues(stack: BatchStack) -> Template:
    """The batch path's queues and the input-events queue policy, for Terraform."""
    queues: Template = {}
    for role, queue in _roles(stack).items():
        queue_tf: Template = {
            "name": queue.name,
            "visibility_timeout_seconds": queue.visibility_timeout_s,
        }
        if role in REDRIVEN:
            dlq = TERRAFORM_QUEUES["dead_letters"]
            queue_tf["redrive_policy"] = (
                f"${{jsonencode({{deadLetterTargetArn = aws_sqs_queue.{dlq}.arn, "
                f"maxReceiveCount = {MAX_RECEIVES}}})}}")  # fmt: skip
        if role == "dead_letters":
            queue_tf["message_retention_seconds"] = DEAD_LETTER_RETENTION_S
        queues[TERRAFORM_QUEUES[role]] = queue_tf
    events = TERRAFORM_QUEUES["input_events"]
    document = s3_may_send(stack, f"${{aws_sqs_queue.{events}.arn}}",
                            "${data.aws_caller_identity.chalice.account_id}")  # fmt: skip
    return {"resource": {
        "aws_sqs_queue": queues,
        "aws_sqs_queue_policy": {events: {
            "queue_url": f"${{aws_sqs_queue.{events}.id}}",
            "policy": json.dumps(document)}},
    }}  # fmt: skip


def terraform_batch_event_sources(stack: BatchStack) -> Template:
    """An override for Chalice's event source mappings: the queue by reference (created
    first), partial batch responses, the chunk mapping's maximum concurrency."""
    mappings: Template = {}
    for role, queue in _roles(stack).items():
        mapping: Template = {
            "event_source_arn": f"${{aws_sqs_queue.{TERRAFORM_QUEUES[role]}.arn}}",
            "function_response_types": PARTIAL_BATCH}  # fmt: skip
        if role == "chunks":
            mapping["scaling_config"] = {"maximum_concurrency": CHUNK_MAX_CONCURRENCY}
        mappings[queue.terraform_mapping] = mapping
    return {"resource": {"aws_lambda_event_source_mapping": mappings}}


def compose(fragments: list[Template]) -> Template:
    """Deep-merge fragments into one merge template (later fragments win on conflict)."""
    merger = TemplateDeepMerger()
    merged: Template = {}
    for fragment in fragments:
        merged = merger.merge(fragment, merged)
    return merged


def terraform_ephemeral_storage(
    size_mb: int, functions: tuple[str, ...] = (TERRAFORM_FUNCTION,)
) -> Template:
    """The Terraform override equivalent of `ephemeral_storage`."""
    return {"resource": {"aws_lambda_function": {function: {
        "ephemeral_storage": {"size": size_mb}} for function in functions}}}  # fmt: skip


def terraform_log_group(
    retention_days: int, functions: tuple[str, ...] = (TERRAFORM_FUNCTION,)
) -> Template:
    """The functions' log groups with retention, which Chalice's Terraform output lacks."""
    return {"resource": {"aws_cloudwatch_log_group": {function: {
        "name": f"/aws/lambda/${{aws_lambda_function.{function}.function_name}}",
        "retention_in_days": retention_days} for function in functions}}}  # fmt: skip


def write_json(template: Template, path: Path) -> Path:
    """Write a template as indented JSON and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(template, indent=2) + "\n")
    return path
