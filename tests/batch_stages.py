"""The project's stages with their batch path switched on, as a user switches it on:
`deployment.configure --batch` on a copy of .chalice/ (the tracked files never change).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from deployment.configure import Request, configure
from deployment.stages import read_config, stage_location
from project_paths import CHALICE_DIR


def with_batch(project_dir: Path, stages: tuple[str, ...] | None = None) -> Path:
    """Switch the batch path on for `stages` (default: all) of the project at
    `project_dir` (its .chalice/ is copied from the checkout's when missing), each with
    its own bucket and model; returns its config path."""
    chalice_dir = project_dir / ".chalice"
    if not chalice_dir.exists():
        shutil.copytree(CHALICE_DIR, chalice_dir)
    config_path = chalice_dir / "config.json"
    for stage in stages or tuple(read_config(config_path)["stages"]):
        bucket, prefix = stage_location(stage, config_path)
        model = prefix.rsplit("/", 1)[-1]
        configure(project_dir, Request(bucket, model, (stage,), batch=True))
    return config_path
