"""Point stages at your own bucket and model: `.chalice/config.json` and the policy ARNs.

python -m deployment.configure --bucket B --model NAME [--stage S ...] [--batch]
    [--memory MB] [--project-dir DIR]

For each stage (every stage when none is named) it sets MODEL_BUCKET=B and
MODEL_PREFIX=models/NAME; with `--batch` it also switches the stage's batch path on:
its own queue names and prefixes (`deployment.batch_stack`; names already set are kept)
and its handlers' timeouts. It writes the stage's own policy file `policy-<stage>.json`:
logs only for the stage's functions (`<app_name>-<stage>`, and `<app_name>-<stage>-
<handler>` for a stage with a batch path: the names `chalice deploy` and `make package`
give them), `s3:GetObject` on `arn:aws:s3:::B/models/NAME/*`, and for a batch path its
grants: read its input prefix, read and write its output prefix, list only those
prefixes, consume its three queues and send to its chunk queue (a stage without one
gets none of these).
A stage that shared its policy file with another (dev and dev-tensorflow once did)
gets a file of its own, and so does the other stage (with its permissions unchanged),
so configuring one stage never widens or narrows another's role. Statements other
than those two are kept. Running it again with the same arguments changes nothing.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import ipaddress
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from chalicelib.bundle_layout import is_model_name, model_prefix
from chalicelib.config import (
    CHUNK_HANDLER,
    DEAD_LETTER_HANDLER,
    EVENTS_HANDLER,
    MODEL_BUCKET,
    MODEL_PREFIX,
    BatchQueues,
    ConfigurationError,
    Registration,
    Settings,
)
from deployment.batch_stack import batch_environment
from deployment.cli import OneLineParser
from deployment.stages import api_function_name
from modelops.cli_errors import fail
from project_paths import PROJECT_DIR

Document = dict[str, Any]

LOG_SID, READ_SID = "OwnLogGroups", "ReadModelBundles"
LOG_ACTIONS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
# What Lambda's SQS event source mapping calls with the function's role.
CONSUME_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                   "sqs:ChangeMessageVisibility"]  # fmt: skip
# The splitter looks its queue up by name, then sends (SendMessageBatch is SendMessage).
SEND_ACTIONS = ["sqs:GetQueueUrl", "sqs:SendMessage"]
BATCH_SIDS = ("ReadBatchInput", "WriteBatchOutput", "ListBatchPrefixes", "ConsumeBatchQueues",
              "SendBatchChunks")  # fmt: skip
# Each batch handler's Lambda timeout (s): a 50,000-row chunk takes ~20 s at 256 MB;
# the splitter streams the whole input once. Queue visibility is 6x these.
BATCH_TIMEOUTS = {CHUNK_HANDLER: 60, DEAD_LETTER_HANDLER: 60, EVENTS_HANDLER: 300}
MEMORY_RANGE = (128, 10240)  # Lambda's limits, MB

_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ConfigureError(ValueError):
    """A request configure refuses; the message says what to do."""


@dataclass(frozen=True)
class Request:
    """What to configure: a bucket and model for some stages, optionally their memory."""

    bucket: str
    model: str
    stages: tuple[str, ...]
    memory_mb: int | None = None
    batch: bool = False  # switch the stages' batch path on (else left as configured)


@dataclass(frozen=True)
class Plan:
    """The config and policy files after configuring, and files no stage uses any more."""

    config: Document
    policies: dict[str, Document]  # file name in .chalice/ -> document
    unused: tuple[str, ...]


def bucket_name_problem(name: str) -> str | None:
    """Why `name` is not a valid S3 general purpose bucket name, or None if it is."""
    if not 3 <= len(name) <= 63:
        return "must be 3-63 characters long"
    if not _BUCKET_CHARS.match(name):
        return (
            "may hold only lowercase letters, digits, '.' and '-', and must start and end "
            "with a letter or digit"
        )
    if ".." in name:
        return "must not contain two adjacent periods"
    try:
        ipaddress.IPv4Address(name)
        return "must not look like an IP address"
    except ValueError:
        pass
    if name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        return "uses a prefix or suffix S3 reserves"
    return None


def policy_file_for(stage: str) -> str:
    """The policy file a configured stage gets: its own."""
    return f"policy-{stage}.json"


def log_statement(*functions: str) -> Document:
    """Create and write the functions' own log groups, nothing else."""
    groups = [f"arn:aws:logs:*:*:log-group:/aws/lambda/{function}" for function in functions]
    return {
        "Sid": LOG_SID,
        "Effect": "Allow",
        "Action": list(LOG_ACTIONS),
        "Resource": [arn for group in groups for arn in (group, f"{group}:log-stream:*")],
    }


def stage_environment(config: Document, stage: str) -> dict[str, str]:
    """The stage's environment as Chalice resolves it (global variables, then its own)."""
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def has_batch(config: Document, stage: str) -> bool:
    """The stage names its batch queues (app.py then subscribes the batch handlers)."""
    try:
        return Registration.from_env(stage_environment(config, stage)).batch is not None
    except ConfigurationError as exc:
        raise ConfigureError(f"stage {stage}: {exc}") from None


def stage_functions(config: Document, stage: str) -> list[str]:
    """Every function a stage deploys: the REST API's and, with a batch path, one per
    batch handler."""
    handlers = list(BATCH_TIMEOUTS) if has_batch(config, stage) else []
    return [api_function_name(config, stage)] + [
        api_function_name(config, stage, handler) for handler in handlers
    ]


def queue_arn(name: str) -> str:
    """A queue of this name in whatever account and region the stage is deployed to
    (like the log groups: the file is the same in every account)."""
    return f"arn:aws:sqs:*:*:{name}"


def batch_statements(
    bucket: str, input_prefix: str, output_prefix: str, queues: BatchQueues
) -> list[Document]:
    """The batch path's grants: read the input prefix; read and write the output prefix
    (parts, plan, markers, summary); list only those two (so a missing marker is a 404,
    not a 403); consume the three queues; send chunks to the chunk queue."""
    objects = f"arn:aws:s3:::{bucket}/"
    consumed = [queue_arn(q) for q in (queues.chunks, queues.dead_letters, queues.input_events)]
    return [
        {"Sid": BATCH_SIDS[0], "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": f"{objects}{input_prefix}*"},
        {"Sid": BATCH_SIDS[1], "Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
         "Resource": f"{objects}{output_prefix}*"},
        {"Sid": BATCH_SIDS[2], "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": f"arn:aws:s3:::{bucket}",
         "Condition": {"StringLike": {"s3:prefix": [f"{input_prefix}*", f"{output_prefix}*"]}}},
        {"Sid": BATCH_SIDS[3], "Effect": "Allow", "Action": list(CONSUME_ACTIONS),
         "Resource": consumed},
        {"Sid": BATCH_SIDS[4], "Effect": "Allow", "Action": list(SEND_ACTIONS),
         "Resource": queue_arn(queues.chunks)},
    ]  # fmt: skip


def stage_batch_statements(config: Document, stage: str) -> list[Document]:
    """`batch_statements` for the stage's batch settings as its function resolves them."""
    batch = Settings.from_env(stage_environment(config, stage)).batch
    return batch_statements(batch.bucket, batch.input_prefix, batch.output_prefix, batch.queues)


def read_statement(bucket: str, prefix: str) -> Document:
    """Read the bundles under one model's prefix, nothing else."""
    return {
        "Sid": READ_SID,
        "Effect": "Allow",
        "Action": ["s3:GetObject"],
        "Resource": f"arn:aws:s3:::{bucket}/{prefix}/*",
    }


def validate(config: Document, request: Request) -> None:
    """Refuse a bad bucket, model, memory size or stage before anything is planned."""
    problem = bucket_name_problem(request.bucket)
    if problem:
        raise ConfigureError(
            f"bucket name {request.bucket!r} {problem} (S3's naming rules); "
            "bucket names are global, e.g. loan-models-<account-id>-<region>"
        )
    if not is_model_name(request.model):
        raise ConfigureError(
            f"model name {request.model!r} must be 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if request.memory_mb is not None and not (
        MEMORY_RANGE[0] <= request.memory_mb <= MEMORY_RANGE[1]
    ):
        raise ConfigureError(
            f"--memory must be {MEMORY_RANGE[0]}-{MEMORY_RANGE[1]} (MB), "
            f"Lambda's range; got {request.memory_mb}"
        )
    known = list(config.get("stages", {}))
    for stage in request.stages:
        if stage not in known:
            raise ConfigureError(
                f"no stage {stage!r} in .chalice/config.json; stages: {', '.join(known) or 'none'}"
            )
        function = api_function_name(config, stage)
        if not _FUNCTION_NAME.match(function):
            raise ConfigureError(
                f"function name {function!r} (<app_name>-<stage>) must be "
                "1-64 letters, digits, '-' or '_'"
            )


def _policy_file(config: Document, stage: str) -> str | None:
    settings = config["stages"][stage]
    if settings.get("autogen_policy", config.get("autogen_policy")) is not False:
        return None
    file: str | None = settings.get("iam_policy_file", config.get("iam_policy_file"))
    return file


def _affected(config: Document, stages: tuple[str, ...]) -> list[str]:
    """The configured stages plus every stage sharing a policy file with one of them or
    using the file one of them is about to own, to a fixed point (config order)."""
    files = {stage: _policy_file(config, stage) for stage in config["stages"]}
    affected = set(stages)
    while True:
        taken = {files[s] for s in affected} | {policy_file_for(s) for s in affected}
        grown = affected | {s for s, f in files.items() if f is not None and f in taken}
        if grown == affected:
            return [stage for stage in files if stage in affected]
        affected = grown


def _with_statement(document: Document, statement: Document) -> Document:
    """`document` with the statement of the same Sid replaced in place (else appended)."""
    statements = [s for s in document.get("Statement", [])]
    for index, existing in enumerate(statements):
        if existing.get("Sid") == statement["Sid"]:
            statements[index] = statement
            break
    else:
        statements.append(statement)
    return {**document, "Statement": statements}


def plan(config: Document, policies: dict[str, Document], request: Request) -> Plan:
    """The files after configuring `request.stages` (pure: no I/O). `policies` holds the
    existing policy documents by file name."""
    validate(config, request)
    new_config = copy.deepcopy(config)
    prefix = model_prefix(request.model)
    new_policies: dict[str, Document] = {}
    for stage in _affected(config, request.stages):
        old_file = _policy_file(config, stage)
        if old_file is not None and old_file not in policies:
            raise ConfigureError(
                f"stage {stage} names .chalice/{old_file}, which does not "
                "exist: restore it or fix iam_policy_file"
            )
        document = (
            copy.deepcopy(policies[old_file])
            if old_file
            else {"Version": "2012-10-17", "Statement": []}
        )
        settings = new_config["stages"][stage]
        if stage in request.stages:
            environment = settings.setdefault("environment_variables", {})
            environment[MODEL_BUCKET], environment[MODEL_PREFIX] = request.bucket, prefix
            if request.batch:
                for name, value in batch_environment(config["app_name"], stage).items():
                    environment.setdefault(name, value)
                functions = settings.setdefault("lambda_functions", {})
                for handler, timeout in BATCH_TIMEOUTS.items():
                    functions.setdefault(handler, {}).setdefault("lambda_timeout", timeout)
            if request.memory_mb is not None:
                settings["lambda_memory_size"] = request.memory_mb
        document = _with_statement(document, log_statement(*stage_functions(new_config, stage)))
        if stage in request.stages:
            document = _with_statement(document, read_statement(request.bucket, prefix))
        if has_batch(new_config, stage):
            for statement in stage_batch_statements(new_config, stage):
                document = _with_statement(document, statement)
        else:  # least privilege: no grants for a batch path the stage does not have
            statements = cast(list[Document], document.get("Statement", []))
            kept = [s for s in statements if s.get("Sid") not in BATCH_SIDS]
            document = {**document, "Statement": kept}
        settings["autogen_policy"] = False
        settings["iam_policy_file"] = policy_file_for(stage)
        new_policies[policy_file_for(stage)] = document
    in_use = {_policy_file(new_config, stage) for stage in new_config["stages"]}
    unused = tuple(sorted(name for name in policies if name not in in_use))
    return Plan(new_config, new_policies, unused)


def as_text(document: Document) -> str:
    """How configure writes JSON (the layout .chalice/config.json already has)."""
    return json.dumps(document, indent=2) + "\n"


def changes(chalice_dir: Path, result: Plan) -> dict[Path, tuple[str, str]]:
    """Files whose text would change: path -> (old text or "", new text)."""
    wanted = {chalice_dir / "config.json": as_text(result.config)}
    wanted.update({chalice_dir / name: as_text(doc) for name, doc in result.policies.items()})
    found = {path: path.read_text() if path.exists() else "" for path in wanted}
    return {path: (found[path], text) for path, text in wanted.items() if found[path] != text}


def diff(path: Path, old: str, new: str, root: Path) -> str:
    """A unified diff of one file, labelled relative to the project."""
    name = str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        f"a/{name}" if old else "/dev/null",
        f"b/{name}",
        n=1,
    )
    return "".join(lines)


def load(project_dir: Path) -> tuple[Document, dict[str, Document]]:
    """The project's config and every other JSON document in its .chalice/."""
    chalice_dir = project_dir / ".chalice"
    config_path = chalice_dir / "config.json"
    try:
        config: Document = json.loads(config_path.read_text())
        policies = {
            path.name: json.loads(path.read_text())
            for path in sorted(chalice_dir.glob("*.json"))
            if path != config_path
        }
    except (OSError, ValueError) as exc:
        raise ConfigureError(f"cannot read {chalice_dir}: {exc}") from exc
    return config, policies


def configure(project_dir: Path, request: Request) -> tuple[list[str], list[str]]:
    """Write the planned files of `project_dir` (only those that change); return the
    diffs to show the user, and notes on policy files no stage uses any more."""
    config, policies = load(project_dir)
    result = plan(config, policies, request)
    chalice_dir = project_dir / ".chalice"
    pending = changes(chalice_dir, result)
    report = [diff(path, old, new, project_dir) for path, (old, new) in pending.items()]
    for path, (_, new) in pending.items():
        partial = path.with_name(f".{path.name}.partial")
        partial.write_text(new)
        partial.replace(path)  # a reader sees the old file or the new one, never half
    notes = [
        f"note: no stage uses .chalice/{name} any more; delete it if you like\n"
        for name in result.unused
    ]
    return report, notes


def main(argv: list[str] | None = None) -> int:
    """The command line; every user mistake is one `error: ...` line and exit code 2."""
    parser = OneLineParser(
        prog="python -m deployment.configure", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--bucket", required=True, help="the S3 bucket holding the bundles")
    parser.add_argument("--model", required=True, help="the model's name (prefix models/NAME)")
    parser.add_argument(
        "--stage",
        action="append",
        dest="stages",
        metavar="STAGE",
        help="a stage to configure; repeat for more (default: every stage)",
    )
    parser.add_argument(
        "--batch", action="store_true", help="switch the stages' batch path on (its queues)"
    )
    parser.add_argument("--memory", type=int, metavar="MB", help="the stages' Lambda memory")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        stages = tuple(args.stages or load(args.project_dir)[0].get("stages", {}))
        request = Request(args.bucket, args.model, stages, args.memory, args.batch)
        diffs, notes = configure(args.project_dir, request)
    except ConfigureError as exc:
        return fail(str(exc))
    print("".join(diffs + notes), end="")
    done = "configured" if diffs else "already configured, nothing changed:"
    print(f"{done} {', '.join(stages)} -> s3://{args.bucket}/{model_prefix(args.model)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
