"""Each model kind published from a real Keras file to moto S3 and served by the
LiteRT and Keras engines, equal to Keras within 1e-5; logits are refused at publish."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from modelops.publish import PublishError, build_bundle, main, upload_bundle
from tests.model_kinds import FEATURES, as_records, keras_outputs, sample_rows, tiny_model

ENGINES = ["litert", "keras"]
PARITY = 1e-5


def publish(kind: str, tmp_path: Path, bucket: str, **options: Any) -> tuple[Path, Any]:
    """Publish the tiny `kind` model as version 1 under prefix `m`; its path and manifest."""
    path = tiny_model(kind, tmp_path / f"{kind}.keras")
    built = build_bundle(path, name=kind, version="1", feature_names=FEATURES, **options)
    upload_bundle(built, boto3.client("s3"), bucket, "m")
    return path, built.manifest


@pytest.fixture
def rows() -> np.ndarray:
    return sample_rows(64)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_one_unit_sigmoid_is_served_as_binary(
    engine: str, rows: np.ndarray, tmp_path: Path, fresh_bucket: str,
    service_for: Callable[..., Any],
) -> None:  # fmt: skip
    path, manifest = publish("binary", tmp_path, fresh_bucket, labels=["good", "bad"])
    assert (manifest.task, manifest.labels, manifest.threshold) == ("binary", ("good", "bad"), 0.5)
    answer = service_for(fresh_bucket, engine=engine).predict(as_records(rows))
    p = keras_outputs(path, rows)[:, 0]
    served = np.array([[a["probabilities"]["good"], a["probabilities"]["bad"]]
                       for a in answer["predictions"]])  # fmt: skip
    assert np.abs(served - np.stack([1 - p, p], axis=1)).max() <= PARITY
    assert [a["label"] for a in answer["predictions"]] == np.where(p >= 0.5, "bad", "good").tolist()


@pytest.mark.parametrize("engine", ENGINES)
def test_sigmoid_units_are_served_as_multilabel(
    engine: str, rows: np.ndarray, tmp_path: Path, fresh_bucket: str,
    service_for: Callable[..., Any],
) -> None:  # fmt: skip
    labels = ["fraud", "late", "default"]
    path, manifest = publish("multilabel", tmp_path, fresh_bucket, labels=labels, threshold=0.4)
    assert (manifest.task, manifest.threshold) == ("multilabel", 0.4)
    answer = service_for(fresh_bucket, engine=engine).predict(as_records(rows))
    expected = keras_outputs(path, rows)
    served = np.array([[a["probabilities"][n] for n in labels] for a in answer["predictions"]])
    assert np.abs(served - expected).max() <= PARITY
    chosen = [[n for n, p in zip(labels, row, strict=True) if p >= 0.4] for row in expected]
    assert [a["labels"] for a in answer["predictions"]] == chosen
    decided = expected >= 0.4
    assert decided.any() and not decided.all()  # both sides of the threshold are exercised


@pytest.mark.parametrize("engine", ENGINES)
def test_a_two_output_regression_is_served_as_named_values(
    engine: str, rows: np.ndarray, tmp_path: Path, fresh_bucket: str,
    service_for: Callable[..., Any],
) -> None:  # fmt: skip
    path, manifest = publish("regression", tmp_path, fresh_bucket, task="regression",
                             outputs=["loss", "recovery"])  # fmt: skip
    assert (manifest.task, manifest.outputs, manifest.labels) == (
        "regression", ("loss", "recovery"), ()
    )  # fmt: skip
    answer = service_for(fresh_bucket, engine=engine).predict(as_records(rows))
    expected = keras_outputs(path, rows)
    served = np.array([[a["values"]["loss"], a["values"]["recovery"]]
                       for a in answer["predictions"]])  # fmt: skip
    scale = np.abs(expected).max(axis=0)
    assert (scale > 100).all()  # outputs in the thousands: the tolerance follows their scale
    assert (np.abs(served - expected) <= PARITY * scale).all()
    assert (expected < 0).any()  # negative values are served, not refused


def test_a_linear_output_needs_a_task_and_logits_are_not_probabilities(
    tmp_path: Path, fresh_bucket: str
) -> None:
    path = tiny_model("logits", tmp_path / "logits.keras")
    with pytest.raises(PublishError, match=r"cannot tell .* pass --task=regression"):
        build_bundle(path, name="logits", version="1")
    with pytest.raises(PublishError, match="not classification probabilities") as refused:
        build_bundle(path, name="logits", version="1", task="classification")
    remedy = (
        "end the model with a softmax layer, or publish a numeric output with --task regression"
    )
    assert remedy in str(refused.value)
    with pytest.raises(PublishError, match=r"not multilabel probabilities .* sigmoid units"):
        build_bundle(path, name="logits", version="1", task="multilabel")
    assert boto3.client("s3").list_objects_v2(Bucket=fresh_bucket)["KeyCount"] == 0


def test_the_command_line_publishes_a_regression_with_named_outputs(
    tmp_path: Path, fresh_bucket: str, service_for: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = tiny_model("regression", tmp_path / "model.keras")
    code = main([
        "--model", str(path), "--name", "lgd", "--version", "2", "--task", "regression",
        "--outputs", "loss,recovery", "--bucket", fresh_bucket, "--prefix", "m",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "task: regression" in capsys.readouterr().out
    info = service_for(fresh_bucket).model_info()
    assert (info["task"], info["outputs"]) == ("regression", ["loss", "recovery"])
    assert "labels" not in info


def test_the_command_line_refuses_logits_in_one_line(
    tmp_path: Path, fresh_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tiny_model("logits", tmp_path / "model.keras")
    code = main(["--model", str(path), "--name", "x", "--version", "1", "--labels", "a,b,c",
                 "--bucket", fresh_bucket, "--prefix", "m"])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("error: cannot tell") and err.count("\n") == 1
    assert "Traceback" not in err
