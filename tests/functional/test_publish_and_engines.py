"""A bad conversion gives a Keras-only bundle (or, with --require-lite, a refusal); the
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


def other_models_conversions(model_dir: Path) -> dict[str, Callable[[Path], bytes]]:
    """Converters (LiteRT, ONNX) that return a different (untrained) model of the same shape."""

    def other() -> Any:
        import keras

        width = len(spec_of(model_dir).encoded_features())
        return keras.Sequential([keras.Input((width,)), keras.layers.Dense(7, "softmax")])

    def tflite(_: Path) -> bytes:
        import tensorflow as tf

        return bytes(tf.lite.TFLiteConverter.from_keras_model(other()).convert())

    def onnx(_: Path) -> bytes:
        from modelops.onnx_convert import keras_to_onnx

        return keras_to_onnx(other())

    return {"litert": tflite, "onnx": onnx}


def test_a_conversion_that_disagrees_gives_a_keras_only_bundle(published: PublishedModel) -> None:
    built = build_bundle(
        published.model_dir / "model.keras", name="loan-grade", version="9",
        labels=list("ABCDEFG"), preprocessing=spec_of(published.model_dir),
        converters=other_models_conversions(published.model_dir),
    )  # fmt: skip
    assert built.lite_problem is not None
    assert "LiteRT's conversion disagrees with Keras" in built.lite_problem
    assert "ONNX Runtime's conversion disagrees with Keras" in built.lite_problem
    assert sorted(built.files) == ["model.keras"]
    assert built.manifest.metrics is not None
    assert built.manifest.metrics["lite_unavailable"] == built.lite_problem


def test_require_lite_refuses_a_conversion_that_disagrees(
    published: PublishedModel, fresh_bucket: str
) -> None:
    with pytest.raises(PublishError, match="disagrees"):
        build_bundle(
            published.model_dir / "model.keras", name="loan-grade", version="9",
            labels=list("ABCDEFG"), preprocessing=spec_of(published.model_dir),
            converters=other_models_conversions(published.model_dir), require_lite=True,
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
