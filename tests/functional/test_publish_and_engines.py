"""A bad conversion gives a Keras-only bundle (or, with --require-litert, a refusal); the
Keras engine serves .keras and legacy .h5."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from chalicelib.manifest import PreprocessingSpec
from modelops.examples import holdout_records
from modelops.publish import PublishError, build_bundle, upload_bundle
from tests.conftest import PublishedModel


def spec_of(model_dir: Path) -> PreprocessingSpec:
    return PreprocessingSpec.from_json(json.loads((model_dir / "preprocessing.json").read_text()))


def other_models_tflite(model_dir: Path) -> Callable[[Path], bytes]:
    """A converter that returns a different (untrained) model of the same shape."""

    def convert(_: Path) -> bytes:
        import keras
        import tensorflow as tf

        width = len(spec_of(model_dir).encoded_features())
        other = keras.Sequential([keras.Input((width,)), keras.layers.Dense(7, "softmax")])
        return tf.lite.TFLiteConverter.from_keras_model(other).convert()

    return convert


def test_a_conversion_that_disagrees_gives_a_keras_only_bundle(published: PublishedModel) -> None:
    built = build_bundle(
        published.model_dir / "model.keras", name="loan-grade", version="9",
        labels=list("ABCDEFG"), preprocessing=spec_of(published.model_dir),
        converter=other_models_tflite(published.model_dir),
    )  # fmt: skip
    assert built.litert_problem is not None and "disagrees with Keras" in built.litert_problem
    assert sorted(built.files) == ["model.keras"]
    assert built.manifest.metrics is not None
    assert built.manifest.metrics["litert_unavailable"] == built.litert_problem


def test_require_litert_refuses_a_conversion_that_disagrees(
    published: PublishedModel, fresh_bucket: str
) -> None:
    with pytest.raises(PublishError, match="disagrees"):
        build_bundle(
            published.model_dir / "model.keras", name="loan-grade", version="9",
            labels=list("ABCDEFG"), preprocessing=spec_of(published.model_dir),
            converter=other_models_tflite(published.model_dir), require_litert=True,
        )  # fmt: skip
    assert boto3.client("s3").list_objects_v2(Bucket=fresh_bucket)["KeyCount"] == 0


def test_publish_refuses_wrong_label_count(published: PublishedModel) -> None:
    with pytest.raises(PublishError, match="labels"):
        build_bundle(published.model_dir / "model.keras", name="x", version="1",
                     labels=["good", "bad"])  # fmt: skip


def test_publish_refuses_an_existing_version(
    published: PublishedModel, fresh_bucket: str, bundle: Any
) -> None:
    s3 = boto3.client("s3")
    upload_bundle(bundle, s3, fresh_bucket, "m")
    with pytest.raises(PublishError, match="already exists"):
        upload_bundle(bundle, s3, fresh_bucket, "m")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_keras_engine_serves_keras_and_h5_like_litert(
    suffix: str, published: PublishedModel, keras_model: Any, fresh_bucket: str,
    service_for: Callable[..., Any], tmp_path: Path,
) -> None:  # fmt: skip
    model_path = tmp_path / f"model{suffix}"
    keras_model.save(model_path)
    built = build_bundle(model_path, name="loan-grade", version="3", labels=list("ABCDEFG"),
                         preprocessing=spec_of(published.model_dir))  # fmt: skip
    assert f"model{suffix}" in built.files
    upload_bundle(built, boto3.client("s3"), fresh_bucket, "m")
    records, _ = holdout_records(published.model_dir, 50)

    def served(engine: str) -> np.ndarray:
        answer = service_for(fresh_bucket, engine=engine).predict(records)
        return np.array([list(p["probabilities"].values()) for p in answer["predictions"]])

    assert np.abs(served("keras") - served("litert")).max() <= 1e-5
