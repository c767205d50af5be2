"""The batch path's AWS resources for one stage: queue names, prefixes, timeouts.

One scheme, used by `make package`, `make deploy`, `deployment.configure` and the
helper: every stage has its own queues, `<app>-<stage>-batch-chunks`,
`<app>-<stage>-batch-chunks-dlq` and `<app>-<stage>-batch-input-events`, and its own
prefixes `batch/<stage>/in/` and `batch/<stage>/out/` (stages may share a bucket: dev
and dev-tensorflow do, and S3 refuses two notifications on one prefix).

app.py names the queues in its `@app.on_sqs_message` decorators from BATCH_*_QUEUE
at import time, and `chalice package`/`chalice deploy` import app.py in their own
process, not with the stage's environment. So the names live in the stage's
`environment_variables` (the function reads them there) and the tools export the same
variables before Chalice imports the app (`queue_environment`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalice.config import Config
from chalice.utils import to_cfn_resource_name

from chalicelib.config import (
    BATCH_CHUNK_QUEUE,
    BATCH_DEAD_LETTER_QUEUE,
    BATCH_EVENTS_QUEUE,
    BATCH_INPUT_PREFIX,
    BATCH_OUTPUT_PREFIX,
    BatchQueues,
    Settings,
)
from deployment.stages import stage_environment
from project_paths import CHALICE_CONFIG

# app.py's handler names (Chalice names each function `<app>-<stage>-<handler>`).
CHUNK_HANDLER = "score_batch_chunks"
DEAD_LETTER_HANDLER = "fail_batch_chunks"
EVENTS_HANDLER = "start_batch_jobs"
QUEUE_VARIABLES = (BATCH_CHUNK_QUEUE, BATCH_DEAD_LETTER_QUEUE, BATCH_EVENTS_QUEUE)

MAX_RECEIVES = 3  # a chunk received this often goes to the dead-letter queue
# AWS's guidance for SQS event sources: visibility timeout >= 6x the function timeout.
VISIBILITY_FACTOR = 6
CHUNK_MAX_CONCURRENCY = 100  # workers at once per stage (ScalingConfig, 2-1000)
DEAD_LETTER_RETENTION_S = 14 * 24 * 3600  # SQS's maximum: time to look at a poison chunk
QUEUE_NAME_LIMIT = 80  # SQS
DEFAULT_LAMBDA_TIMEOUT_S = 60  # Chalice's, when the config sets none


def queue_names(app_name: str, stage: str) -> BatchQueues:
    """The scheme: the stage's own three queues."""
    base = f"{app_name}-{stage}-batch"
    return BatchQueues(f"{base}-chunks", f"{base}-chunks-dlq", f"{base}-input-events")


def stage_prefixes(stage: str) -> tuple[str, str]:
    """The scheme: (input prefix, output prefix) of a stage."""
    return f"batch/{stage}/in/", f"batch/{stage}/out/"


def batch_environment(app_name: str, stage: str) -> dict[str, str]:
    """What `deployment.configure` writes into a stage's environment_variables."""
    queues = queue_names(app_name, stage)
    inputs, outputs = stage_prefixes(stage)
    return {BATCH_CHUNK_QUEUE: queues.chunks, BATCH_DEAD_LETTER_QUEUE: queues.dead_letters,
            BATCH_EVENTS_QUEUE: queues.input_events, BATCH_INPUT_PREFIX: inputs,
            BATCH_OUTPUT_PREFIX: outputs}  # fmt: skip


@dataclass(frozen=True)
class BatchQueue:
    """One queue, the handler that consumes it and the settings its mapping needs."""

    name: str
    handler: str
    function: str  # the handler's Lambda function name
    timeout_s: int  # the handler's Lambda timeout
    batch_size: int

    @property
    def visibility_timeout_s(self) -> int:
        return VISIBILITY_FACTOR * self.timeout_s

    @property
    def logical_id(self) -> str:
        """The handler's function in Chalice's CloudFormation."""
        return to_cfn_resource_name(self.handler)

    @property
    def terraform_mapping(self) -> str:
        """The handler's aws_lambda_event_source_mapping in Chalice's Terraform."""
        return f"{self.handler}-sqs-event-source"

    def arn(self, region: str = "*", account: str = "*") -> str:
        return f"arn:aws:sqs:{region}:{account}:{self.name}"


@dataclass(frozen=True)
class BatchStack:
    """A stage's batch resources: where input and output live, its three queues."""

    app_name: str
    stage: str
    bucket: str
    input_prefix: str
    output_prefix: str
    chunks: BatchQueue
    dead_letters: BatchQueue
    input_events: BatchQueue

    @property
    def queues(self) -> tuple[BatchQueue, BatchQueue, BatchQueue]:
        return self.chunks, self.dead_letters, self.input_events

    @property
    def notification_id(self) -> str:
        """The bucket notification's Id (the helper replaces only its own)."""
        return f"{self.app_name}-{self.stage}-batch-input"


class BatchStackError(ValueError):
    """A stage whose batch settings the tools can't deploy; the message says why."""


def batch_stack(stage: str, config_path: Path = CHALICE_CONFIG) -> BatchStack:
    """The stage's batch resources as its function will see them (its environment, its
    handlers' timeouts as Chalice resolves them). BatchStackError if a queue name is
    missing, so the function would fall back to names another stage shares."""
    config: dict[str, Any] = json.loads(config_path.read_text())
    env = stage_environment(stage, config_path)  # UnknownStage first
    missing = [name for name in QUEUE_VARIABLES if not env.get(name, "").strip()]
    if missing:
        raise BatchStackError(
            f"stage {stage} sets no {', '.join(missing)}: two stages would share queues; "
            "run python -m deployment.configure --bucket B --model NAME --stage "
            f"{stage} (it writes the stage's own names)"
        )
    settings = Settings.from_env(env).batch
    app_name = config["app_name"]

    def queue(name: str, handler: str, batch_size: int) -> BatchQueue:
        function = Config(chalice_stage=stage, config_from_disk=config).scope(stage, handler)
        timeout = int(function.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT_S)
        return BatchQueue(name, handler, f"{app_name}-{stage}-{handler}", timeout, batch_size)

    stack = BatchStack(
        app_name, stage, settings.bucket, settings.input_prefix, settings.output_prefix,
        queue(settings.queues.chunks, CHUNK_HANDLER, 1),
        queue(settings.queues.dead_letters, DEAD_LETTER_HANDLER, 10),
        queue(settings.queues.input_events, EVENTS_HANDLER, 1),
    )  # fmt: skip
    for item in stack.queues:
        if len(item.name) > QUEUE_NAME_LIMIT:
            raise BatchStackError(f"queue name {item.name!r} is longer than SQS's 80 characters")
    return stack


def queue_environment(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, str]:
    """The BATCH_*_QUEUE variables to export before Chalice imports app.py, so its
    decorators name the stage's queues."""
    stack = batch_stack(stage, config_path)
    return dict(zip(QUEUE_VARIABLES, (q.name for q in stack.queues), strict=True))


def shared_resources(config_path: Path = CHALICE_CONFIG) -> list[str]:
    """Queues, or prefixes in one bucket (equal or one inside the other: S3 refuses
    overlapping notifications), that two configured stages would share."""
    queues: dict[str, str] = {}
    prefixes: list[tuple[str, str, str]] = []  # (bucket, prefix, stage)
    problems = []
    for stage in json.loads(config_path.read_text()).get("stages", {}):
        try:
            stack = batch_stack(stage, config_path)
        except BatchStackError:
            continue
        for queue in stack.queues:
            if queue.name in queues:
                problems.append(f"stages {queues[queue.name]} and {stage} share {queue.name}")
            queues.setdefault(queue.name, stage)
        for prefix in (stack.input_prefix, stack.output_prefix):
            for bucket, other, owner in prefixes:
                if bucket == stack.bucket and owner != stage and (
                        prefix.startswith(other) or other.startswith(prefix)):  # fmt: skip
                    problems.append(f"stages {owner} and {stage} share {bucket} {other}")
            prefixes.append((stack.bucket, prefix, stage))
    return problems
