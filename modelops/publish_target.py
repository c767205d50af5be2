"""Where a command of modelops.publish acts: a bucket and a model's prefix.

- `--stage S`: the stage's MODEL_BUCKET and MODEL_PREFIX (.chalice/config.json); with
  `--name N`, only if the stage serves model N (its prefix is `<root>/N`).
- `--bucket B --name N`: B, prefix `models/N` (chalicelib.bundle_layout.model_prefix).
- `--bucket B --prefix P`: B and P exactly as given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from chalicelib.bundle_layout import is_model_name, model_prefix
from deployment.stages import stage_location
from modelops.cli_errors import UserMistake
from project_paths import CHALICE_CONFIG

_CONFIG_NAME = f"{CHALICE_CONFIG.parent.name}/{CHALICE_CONFIG.name}"


@dataclass(frozen=True)
class Target:
    bucket: str
    prefix: str
    #: The model that lives there: --name, or a stage's by its prefix; None if unknown.
    name: str | None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}"


def resolve_target(
    *, stage: str | None, bucket: str | None, prefix: str | None, name: str | None
) -> Target:
    """The bucket and prefix the arguments name; a UserMistake says what to fix."""
    if name is not None and not is_model_name(name):
        raise UserMistake(
            f"--name {name!r} is not a valid model name: use 1-128 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit (it becomes one S3 folder)"
        )
    if stage is not None:
        if prefix is not None:
            raise UserMistake(
                "--prefix goes with --bucket; a stage's prefix is its MODEL_PREFIX in "
                f"{_CONFIG_NAME}"
            )
        return _stage_target(stage, name)
    if bucket is None:
        raise UserMistake("say where: --stage S, or --bucket B (with --name N or --prefix P)")
    if prefix is not None:
        return Target(bucket, prefix.strip("/"), name)
    if name is None:
        raise UserMistake(
            f"--bucket {bucket} needs --name (the prefix is models/<name>) or --prefix"
        )
    return Target(bucket, model_prefix(name), name)


def _stage_target(stage: str, name: str | None) -> Target:
    try:
        bucket, prefix = stage_location(stage)
    except KeyError:
        raise UserMistake(_unknown_stage(stage)) from None
    except (OSError, ValueError) as exc:
        raise UserMistake(f"cannot read {CHALICE_CONFIG}: {exc}") from exc
    served = prefix.rsplit("/", 1)[-1] if prefix else None
    if name is not None and served != name:
        raise UserMistake(
            f"stage {stage} serves model {served!r} (s3://{bucket}/{prefix}/), not {name!r}: "
            f"publish {name!r} with --bucket {bucket} --name {name} (it goes to "
            f"{model_prefix(name)}/ and replaces nothing), or set the stage's MODEL_PREFIX "
            f"to {model_prefix(name)} to serve it"
        )
    return Target(bucket, prefix, served)


def _unknown_stage(stage: str) -> str:
    try:
        stages = list(json.loads(CHALICE_CONFIG.read_text()).get("stages", {}))
    except (OSError, ValueError, AttributeError):
        stages = []
    if stage in stages:
        return f"stage {stage} sets no MODEL_BUCKET in {_CONFIG_NAME}; add it there"
    return (
        f"unknown stage {stage!r}: choose one of {_CONFIG_NAME}'s stages "
        f"({', '.join(stages) or 'none'})"
    )
