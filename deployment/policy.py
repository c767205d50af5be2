"""The stage IAM policies and the least-privilege rules they must keep."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from deployment.stages import stage_setting
from project_paths import CHALICE_DIR

# What a statement may name. Region and account stay `*` (the file is the same in every
# account); the resource part is always a concrete log group or bucket prefix.
ALLOWED_RESOURCES = (
    re.compile(r"arn:aws:logs:\*:\*:log-group:/aws/lambda/[A-Za-z0-9_-]+(:log-stream:\*)?"),
    re.compile(r"arn:aws:s3:::[a-z0-9.-]+/[A-Za-z0-9_./-]+/\*"),
)
ALLOWED_ACTIONS = {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                   "s3:GetObject", "s3:ListBucket"}  # fmt: skip


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
            if not any(pattern.fullmatch(resource) for pattern in ALLOWED_RESOURCES):
                problems.append(f"{where}: resource {resource!r} is not a scoped log group "
                                "or bucket prefix")  # fmt: skip
    return problems


def _as_list(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
