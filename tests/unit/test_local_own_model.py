"""`make serve MODEL=...`'s pure parts: the model's name, the publish arguments, the
example bodies and the banner, all derived from the file name and the manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.bundle_layout import is_model_name
from chalicelib.manifest import CategoricalFeature, NumericFeature, PreprocessingSpec
from localdev.own_model import (
    SCRATCH_ROOT,
    OwnModel,
    example_bodies,
    name_from_file,
    needs_keras,
    response_shape,
    usage,
)

SPEC = PreprocessingSpec(
    (NumericFeature("income", 52000.123456, 1000.0), NumericFeature("dti", 0.3, 0.1)),
    (CategoricalFeature("home", ("RENT", "OWN")),),
)
BOTH = {"keras": {"file": "model.keras"}, "tflite": {"file": "model.tflite"}}


def manifest(**fields: Any) -> dict[str, Any]:
    return {"name": "m", "version": "1", "labels": ["good", "bad"], "artifacts": BOTH} | fields


@pytest.mark.parametrize(
    ("file_name", "name"),
    [
        ("credit risk v2.keras", "credit-risk-v2"),
        ("__model__.h5", "model__"),
        ("modèle.keras", "mod-le"),
        ("___.keras", "model"),
        (f"{'x' * 200}.keras", "x" * 128),
    ],
)
def test_the_name_is_the_file_stem_made_a_valid_model_name(file_name: str, name: str) -> None:
    assert name_from_file(Path("/somewhere") / file_name) == name
    assert is_model_name(name)


def test_only_the_options_given_reach_publish() -> None:
    model = OwnModel(Path("/u/m.keras"), "m", labels="good,bad", task="binary")
    assert model.publish_args("bucket", "1") == [
        "--model", "/u/m.keras", "--bucket", "bucket", "--name", "m", "--version", "1",
        "--overwrite", "--labels", "good,bad", "--task", "binary",
    ]  # fmt: skip
    assert model.prefix == "models/m"
    assert model.scratch_dir == SCRATCH_ROOT / "m"


def test_raw_example_uses_training_means_and_first_categories() -> None:
    raw, encoded = example_bodies(
        manifest(preprocessing=SPEC.to_json(), encoded_features=SPEC.encoded_features())
    )
    assert raw == {"instances": [{"income": 52000.1235, "dti": 0.3, "home": "RENT"}]}
    [record] = encoded["instances"]
    assert list(record) == ["income", "dti", "RENT", "OWN"]
    assert record["RENT"] == 1.0 and record["OWN"] == 0.0
    assert abs(record["income"]) < 1e-3 and abs(record["dti"]) < 1e-6


def test_encoded_example_uses_feature_means_else_zeros() -> None:
    names = ["a", "b"]
    raw, encoded = example_bodies(manifest(encoded_features=names, preprocessing=None))
    assert raw is None and encoded == {"instances": [{"a": 0.0, "b": 0.0}]}
    stats = {"mean": [1.5, -2.0], "std": [1.0, 1.0]}
    _, encoded = example_bodies(manifest(encoded_features=names, feature_stats=stats))
    assert encoded == {"instances": [{"a": 1.5, "b": -2.0}]}


def test_an_integer_input_gets_whole_numbers() -> None:
    inputs = [
        {"name": "numbers", "dtype": "float32", "features": ["amount"]},
        {"name": "tokens", "dtype": "int32", "features": ["merchant"]},
    ]
    stats = {"mean": [10.25, 41.7], "std": [1.0, 1.0]}
    _, encoded = example_bodies(
        manifest(encoded_features=["amount", "merchant"], inputs=inputs, feature_stats=stats)
    )
    assert encoded == {"instances": [{"amount": 10.25, "merchant": 42}]}
    assert isinstance(encoded["instances"][0]["merchant"], int)


@pytest.mark.parametrize(
    ("fields", "shape"),
    [
        ({}, '{"label": one of good, bad, "probabilities": {"good": p, "bad": p}}'),
        ({"task": "binary"}, '{"label": one of good, bad, "probabilities": {"good": p, "bad": p}}'),
        (
            {"task": "multilabel"},
            '{"labels": [those with p >= 0.5], "probabilities": {"good": p, "bad": p}}',
        ),
        ({"task": "multilabel", "threshold": 0.3},
         '{"labels": [those with p >= 0.3], "probabilities": {"good": p, "bad": p}}'),
        ({"task": "regression", "outputs": ["amount", "rate"], "labels": []},
         '{"values": {"amount": x, "rate": x}}'),
    ],
)  # fmt: skip
def test_the_printed_response_shape_suits_the_task(fields: dict[str, Any], shape: str) -> None:
    assert response_shape(manifest(**fields)) == shape


def test_a_keras_only_bundle_says_its_engine_and_where_to_deploy_it() -> None:
    keras_only = manifest(artifacts={"keras": {"file": "model.keras"}})
    model = OwnModel(Path("/u/m.keras"), "m")
    assert needs_keras(keras_only) and not needs_keras(manifest())
    banner = usage("http://127.0.0.1:8000", model, keras_only, [], "loan-models-dev")
    assert "served with the Keras engine (MODEL_ENGINE=keras)" in banner
    assert "make package FLAVOR=tensorflow STAGE=dev-tensorflow" in banner
    assert "STAGE=prod-tensorflow" in banner
    assert "Keras engine" not in usage("http://x", model, manifest(), [], "loan-models-dev")


def test_the_banner_curls_post_the_examples_from_the_project_dir() -> None:
    model = OwnModel(Path("/u/m.keras"), "m")
    examples = [SCRATCH_ROOT / "m" / "example-encoded.json"]
    banner = usage("http://127.0.0.1:8000", model, manifest(), examples, "loan-models-dev")
    assert (
        "  curl -s -X POST http://127.0.0.1:8000/predict -H 'Content-Type: application/json' "
        "-d @artifacts/local/m/example-encoded.json"
    ) in banner.splitlines()
    assert "s3://loan-models-dev/models/m/" in banner


def test_a_sample_reaches_publish_so_range_checks_are_on() -> None:
    model = OwnModel(Path("/u/m.keras"), "m", sample="train.csv")
    assert model.publish_args("bucket", "1")[-2:] == ["--sample", "train.csv"]
