"""`make serve MODEL=...`: a user's own model on the local stack, their folder untouched.

- The model is published to the local S3 at `s3://<stage bucket>/models/<name>/`
  (modelops.publish `--bucket --name`), never into the demo's prefix.
- `chalice local` runs from a temporary copy of the project whose stage points at that
  prefix: Chalice sets a stage's `environment_variables` over the process environment,
  so an exported MODEL_PREFIX would be ignored, and the tracked config is never edited.
- Example bodies are built from the published manifest and written to
  `artifacts/local/<name>/` (gitignored), never next to the user's model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.bundle_layout import BundleLayout, is_model_name, model_prefix
from chalicelib.config import MODEL_ENGINE, MODEL_PREFIX
from chalicelib.engines.registry import ENGINES, flavor_engines
from chalicelib.manifest import PreprocessingSpec
from chalicelib.tasks import DEFAULT_TASK, task_named
from chalicelib.version_pointer import read_latest
from deployment.project import copy_project
from project_paths import PROJECT_DIR

SCRATCH_ROOT = PROJECT_DIR / "artifacts" / "local"
#: The Chalice stages whose Keras engine serves a bundle LiteRT cannot run.
KERAS_STAGES = ("dev-tensorflow", "prod-tensorflow")


@dataclass(frozen=True)
class OwnModel:
    """The user's model file and the publish options given for it (None: not given)."""

    path: Path
    name: str
    labels: str | None = None
    task: str | None = None
    features: str | None = None
    preprocessing: str | None = None
    outputs: str | None = None
    #: Each output's task, labels or names of a model with several (publish --heads).
    heads: str | None = None
    #: Training records for feature statistics (publish --sample): range checks on.
    sample: str | None = None

    def publish_args(self, bucket: str, version: str) -> list[str]:
        """modelops.publish's arguments; options not given are left to its defaults
        (so a flag another branch adds is only needed when used)."""
        given = {
            "--labels": self.labels,
            "--task": self.task,
            "--features": self.features,
            "--preprocessing": self.preprocessing,
            "--outputs": self.outputs,
            "--heads": self.heads,
            "--sample": self.sample,
        }
        options = [part for flag, value in given.items() if value is not None
                   for part in (flag, value)]  # fmt: skip
        return ["--model", str(self.path), "--bucket", bucket, "--name", self.name,
                "--version", version, "--overwrite", *options]  # fmt: skip

    @property
    def prefix(self) -> str:
        return model_prefix(self.name)

    @property
    def scratch_dir(self) -> Path:
        return SCRATCH_ROOT / self.name


def name_from_file(path: Path) -> str:
    """The model file's stem as a model name (chalicelib.bundle_layout's rule): runs of
    other characters become '-', it starts with a letter or digit, 128 at most."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem)
    name = re.sub(r"^[^A-Za-z0-9]+", "", name)[:128]
    return name if is_model_name(name) else "model"


def read_manifest(s3: Any, bucket: str, prefix: str) -> dict[str, Any]:
    """The manifest LATEST points at, as JSON (fields other branches add stay readable)."""
    layout = BundleLayout(prefix)
    pointer = read_latest(s3, bucket, layout)
    assert pointer is not None  # an unconditional read has a body
    body = s3.get_object(Bucket=bucket, Key=layout.manifest_key(pointer.version))["Body"]
    manifest: dict[str, Any] = json.loads(body.read())
    return manifest


def needs_keras(manifest: dict[str, Any]) -> bool:
    """Whether the bundle lacks every lite engine's artifact (published Keras-only)."""
    artifacts = manifest.get("artifacts", {})
    return not any(ENGINES[kind].artifact in artifacts for kind in flavor_engines("lite"))


def example_bodies(manifest: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(a raw-record body or None, an encoded-record body), one record each: raw fields
    at their training means and first categories; encoded features at the training
    means when the manifest has them (whole numbers for an integer input), else 0."""
    encoded_names: list[str] = list(manifest.get("encoded_features", []))
    if manifest.get("preprocessing"):
        spec = PreprocessingSpec.from_json(manifest["preprocessing"])
        raw: dict[str, Any] = {f.name: round(f.mean, 4) for f in spec.numeric}
        raw |= {f.name: f.categories[0] for f in spec.categorical}
        from chalicelib.encoding import FeatureEncoder

        row = FeatureEncoder(spec).encode_columns({k: [v] for k, v in raw.items()})[0]
        encoded = dict(zip(spec.encoded_features(), (round(float(x), 6) for x in row),
                           strict=True))  # fmt: skip
        return {"instances": [raw]}, {"instances": [encoded]}
    means = (manifest.get("feature_stats") or {}).get("mean") or [0.0] * len(encoded_names)
    whole = _integer_features(manifest)
    encoded = {
        name: round(float(m)) if name in whole else round(float(m), 6)
        for name, m in zip(encoded_names, means, strict=True)
    }
    for model_input in manifest.get("inputs") or []:  # a sequence or image: nested zeros
        if model_input.get("shape"):
            zero = 0 if "int" in str(model_input.get("dtype", "")) else 0.0
            encoded[model_input["name"]] = _nested(zero, list(model_input["shape"]))
    return None, {"instances": [encoded]}


def _nested(value: Any, shape: list[int]) -> Any:
    """`value` in lists nested as `shape` (shared inner lists: the body is only dumped)."""
    for dimension in reversed(shape):
        value = [value] * dimension
    return value


def _integer_features(manifest: dict[str, Any]) -> set[str]:
    """Features of integer inputs (e.g. an embedding's index), which take whole numbers."""
    return {
        feature
        for model_input in manifest.get("inputs") or []
        if "int" in str(model_input.get("dtype", ""))
        for feature in model_input.get("features", [])
    }


def write_examples(
    bodies: tuple[dict[str, Any] | None, dict[str, Any]], out_dir: Path
) -> list[Path]:
    """Write the example bodies to `out_dir` (the scratch dir); returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    raw, encoded = bodies
    paths: list[Path] = []
    for file_name, body in (("example-raw.json", raw), ("example-encoded.json", encoded)):
        path = out_dir / file_name
        if body is None:
            path.unlink(missing_ok=True)  # from an earlier run with preprocessing
            continue
        path.write_text(json.dumps(body, indent=2) + "\n")
        paths.append(path)
    return paths


def response_shape(manifest: dict[str, Any]) -> str:
    """One prediction's shape for the manifest's task (classification if unstated)."""
    return task_named(manifest.get("task") or DEFAULT_TASK).example_prediction(manifest)


def local_project(dest: Path, stage: str, prefix: str, engine: str | None) -> Path:
    """A copy of the deployable project (no vendor/) in `dest` whose `stage` serves
    `prefix`, with `engine` when given; the tracked .chalice/config.json is not touched."""

    def point_stage(config: dict[str, Any]) -> None:
        env = config["stages"][stage].setdefault("environment_variables", {})
        env[MODEL_PREFIX] = prefix
        if engine is not None:
            env[MODEL_ENGINE] = engine

    return copy_project(dest, vendor_dir=dest / "no-vendor", edit_config=point_stage)


def usage(
    url: str, model: OwnModel, manifest: dict[str, Any], examples: list[Path], bucket: str
) -> str:
    """The banner: where the model is served, curl commands that work, what answers."""
    task = manifest.get("task") or DEFAULT_TASK
    lines = [
        f"Your model {model.name} (version {manifest.get('version')}, task {task}) is being "
        f"served at {url}  (Ctrl-C stops everything)",
        f"  published to the local S3 as s3://{bucket}/{model.prefix}/; examples in "
        f"{_shown(model.scratch_dir)}/",
    ]
    if needs_keras(manifest):
        lines += [
            "  No lite engine can run this model: it is served with the Keras engine "
            f"({MODEL_ENGINE}=keras). Deploy it with the tensorflow flavor and a Keras stage:",
            f"    make package FLAVOR=tensorflow STAGE={KERAS_STAGES[0]}   "
            f"(or STAGE={KERAS_STAGES[1]})",
        ]
    lines += ["", f"  curl -s {url}/health", f"  curl -s {url}/model"]
    lines += [
        f"  curl -s -X POST {url}/predict -H 'Content-Type: application/json' -d @{_shown(path)}"
        for path in examples
    ]
    lines += ["", f"Each prediction reads {response_shape(manifest)}", ""]
    return "\n".join(lines)


def _shown(path: Path) -> Path:
    """`path` relative to the project when inside it (the curl lines run from there)."""
    return path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path
