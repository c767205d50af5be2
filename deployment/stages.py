"""Read a Chalice stage's settings from .chalice/config.json (offline tools only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib.config import APP_NAME, MODEL_PREFIX, Settings, api_auth
from project_paths import CHALICE_CONFIG, PROJECT_DIR


class UnknownStage(KeyError):
    """A stage the config does not define; the message lists the ones it does."""

    def __str__(self) -> str:
        return str(self.args[0])


class NotAChaliceProject(ValueError):
    """No readable .chalice/config.json where a command looked; the message says where."""


def _stages(config_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    config = read_config(config_path)
    return config, config.get("stages", {})


def read_config(config_path: Path = CHALICE_CONFIG) -> dict[str, Any]:
    """The project's .chalice/config.json; NotAChaliceProject when it is missing or not
    JSON, and when its app_name is not the one app.py serves (APP_NAME)."""
    project = config_path.parent.parent
    try:
        config: dict[str, Any] = json.loads(config_path.read_text())
    except FileNotFoundError:
        raise NotAChaliceProject(
            f"{_shown(project)} has no .chalice/config.json: run it from the project's "
            "directory (where app.py and .chalice/ are)"
        ) from None
    except (OSError, ValueError) as exc:
        raise NotAChaliceProject(f"cannot read {_shown(config_path)}: {exc}") from None
    if config.get("app_name") != APP_NAME:
        raise NotAChaliceProject(
            f"app_name in {_shown(config_path)} is {config.get('app_name')!r}, but app.py "
            f"serves {APP_NAME!r} (chalicelib/config.py APP_NAME): make them equal"
        )
    return config


def _shown(path: Path) -> Path:
    return path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path


def unknown_stage_message(stage: str, stages: list[str], config_path: Path) -> str:
    """`no stage 'x' in .chalice/config.json; stages: dev, prod` (no traceback needed)."""
    return f"no stage {stage!r} in {_shown(config_path)}; stages: {', '.join(stages) or 'none'}"


def stage_names(config_path: Path = CHALICE_CONFIG) -> list[str]:
    """The stages the config defines, in its order."""
    return list(_stages(config_path)[1])


def stage_setting(stage: str, key: str, config_path: Path = CHALICE_CONFIG) -> Any:
    """A setting as Chalice resolves it for `stage`: the stage's value, else the global one.
    UnknownStage (a KeyError) if the config has no such stage."""
    config, stages = _stages(config_path)
    if stage not in stages:
        raise UnknownStage(unknown_stage_message(stage, list(stages), config_path))
    return stages[stage].get(key, config.get(key))


def api_function_name(config: dict[str, Any], stage: str, handler: str | None = None) -> str:
    """A function's name as `chalice deploy` names it (chalice/deploy/appgraph.py): the
    REST API's `<app_name>-<stage>`, another handler's `<app_name>-<stage>-<handler>`;
    `make package` gives CloudFormation the same names."""
    api = f"{config['app_name']}-{stage}"
    return f"{api}-{handler}" if handler else api


def function_name(stage: str, config_path: Path = CHALICE_CONFIG) -> str:
    """`api_function_name` for a stage of the config at `config_path`."""
    stage_setting(stage, "app_name", config_path)  # UnknownStage first
    return api_function_name(_stages(config_path)[0], stage)


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


def stage_auth(stage: str, config_path: Path = CHALICE_CONFIG) -> str:
    """The stage's API_AUTH (iam, api_key or none; iam when unset), as app.py reads it."""
    return api_auth(stage_environment(stage, config_path))


def stage_architecture(stage: str, config_path: Path = CHALICE_CONFIG) -> str:
    """The stage's `lambda_architecture` as Chalice resolves it (x86_64 when unset)."""
    return str(stage_setting(stage, "lambda_architecture", config_path) or "x86_64")
