"""Read a Chalice stage's settings from .chalice/config.json (offline tools only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.config import MODEL_PREFIX, Settings
from project_paths import CHALICE_CONFIG


def _stages(config_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config: dict[str, Any] = json.loads(config_path.read_text())
    return config, config.get("stages", {})


def stage_setting(stage: str, key: str, config_path: Path = CHALICE_CONFIG) -> Any:
    """A setting as Chalice resolves it for `stage`: the stage's value, else the global one."""
    config, stages = _stages(config_path)
    if stage not in stages:
        raise KeyError(f"no stage {stage!r} in {config_path}")
    return stages[stage].get(key, config.get(key))


def stage_environment(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, str]:
    """The environment variables Chalice sets for `stage` (global ones, then the stage's)."""
    config, _ = _stages(config_path)
    env = dict(config.get("environment_variables", {}))
    env.update(stage_setting(stage, "environment_variables", config_path) or {})
    return env


def stage_location(stage: str, config_path: Path = CHALICE_CONFIG) -> tuple[str, str]:
    """(bucket, prefix) where `stage` loads its model bundle; the prefix defaults as the
    service's does (`Settings.model_prefix`)."""
    env = stage_environment(stage, config_path)
    return env["MODEL_BUCKET"], env.get(MODEL_PREFIX, Settings.model_prefix).strip("/")
