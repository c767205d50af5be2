"""A copy of what Chalice deploys (app, chalicelib, config, policies, a vendor/ tree)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from project_paths import CHALICE_DIR, PROJECT_DIR, VENDOR_DIR

DEPLOYED_PARTS = ("app.py", "requirements.txt", "chalicelib")


def copy_project(
    dest: Path,
    vendor_dir: Path = VENDOR_DIR,
    edit_config: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Copy the deployable project to `dest` with `vendor_dir` as its vendor/ (e.g. a
    cached runtime), optionally editing .chalice/config.json."""
    ignore = shutil.ignore_patterns("__pycache__")
    dest.mkdir(parents=True, exist_ok=True)
    for part in DEPLOYED_PARTS:
        source = PROJECT_DIR / part
        if source.is_dir():
            shutil.copytree(source, dest / part, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, dest / part)
    if vendor_dir.is_dir():
        shutil.copytree(vendor_dir, dest / "vendor", symlinks=True)  # with its .pyc files
    chalice_dir = dest / ".chalice"
    chalice_dir.mkdir(parents=True)
    for path in CHALICE_DIR.glob("*.json"):
        shutil.copy2(path, chalice_dir / path.name)
    if edit_config is not None:
        config_path = chalice_dir / "config.json"
        config = json.loads(config_path.read_text())
        edit_config(config)
        config_path.write_text(json.dumps(config, indent=2))
    return dest
