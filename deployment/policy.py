"""The stage IAM policies and the least-privilege rules they must keep."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from deployment.batch_stack import batch_stack
from deployment.configure import BATCH_SIDS, stage_batch_statements
from deployment.stages import stage_setting
from project_paths import CHALICE_DIR

# What a statement may name. Region and account stay `*` (the file is the same in every
# account); the resource part is always a concrete log group, bucket prefix or queue.
ALLOWED_RESOURCES = (
    re.compile(r"arn:aws:logs:\*:\*:log-group:/aws/lambda/[A-Za-z0-9_-]+(:log-stream:\*)?"),
    re.compile(r"arn:aws:s3:::[a-z0-9.-]+/[A-Za-z0-9_./-]+/\*"),
    re.compile(r"arn:aws:sqs:\*:\*:[A-Za-z0-9_-]{1,80}"),
)
# A whole bucket, only to list it, and only under named prefixes (s3:prefix condition).
BUCKET = re.compile(r"arn:aws:s3:::[a-z0-9.-]+")
ALLOWED_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                   "s3:GetObject", "s3:PutObject", "s3:ListBucket",
                   "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                   "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:SendMessage"}  # fmt: skip


def stage_policy(stage: str, chalice_dir: Path = CHALICE_DIR) -> dict[str, Any]:
    """The policy document a stage's `iam_policy_file` names (in `chalice_dir`)."""
    config_path = chalice_dir / "config.json"
    if stage_setting(stage, "autogen_policy", config_path) is not False:
        raise ValueError(f"stage {stage!r} lets Chalice generate its policy (autogen_policy)")
    policy_file = chalice_dir / stage_setting(stage, "iam_policy_file", config_path)
    policy: dict[str, Any] = json.loads(policy_file.read_text())
    return policy


def privilege_problems(policy: dict[str, Any]) -> list[str]:
    """Every wildcard action, `*` resource, unscoped resource or Deny-less escape hatch."""
    problems = []
    for index, statement in enumerate(policy["Statement"]):
        where = f"statement {statement.get('Sid', index)}"
        if statement.get("Effect") != "Allow" or "NotAction" in statement or (
                "NotResource" in statement):  # fmt: skip
            problems.append(f"{where}: only plain Allow statements are expected")
        for action in _as_list(statement.get("Action")):
            if "*" in action or action not in ALLOWED_ACTIONS:
                problems.append(f"{where}: action {action!r} is not in the allowed set")
        for resource in _as_list(statement.get("Resource")):
            if BUCKET.fullmatch(resource) and _lists_named_prefixes(statement):
                continue
            if not any(pattern.fullmatch(resource) for pattern in ALLOWED_RESOURCES):
                problems.append(f"{where}: resource {resource!r} is not a scoped log group, "
                                "bucket prefix or queue")  # fmt: skip
    return problems


def _lists_named_prefixes(statement: dict[str, Any]) -> bool:
    prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
    return (
        _as_list(statement.get("Action")) == ["s3:ListBucket"]
        and bool(prefixes)
        and all(p.rstrip("*").endswith("/") and "*" not in p.rstrip("*")
                for p in _as_list(prefixes))
    )  # fmt: skip


def batch_problems(stage: str, chalice_dir: Path = CHALICE_DIR) -> list[str]:
    """What the stage's policy lacks or adds for the batch path: each batch statement
    must be exactly the one its settings call for (input read, output read and write,
    listing of those prefixes, its own three queues), and no other statement may grant
    an SQS action or s3:PutObject."""
    config_path = chalice_dir / "config.json"
    batch_stack(stage, config_path)  # BatchStackError if the stage has no queue names
    config: dict[str, Any] = json.loads(config_path.read_text())
    expected = {s["Sid"]: s for s in stage_batch_statements(config, stage)}
    found = {s.get("Sid"): s for s in stage_policy(stage, chalice_dir)["Statement"]}
    problems = [f"statement {sid}: missing or not {expected[sid]}" for sid in BATCH_SIDS
                if found.get(sid) != expected[sid]]  # fmt: skip
    for sid, statement in found.items():
        writes = [a for a in _as_list(statement.get("Action"))
                  if a.startswith("sqs:") or a == "s3:PutObject"]  # fmt: skip
        if sid not in BATCH_SIDS and writes:
            problems.append(f"statement {sid}: grants {', '.join(writes)} outside the batch path")
    return problems


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
