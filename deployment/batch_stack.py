"""The batch path's AWS resources for one stage: queue names, prefixes, timeouts.

A stage has a batch path when its own `environment_variables` name its three queues
(BATCH_CHUNK_QUEUE, BATCH_DEAD_LETTER_QUEUE, BATCH_EVENTS_QUEUE) -- the one place the
names live. Chalice applies those variables before it imports app.py, which then
subscribes the batch handlers (`chalicelib.config.Registration`); a stage naming none
has no batch functions and deploys with a plain `chalice deploy`. Chalice subscribes
functions to queues but creates none, so a stage that names them needs them to exist
first: `make deploy` creates them (`deployment.batch_setup`), `make package` puts them
in the stack.

`python -m deployment.configure ... --batch` writes a stage's names by one scheme:
`<app>-<stage>-batch-chunks`, `<app>-<stage>-batch-chunks-dlq`,
`<app>-<stage>-batch-input-events`, and prefixes `batch/<stage>/in/` and
`batch/<stage>/out/` (stages may share a bucket, and S3 refuses two notifications on
one prefix).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chalice.config import Config
from chalice.utils import to_cfn_resource_name

from chalicelib.config import (
    BATCH_CHUNK_QUEUE,
    BATCH_DEAD_LETTER_QUEUE,
    BATCH_EVENTS_QUEUE,
    BATCH_INPUT_PREFIX,
    BATCH_OUTPUT_PREFIX,
    CHUNK_HANDLER,
    DEAD_LETTER_BATCH_SIZE,
    DEAD_LETTER_HANDLER,
    EVENTS_BATCH_SIZE,
    EVENTS_HANDLER,
    BatchQueues,
    ConfigurationError,
    Registration,
    Settings,
)
from deployment.stages import api_function_name, read_config, stage_environment
from project_paths import CHALICE_CONFIG

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


def declared_batch(stage: str, config_path: Path = CHALICE_CONFIG) -> BatchStack | None:
    """The stage's batch resources as its function will see them (its environment, its
    handlers' timeouts as Chalice resolves them), or None when it names no queues.
    BatchStackError if it names only some, or a name SQS would refuse."""
    env = stage_environment(stage, config_path)  # UnknownStage first
    try:
        queues = Registration.from_env(env).batch
    except ConfigurationError as exc:
        raise BatchStackError(f"stage {stage}: {exc}") from None
    if queues is None:
        return None
    settings = Settings.from_env(env).batch
    config = read_config(config_path)

    def queue(name: str, handler: str, batch_size: int) -> BatchQueue:
        function = Config(chalice_stage=stage, config_from_disk=config).scope(stage, handler)
        timeout = int(function.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT_S)
        return BatchQueue(name, handler, api_function_name(config, stage, handler), timeout,
                          batch_size)  # fmt: skip

    stack = BatchStack(
        config["app_name"], stage, settings.bucket, settings.input_prefix,
        settings.output_prefix, queue(queues.chunks, CHUNK_HANDLER, queues.worker_batch_size),
        queue(queues.dead_letters, DEAD_LETTER_HANDLER, DEAD_LETTER_BATCH_SIZE),
        queue(queues.input_events, EVENTS_HANDLER, EVENTS_BATCH_SIZE),
    )  # fmt: skip
    for item in stack.queues:
        if len(item.name) > QUEUE_NAME_LIMIT:
            raise BatchStackError(f"queue name {item.name!r} is longer than SQS's 80 characters")
    return stack


def batch_stack(stage: str, config_path: Path = CHALICE_CONFIG) -> BatchStack:
    """`declared_batch`, for a command that needs the batch path: BatchStackError saying
    how to switch it on when the stage names no queues."""
    stack = declared_batch(stage, config_path)
    if stack is None:
        raise BatchStackError(
            f"stage {stage} has no batch path (its environment_variables name no "
            f"BATCH_*_QUEUE): python -m deployment.configure --bucket B --model NAME "
            f"--stage {stage} --batch switches it on"
        )
    return stack


def shared_resources(config_path: Path = CHALICE_CONFIG) -> list[str]:
    """Queues, or prefixes in one bucket (equal or one inside the other: S3 refuses
    overlapping notifications), that two configured stages would share."""
    queues: dict[str, str] = {}
    prefixes: list[tuple[str, str, str]] = []  # (bucket, prefix, stage)
    problems = []
    for stage in read_config(config_path).get("stages", {}):
        try:
            stack = declared_batch(stage, config_path)
        except BatchStackError:
            continue
        if stack is None:
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
