"""Publish a Keras classifier as a versioned model bundle in S3.

    python -m modelops.publish --model artifacts/demo/model.keras \\
        --preprocessing artifacts/demo/preprocessing.json --labels artifacts/demo/labels.json \\
        --name loan-grade --version 1 --stage dev

Writes `<prefix>/<version>/{model.keras|model.h5, model.tflite, manifest.json}` and
then `<prefix>/LATEST` (the layout of chalicelib.bundle_layout, which the store reads).
When LiteRT cannot convert the model, or its conversion differs from Keras by more
than 1e-5 or in any argmax, the bundle is Keras-only (no `model.tflite`): the
tensorflow runtime flavor serves it, and the console says so. `--require-litert`
refuses instead, uploading nothing. Custom layers load from chalicelib.custom_objects.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.bundle_layout import DEFAULT_PREFIX, BundleLayout, is_version_name
from chalicelib.engines.registry import ENGINES
from chalicelib.manifest import (
    Artifact,
    BundleManifest,
    FeatureStats,
    ManifestError,
    PreprocessingSpec,
)
from chalicelib.model_inputs import ModelInputs
from modelops.signature import (
    FeatureNames,
    SignatureError,
    keras_inputs,
    map_features,
    parity_matrix,
)
from modelops.stage_config import stage_location

PARITY_TOLERANCE = 1e-5


class PublishError(Exception):
    """The model cannot be published as asked; nothing was uploaded."""


@dataclass(frozen=True)
class BuiltBundle:
    """A bundle assembled locally: file name -> bytes, plus its manifest."""

    manifest: BundleManifest
    files: dict[str, bytes]
    #: LiteRT vs Keras on the parity sample; None when LiteRT could not run it.
    parity_max_difference: float | None
    #: Why the bundle is Keras-only (None: it has a LiteRT artifact too).
    litert_problem: str | None = None


def build_bundle(
    model_path: Path,
    *,
    name: str,
    version: str,
    labels: list[str] | None = None,
    preprocessing: PreprocessingSpec | None = None,
    feature_names: FeatureNames | None = None,
    metrics: dict[str, Any] | None = None,
    feature_stats: FeatureStats | None = None,
    sample: np.ndarray | None = None,
    converter: Callable[[Path], bytes] | None = None,
    require_litert: bool = False,
) -> BuiltBundle:
    """Load, check and convert the model; return the bundle's files and manifest.

    `feature_names` is a flat list (one input) or {input name: [names]} (several).
    `converter` (default: modelops.convert.convert_to_tflite) turns the Keras file
    into LiteRT flatbuffer bytes; the result must match Keras within 1e-5, else the
    bundle is Keras-only (`litert_problem` says why) or, with `require_litert`,
    refused. `feature_stats` (training mean/std per encoded feature) enables the
    service's range rule for encoded records.
    """
    _check_version(version)
    from chalicelib.engines.keras_engine import load_keras_model
    from modelops.convert import try_litert

    model = load_keras_model(str(model_path))
    try:
        encoded, inputs = map_features(keras_inputs(model), preprocessing, feature_names)
    except SignatureError as exc:
        raise PublishError(str(exc)) from exc
    classes = _check_output(model)
    labels = labels or [str(i) for i in range(classes)]
    if len(labels) != classes:
        raise PublishError(f"the model has {classes} outputs but {len(labels)} labels were given")
    manifest = BundleManifest(
        name=name,
        version=version,
        encoded_features=tuple(encoded),
        labels=tuple(labels),
        artifacts={},
        preprocessing=preprocessing,
        frameworks=_framework_versions(),
        metrics=metrics or {},
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        feature_stats=feature_stats,
        inputs=inputs,
    )
    manifest.check()
    probe = parity_matrix(model, encoded, inputs, preprocessing, sample)
    litert = try_litert(
        model, model_path, ModelInputs(manifest).split(probe), converter, PARITY_TOLERANCE
    )
    if litert.problem and require_litert:
        raise PublishError(f"{litert.problem}; --require-litert refuses a Keras-only bundle")
    # What each engine runs: the Keras file as given, and its LiteRT conversion if sound.
    contents = {"keras": model_path.read_bytes()}
    if litert.tflite is not None:
        contents["litert"] = litert.tflite
    files: dict[str, bytes] = {}
    artifacts: dict[str, Artifact] = {}
    for engine, content in contents.items():
        spec = ENGINES[engine]
        files[spec.file_name(model_path.suffix)] = content
        artifacts[spec.artifact] = _artifact(spec.file_name(model_path.suffix), content)
    outcome = (
        {"litert_unavailable": litert.problem}
        if litert.problem
        else {"litert_parity_max_abs_diff": litert.max_abs_diff}
    )
    manifest = replace(manifest, artifacts=artifacts, metrics=(metrics or {}) | outcome)
    manifest.check()
    return BuiltBundle(manifest, files, litert.max_abs_diff, litert.problem)


def upload_bundle(
    bundle: BuiltBundle,
    s3_client: Any,
    bucket: str,
    prefix: str,
    *,
    promote: bool = True,
    overwrite: bool = False,
) -> str:
    """Upload files, then the manifest, then LATEST; returns the bundle's S3 URL."""
    version = bundle.manifest.version
    _check_version(version)
    layout = BundleLayout(prefix)
    base = layout.version_dir(version)
    if not overwrite and _exists(s3_client, bucket, layout.manifest_key(version)):
        raise PublishError(
            f"version {version} already exists at s3://{bucket}/{base}/ "
            "(pass --overwrite to replace it)"
        )
    for file_name, content in sorted(bundle.files.items()):
        s3_client.put_object(Bucket=bucket, Key=layout.file_key(version, file_name), Body=content)
    s3_client.put_object(
        Bucket=bucket,
        Key=layout.manifest_key(version),
        Body=bundle.manifest.dumps(),
        ContentType="application/json",
    )
    if promote:
        s3_client.put_object(Bucket=bucket, Key=layout.pointer_key(), Body=version.encode())
    return f"s3://{bucket}/{base}/"


def _check_version(version: str) -> None:
    if not is_version_name(version):
        raise PublishError(
            f"version {version!r} is not a valid name: 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and not 'latest'"
        )


def _check_output(model: Any) -> int:
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise PublishError("the model must have one (rows, classes) probability output")
    return int(model.outputs[0].shape[-1])


def _artifact(file_name: str, content: bytes) -> Artifact:
    return Artifact(file_name, hashlib.sha256(content).hexdigest(), len(content))


def _framework_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("tensorflow-cpu", "tensorflow", "keras", "ai-edge-litert", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _exists(s3_client: Any, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3_client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _read_json(path: str | None) -> Any:
    return json.loads(Path(path).read_text()) if path else None


def _json_arg(value: str | None) -> Any:
    """JSON given inline (starting with `[` or `{`) or as a file path."""
    if value is not None and value.lstrip()[:1] in ("[", "{"):
        return json.loads(value)
    return _read_json(value)


def _report_engines(bundle: BuiltBundle) -> None:
    if bundle.litert_problem is None:
        print(f"    LiteRT parity: max probability difference {bundle.parity_max_difference:.2e}")
        return
    print(
        f"==> Keras-only bundle: {bundle.litert_problem}.\n"
        f"    Serve it with {ENGINES['keras'].runtime}; the lite flavor answers 503 for it."
    )


def _labels_arg(value: str | None) -> list[str] | None:
    if value is None:
        return None
    if os.path.exists(value):
        return [str(label) for label in json.loads(Path(value).read_text())]
    return [label.strip() for label in value.split(",") if label.strip()]


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help=".keras or legacy .h5 file")
    parser.add_argument("--name", required=True, help="model name, e.g. loan-grade")
    parser.add_argument("--version", required=True, help="bundle version, e.g. 1 or 2026-11-24")
    parser.add_argument("--labels", help="labels JSON file or comma-separated names")
    parser.add_argument("--preprocessing", help="preprocessing spec JSON (raw-record support)")
    parser.add_argument(
        "--features",
        help="encoded feature names, JSON (file or inline): a list for one input, "
        '{"input name": [names]} for several',
    )
    parser.add_argument("--metrics", help="training metrics JSON to record in the manifest")
    parser.add_argument(
        "--feature-stats", help="mean/std per encoded feature JSON (range rule for encoded input)"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stage", help="publish where this Chalice stage reads its model")
    where.add_argument("--bucket", help="S3 bucket (with --prefix)")
    parser.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help=f"S3 key prefix (with --bucket; default {DEFAULT_PREFIX})",
    )
    parser.add_argument("--no-promote", action="store_true", help="do not move LATEST")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    parser.add_argument(
        "--require-litert",
        action="store_true",
        help="refuse rather than publish a Keras-only bundle when LiteRT cannot serve the model",
    )
    args = parser.parse_args(argv)

    import boto3

    bucket, prefix = stage_location(args.stage) if args.stage else (args.bucket, args.prefix)
    spec_json = _read_json(args.preprocessing)
    stats_json = _read_json(args.feature_stats)
    try:
        print(f"==> checking and converting {args.model} (Keras -> LiteRT)", flush=True)
        bundle = build_bundle(
            args.model,
            name=args.name,
            version=args.version,
            labels=_labels_arg(args.labels),
            preprocessing=PreprocessingSpec.from_json(spec_json) if spec_json else None,
            feature_names=_json_arg(args.features),
            metrics=_read_json(args.metrics),
            feature_stats=FeatureStats.from_json(stats_json) if stats_json else None,
            require_litert=args.require_litert,
        )
        _report_engines(bundle)
        url = upload_bundle(
            bundle,
            boto3.client("s3"),
            bucket,
            prefix.strip("/"),
            promote=not args.no_promote,
            overwrite=args.overwrite,
        )
    except (PublishError, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"==> published {args.name} version {args.version} to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
