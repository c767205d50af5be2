"""Read a Chalice stage's model location from .chalice/config.json (offline tools only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHALICE_CONFIG = PROJECT_DIR / ".chalice" / "config.json"


def stage_environment(stage: str, config_path: Path = CHALICE_CONFIG) -> dict[str, str]:
    """The environment variables Chalice sets for `stage` (global ones, then the stage's)."""
    config: dict[str, Any] = json.loads(config_path.read_text())
    if stage not in config.get("stages", {}):
        raise KeyError(f"no stage {stage!r} in {config_path}")
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def stage_location(stage: str) -> tuple[str, str]:
    """(bucket, prefix) where `stage` loads its model bundle."""
    env = stage_environment(stage)
    return env["MODEL_BUCKET"], env.get("MODEL_PREFIX", "models").strip("/")
