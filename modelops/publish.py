"""Publish a Keras classifier as a versioned model bundle in S3.

    python -m modelops.publish --model artifacts/demo/model.keras \\
        --preprocessing artifacts/demo/preprocessing.json --labels artifacts/demo/labels.json \\
        --name loan-grade --version 1 --stage dev

Writes `<prefix>/<version>/{model.keras|model.h5, model.tflite, manifest.json}` and
then `<prefix>/LATEST`. Refuses, uploading nothing, when the LiteRT conversion's
probabilities differ from Keras's by more than 1e-5 or any argmax differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from chalicelib.manifest import (
    KERAS_ARTIFACT,
    LATEST_POINTER,
    MANIFEST_FILE,
    TFLITE_ARTIFACT,
    Artifact,
    BundleManifest,
    PreprocessingSpec,
)
from deployment.stages import stage_location

PARITY_TOLERANCE = 1e-5
SAMPLE_ROWS = 512


class PublishError(Exception):
    """The model cannot be published as asked; nothing was uploaded."""


@dataclass(frozen=True)
class BuiltBundle:
    """A bundle assembled locally: file name -> bytes, plus its manifest."""

    manifest: BundleManifest
    files: dict[str, bytes]
    parity_max_difference: float


def build_bundle(
    model_path: Path,
    *,
    name: str,
    version: str,
    labels: list[str] | None = None,
    preprocessing: PreprocessingSpec | None = None,
    feature_names: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    sample: np.ndarray | None = None,
    converter: Callable[[Path], bytes] | None = None,
) -> BuiltBundle:
    """Load, check and convert the model; return the bundle's files and manifest.

    `converter` (default: modelops.convert.convert_to_tflite) turns the Keras file
    into LiteRT flatbuffer bytes; the result must match Keras within 1e-5.
    """
    import keras

    from modelops.convert import check_parity, convert_to_tflite

    model = keras.saving.load_model(model_path, compile=False)
    width, classes = _check_signature(model)
    labels = labels or [str(i) for i in range(classes)]
    if len(labels) != classes:
        raise PublishError(f"the model has {classes} outputs but {len(labels)} labels were given")
    encoded = _encoded_features(width, preprocessing, feature_names)
    tflite = (converter or convert_to_tflite)(model_path)
    probe = _parity_sample(width, preprocessing, sample)
    report = check_parity(model, tflite, probe, tolerance=PARITY_TOLERANCE)
    if not report.ok:
        raise PublishError(
            f"LiteRT conversion disagrees with Keras (max probability difference "
            f"{report.max_abs_diff:.3g}, {report.argmax_mismatches} argmax mismatches); "
            "nothing was uploaded"
        )
    keras_name = "model.h5" if model_path.suffix == ".h5" else "model.keras"
    files = {keras_name: model_path.read_bytes(), "model.tflite": tflite}
    manifest = BundleManifest(
        name=name,
        version=version,
        encoded_features=tuple(encoded),
        labels=tuple(labels),
        artifacts={
            KERAS_ARTIFACT: _artifact(keras_name, files[keras_name]),
            TFLITE_ARTIFACT: _artifact("model.tflite", tflite),
        },
        preprocessing=preprocessing,
        frameworks=_framework_versions(),
        metrics=(metrics or {}) | {"litert_parity_max_abs_diff": float(report.max_abs_diff)},
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    manifest.check()
    return BuiltBundle(manifest, files, float(report.max_abs_diff))


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
    base = f"{prefix}/{bundle.manifest.version}" if prefix else bundle.manifest.version
    if not overwrite and _exists(s3_client, bucket, f"{base}/{MANIFEST_FILE}"):
        raise PublishError(
            f"version {bundle.manifest.version} already exists at s3://{bucket}/{base}/ "
            "(pass --overwrite to replace it)"
        )
    for file_name, content in sorted(bundle.files.items()):
        s3_client.put_object(Bucket=bucket, Key=f"{base}/{file_name}", Body=content)
    s3_client.put_object(
        Bucket=bucket,
        Key=f"{base}/{MANIFEST_FILE}",
        Body=bundle.manifest.dumps(),
        ContentType="application/json",
    )
    if promote:
        latest = f"{prefix}/{LATEST_POINTER}" if prefix else LATEST_POINTER
        s3_client.put_object(Bucket=bucket, Key=latest, Body=bundle.manifest.version.encode())
    return f"s3://{bucket}/{base}/"


def _check_signature(model: Any) -> tuple[int, int]:
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 2:
        raise PublishError("the model must take exactly one 2-D float input (rows, features)")
    if len(model.outputs) != 1 or len(model.outputs[0].shape) != 2:
        raise PublishError("the model must have one (rows, classes) probability output")
    return int(model.inputs[0].shape[-1]), int(model.outputs[0].shape[-1])


def _encoded_features(
    width: int, preprocessing: PreprocessingSpec | None, feature_names: list[str] | None
) -> list[str]:
    names = (
        preprocessing.encoded_features()
        if preprocessing
        else (feature_names or [f"x{i}" for i in range(width)])
    )
    if len(names) != width:
        raise PublishError(f"the model takes {width} inputs but {len(names)} feature names given")
    return names


def _parity_sample(
    width: int, preprocessing: PreprocessingSpec | None, sample: np.ndarray | None
) -> np.ndarray:
    """Encoded-space rows to compare engines on: given rows plus seeded synthetic ones."""
    rng = np.random.default_rng(0)
    synthetic = rng.standard_normal((SAMPLE_ROWS, width)).astype(np.float32)
    if preprocessing:
        offset = len(preprocessing.numeric)
        synthetic[:, offset:] = 0.0
        for feature in preprocessing.categorical:
            picks = rng.integers(0, len(feature.categories), SAMPLE_ROWS)
            synthetic[np.arange(SAMPLE_ROWS), offset + picks] = 1.0
            offset += len(feature.categories)
    if sample is None:
        return synthetic
    return np.concatenate([np.asarray(sample, dtype=np.float32), synthetic])


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
    parser.add_argument("--features", help="JSON list of encoded feature names (no preprocessing)")
    parser.add_argument("--metrics", help="training metrics JSON to record in the manifest")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stage", help="publish where this Chalice stage reads its model")
    where.add_argument("--bucket", help="S3 bucket (with --prefix)")
    parser.add_argument("--prefix", default="models", help="S3 key prefix (with --bucket)")
    parser.add_argument("--no-promote", action="store_true", help="do not move LATEST")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    args = parser.parse_args(argv)

    import boto3

    bucket, prefix = stage_location(args.stage) if args.stage else (args.bucket, args.prefix)
    spec_json = _read_json(args.preprocessing)
    try:
        print(f"==> checking and converting {args.model} (Keras -> LiteRT)", flush=True)
        bundle = build_bundle(
            args.model,
            name=args.name,
            version=args.version,
            labels=_labels_arg(args.labels),
            preprocessing=PreprocessingSpec.from_json(spec_json) if spec_json else None,
            feature_names=_read_json(args.features),
            metrics=_read_json(args.metrics),
        )
        print(f"    LiteRT parity: max probability difference {bundle.parity_max_difference:.2e}")
        url = upload_bundle(
            bundle,
            boto3.client("s3"),
            bucket,
            prefix.strip("/"),
            promote=not args.no_promote,
            overwrite=args.overwrite,
        )
    except PublishError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"==> published {args.name} version {args.version} to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
