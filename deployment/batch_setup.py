"""What `chalice deploy` can't do for the batch path, with boto3.

python -m deployment.batch_setup --stage S [--notification-only]

- creates the stage's three queues, or brings their settings back: visibility 6x the
  consuming function's timeout, the chunk and input-events queues redriven to the
  dead-letter queue after 3 receives, S3 allowed to send to the input-events queue
  (its queue policy);
- sets what Chalice leaves off its event source mappings: `FunctionResponseTypes:
  [ReportBatchItemFailures]` on all three (every handler answers `batchItemFailures`;
  without it Lambda ignores the answer and deletes the whole batch) and the chunk
  mapping's maximum concurrency (`chalice deploy` must have created the mappings);
- adds the bucket's S3 -> SQS notification for the stage's input prefix, keeping the
  bucket's other notifications (Chalice cannot add one to an existing bucket).

For a stage with a batch path (its own BATCH_*_QUEUE names). `make deploy STAGE=S`
(`deployment.deploy`) runs the queue step, `chalice deploy` and then the rest; by hand,
`--queues-only` before a plain `chalice deploy --stage S`, then this without it. With
CloudFormation the stack has the queues and mappings; only the notification is left:
`--notification-only`. Running it again changes nothing. Every mistake (no region,
no credentials, an unknown stage, a stage without a batch path) is one `error:` line.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

from deployment.batch_stack import (
    CHUNK_MAX_CONCURRENCY,
    DEAD_LETTER_RETENTION_S,
    MAX_RECEIVES,
    BatchStack,
    BatchStackError,
    batch_stack,
)
from deployment.cli import stage_parser
from deployment.preflight import AwsFailure, aws_errors, aws_session
from deployment.stages import NotAChaliceProject, UnknownStage
from deployment.templates import PARTIAL_BATCH, s3_may_send
from modelops.cli_errors import OTHER_FAILURE_EXIT, UserMistake, fail

S3_EVENTS = ["s3:ObjectCreated:*"]
NOTIFICATION_KINDS = ("TopicConfigurations", "QueueConfigurations",
                      "LambdaFunctionConfigurations", "EventBridgeConfiguration")  # fmt: skip


class BatchSetupError(RuntimeError):
    """A step that can't be done yet (e.g. no mapping: chalice deploy has not run)."""


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    """Create the queue with `attributes`, or set them on the existing one; its ARN."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    except ClientError as exc:
        if "NonExistentQueue" not in str(exc.response.get("Error", {}).get("Code", "")):
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]  # fmt: skip
    return arn


def ensure_queues(sqs: Any, stack: BatchStack) -> dict[str, str]:
    """The stage's three queues with their settings; queue name -> ARN."""
    dlq = stack.dead_letters
    dlq_arn = _queue(sqs, dlq.name, {
        "VisibilityTimeout": str(dlq.visibility_timeout_s),
        "MessageRetentionPeriod": str(DEAD_LETTER_RETENTION_S)})  # fmt: skip
    chunks = stack.chunks
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
    chunks_arn = _queue(sqs, chunks.name, {
        "VisibilityTimeout": str(chunks.visibility_timeout_s),
        "RedrivePolicy": json.dumps(redrive)})  # fmt: skip
    events = stack.input_events
    events_arn = _queue(sqs, events.name, {
        "VisibilityTimeout": str(events.visibility_timeout_s),
        "RedrivePolicy": json.dumps(redrive)})  # fmt: skip
    url = sqs.get_queue_url(QueueName=events.name)["QueueUrl"]
    policy = s3_may_send(stack, events_arn, account=events_arn.split(":")[4])
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    return {dlq.name: dlq_arn, chunks.name: chunks_arn, events.name: events_arn}


def queue_arns(sqs: Any, stack: BatchStack) -> dict[str, str]:
    """The ARNs of the stage's existing queues (BatchSetupError if one is missing)."""
    arns = {}
    for queue in stack.queues:
        try:
            url = sqs.get_queue_url(QueueName=queue.name)["QueueUrl"]
        except ClientError as exc:
            raise BatchSetupError(f"queue {queue.name} does not exist: deploy the stage "
                                  "first") from exc  # fmt: skip
        arns[queue.name] = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # fmt: skip
    return arns


def wire_event_sources(lam: Any, stack: BatchStack, arns: dict[str, str]) -> list[str]:
    """Partial batch responses on each mapping, maximum concurrency on the chunk one;
    returns the mappings' UUIDs."""
    updated = []
    for queue in stack.queues:
        listed = lam.list_event_source_mappings(EventSourceArn=arns[queue.name])
        mine = [m for m in listed["EventSourceMappings"]
                if m["FunctionArn"].split(":")[6] == queue.function]  # fmt: skip
        if not mine:
            raise BatchSetupError(
                f"no event source mapping from {queue.name} to {queue.function}: run "
                f"chalice deploy --stage {stack.stage} first (make deploy STAGE={stack.stage})"
            )
        changes: dict[str, Any] = {"FunctionResponseTypes": PARTIAL_BATCH}
        if queue is stack.chunks:
            changes["ScalingConfig"] = {"MaximumConcurrency": CHUNK_MAX_CONCURRENCY}
        for mapping in mine:
            lam.update_event_source_mapping(UUID=mapping["UUID"], **changes)
            updated.append(mapping["UUID"])
    return updated


def notify_on_input(s3: Any, stack: BatchStack, events_arn: str) -> dict[str, Any]:
    """The bucket's notification for objects created under the input prefix (replacing
    only this stage's, by its Id); returns the bucket's new notification configuration."""
    current = s3.get_bucket_notification_configuration(Bucket=stack.bucket)
    config = {kind: current[kind] for kind in NOTIFICATION_KINDS if kind in current}
    queues = [q for q in config.get("QueueConfigurations", [])
              if q.get("Id") != stack.notification_id]  # fmt: skip
    queues.append({
        "Id": stack.notification_id, "QueueArn": events_arn, "Events": list(S3_EVENTS),
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": stack.input_prefix}]}},
    })  # fmt: skip
    config["QueueConfigurations"] = queues
    s3.put_bucket_notification_configuration(
        Bucket=stack.bucket, NotificationConfiguration=config)  # fmt: skip
    return config


def after_deploy(stack: BatchStack, session: Any = None) -> None:
    """Queues (again: settings may have drifted), mappings, notification."""
    session = session or boto3.session.Session()
    arns = ensure_queues(session.client("sqs"), stack)
    wire_event_sources(session.client("lambda"), stack, arns)
    notify_on_input(session.client("s3"), stack, arns[stack.input_events.name])


def main(argv: list[str] | None = None) -> int:
    parser = stage_parser("python -m deployment.batch_setup", __doc__)
    steps = parser.add_mutually_exclusive_group()
    steps.add_argument(
        "--notification-only",
        action="store_true",
        help="only the bucket's notification (CloudFormation made the rest)",
    )
    steps.add_argument(
        "--queues-only",
        action="store_true",
        help="only the queues (before a plain chalice deploy subscribes to them)",
    )
    args = parser.parse_args(argv)
    try:
        stack = batch_stack(args.stage, args.project_dir / ".chalice" / "config.json")
        session = aws_session(args.stage)
        with aws_errors(f"batch path of {args.stage}"):
            if args.notification_only:
                arns = queue_arns(session.client("sqs"), stack)
                notify_on_input(session.client("s3"), stack, arns[stack.input_events.name])
            elif args.queues_only:
                ensure_queues(session.client("sqs"), stack)
            else:
                after_deploy(stack, session)
    except (UnknownStage, NotAChaliceProject, BatchStackError, UserMistake) as exc:
        return fail(str(exc))
    except (BatchSetupError, AwsFailure) as exc:
        return fail(str(exc), OTHER_FAILURE_EXIT)
    print(f"batch path of {args.stage}: queues {', '.join(q.name for q in stack.queues)}; "
          f"s3://{stack.bucket}/{stack.input_prefix} -> {stack.input_events.name}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
