"""Several outputs: a credit model with two heads, `grade` (softmax over A-C) and
`default` (one sigmoid), published for real (LiteRT conversion, moto S3) with each
head's task detected, served through /predict, V2 and a batch JSON Lines job with each
head's answer under its name, within 1e-5 of Keras. An output whose task cannot be
told is refused in one line naming --heads and make serve's HEADS=."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pytest

from chalicelib.service import PredictionService
from chalicelib.surfaces import rest, v2
from modelops.publish import BuiltBundle, PublishError, build_bundle, main, upload_bundle
from tests.functional.test_batch import Batch
from tests.functional.test_tensor_inputs import batch_env  # noqa: F401 (a fixture)

TOLERANCE = 1e-5
FEATURES = [f"x{i}" for i in range(5)]


def two_heads(linear: bool = False) -> Any:
    import keras

    keras.utils.set_random_seed(4)
    given = keras.Input((5,), name="x")
    hidden = keras.layers.Dense(8, activation="relu")(given)
    grade = keras.layers.Dense(3, activation="softmax", name="grade")(hidden)
    last = None if linear else "sigmoid"
    default = keras.layers.Dense(1, activation=last, name="default")(hidden)
    return keras.Model(given, [grade, default])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("heads") / "heads.keras"
    two_heads().save(path)
    return path


@pytest.fixture(scope="module")
def built(model_file: Path) -> BuiltBundle:
    heads: dict[str, dict[str, Any]] = {
        "grade": {"labels": "A,B,C"},
        "default": {"labels": ["no", "yes"]},
    }
    return build_bundle(model_file, name="credit", version="1", heads=heads)


def rows(count: int = 6) -> np.ndarray:
    return np.random.default_rng(8).normal(size=(count, 5)).astype(np.float32)


def keras_answer(model_file: Path, array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from chalicelib.engines.keras_engine import load_keras_model

    grade, default = load_keras_model(str(model_file)).predict(array, verbose=0)
    return grade, default[:, 0]


def test_each_head_is_detected_and_recorded(built: BuiltBundle) -> None:
    manifest = built.manifest
    assert built.lite_problem is None
    assert manifest.task == "heads"
    assert [head.to_json() for head in manifest.heads] == [
        {"name": "grade", "task": "classification", "labels": ["A", "B", "C"]},
        {"name": "default", "task": "binary", "labels": ["no", "yes"], "threshold": 0.5},
    ]
    public = manifest.public_json()
    assert [head["task"] for head in public["heads"]] == ["classification", "binary"]


@pytest.mark.parametrize("engine", ["litert", "keras"])
def test_predict_and_v2_answer_each_head_as_keras_does(
    built: BuiltBundle, model_file: Path, fresh_bucket: str,
    service_for: Callable[..., PredictionService], engine: str,
) -> None:  # fmt: skip
    upload_bundle(built, boto3.client("s3"), fresh_bucket, "m", overwrite=True)
    service = service_for(fresh_bucket, engine=engine)
    array = rows()
    grade, default = keras_answer(model_file, array)
    body = {"instances": [dict(zip(FEATURES, map(float, row), strict=True)) for row in array]}
    answer = rest.predict(lambda: service, lambda: json.dumps(body).encode(), "application/json")
    assert answer.status == 200, answer.body
    predictions = json.loads(answer.body)["predictions"]
    got = np.array([list(p["grade"]["probabilities"].values()) for p in predictions])
    assert np.abs(got - grade).max() <= TOLERANCE
    assert [p["grade"]["label"] for p in predictions] == ["ABC"[i] for i in grade.argmax(axis=1)]
    got_default = np.array([p["default"]["probabilities"]["yes"] for p in predictions])
    assert np.abs(got_default - default).max() <= TOLERANCE
    assert [p["default"]["label"] for p in predictions] == [
        "yes" if p >= 0.5 else "no" for p in default
    ]

    request = orjson.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [6, 5],
                                        "data": array.tolist()}]})  # fmt: skip
    answer = v2.infer(lambda: service, "credit", None, lambda: request, {})
    assert answer.status == 200, answer.body
    outputs = {o["name"]: o for o in orjson.loads(answer.body)["outputs"]}
    assert list(outputs) == [
        "grade.probabilities", "grade.label", "default.probabilities", "default.label"
    ]  # fmt: skip
    v2_grade = np.array(outputs["grade.probabilities"]["data"]).reshape(6, 3)
    assert np.abs(v2_grade - grade).max() <= TOLERANCE
    v2_default = np.array(outputs["default.probabilities"]["data"]).reshape(6, 2)[:, 1]
    assert np.abs(v2_default - default).max() <= TOLERANCE
    assert outputs["default.label"]["data"] == [p["default"]["label"] for p in predictions]


def test_a_batch_job_answers_each_head(
    built: BuiltBundle,
    model_file: Path,
    fresh_bucket: str,
    batch_env: Batch,  # noqa: F811
) -> None:
    upload_bundle(built, boto3.client("s3"), fresh_bucket, "m", overwrite=True)
    array = rows(7)
    lines = [orjson.dumps(dict(zip(FEATURES, map(float, row), strict=True))) for row in array]
    job = batch_env.jobs.start(batch_env.bucket, batch_env.upload("c.jsonl", b"\n".join(lines)))
    summary = batch_env.drain(job)
    parts, _, _ = batch_env.outputs(job)
    assert (summary["status"], summary["scored"]) == ("completed", 7)
    parts.sort(key=lambda p: p["row"])
    grade, default = keras_answer(model_file, array)
    got = np.array([list(p["grade"]["probabilities"].values()) for p in parts])
    assert np.abs(got - grade).max() <= TOLERANCE
    got_default = np.array([p["default"]["probabilities"]["yes"] for p in parts])
    assert np.abs(got_default - default).max() <= TOLERANCE


def test_an_output_of_unknown_task_is_one_line_naming_heads(
    tmp_path: Path, fresh_bucket: str, capfd: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "linear.keras"
    two_heads(linear=True).save(path)
    argv = ["--model", str(path), "--name", "credit", "--version", "1", "--bucket", fresh_bucket]
    assert main(argv) == 2
    err = capfd.readouterr().err
    assert err.count("\n") == 1
    assert "error: cannot tell the task of output 'default' (1 unit(s), final activation" in err
    assert """--heads '{"default": {"task": "regression"}}'""" in err
    assert """make serve HEADS='{"default": {"task": "regression"}}'""" in err
    heads = '{"default": {"task": "regression", "outputs": ["score"]}}'
    assert main([*argv, "--heads", heads]) == 0
    with pytest.raises(PublishError, match="give each its task and labels with --heads"):
        build_bundle(path, name="credit", version="2", labels=["a", "b", "c"])


def test_the_two_heads_on_onnx_runtime(
    model_file: Path, fresh_bucket: str, service_for: Callable[..., PredictionService]
) -> None:
    """ONNX Runtime forced: its outputs concatenated in the graph's order, within 1e-5."""
    built = build_bundle(model_file, name="credit", version="1", engine="onnx")
    assert built.engine == "onnx"
    upload_bundle(built, boto3.client("s3"), fresh_bucket, "m", overwrite=True)
    service = service_for(fresh_bucket, engine="onnx")
    array = rows()
    grade, default = keras_answer(model_file, array)
    body = {"instances": [dict(zip(FEATURES, map(float, row), strict=True)) for row in array]}
    answer = rest.predict(lambda: service, lambda: json.dumps(body).encode(), "application/json")
    predictions = json.loads(answer.body)["predictions"]
    got = np.array([list(p["grade"]["probabilities"].values()) for p in predictions])
    assert np.abs(got - grade).max() <= TOLERANCE
    got_default = np.array([p["default"]["probabilities"]["1"] for p in predictions])
    assert np.abs(got_default - default).max() <= TOLERANCE


def test_v2_binary_answers_each_heads_tensors(
    built: BuiltBundle, model_file: Path, fresh_bucket: str,
    service_for: Callable[..., PredictionService],
) -> None:  # fmt: skip
    """Binary in and out, framed and decoded by tritonclient (BYTES labels included)."""
    import tritonclient.http as triton
    from tritonclient.http._infer_result import InferResult
    from tritonclient.http._utils import _get_inference_request

    upload_bundle(built, boto3.client("s3"), fresh_bucket, "m", overwrite=True)
    service = service_for(fresh_bucket)
    array = rows()
    given = triton.InferInput("x", list(array.shape), "FP32")
    given.set_data_from_numpy(array, binary_data=True)
    wanted = [triton.InferRequestedOutput(n, binary_data=True)
              for n in ("grade.probabilities", "grade.label", "default.label")]  # fmt: skip
    body, size = _get_inference_request(
        inputs=[given], request_id="", outputs=wanted, sequence_id=0, sequence_start=False,
        sequence_end=False, priority=0, timeout=None, custom_parameters=None,
    )  # fmt: skip
    headers = {"inference-header-content-length": str(size), "accept": "application/octet-stream"}
    answer = v2.infer(lambda: service, "credit", None, lambda: body, headers)
    assert answer.status == 200, answer.body
    length = int(answer.headers["Inference-Header-Content-Length"])
    result = InferResult.from_response_body(answer.body, header_length=length)
    grade, default = keras_answer(model_file, array)
    assert np.abs(result.as_numpy("grade.probabilities") - grade).max() <= TOLERANCE
    assert [v.decode() for v in result.as_numpy("grade.label")] == [
        "ABC"[i] for i in grade.argmax(axis=1)
    ]
    assert [v.decode() for v in result.as_numpy("default.label")] == [
        "yes" if p >= 0.5 else "no" for p in default
    ]
    assert result.as_numpy("default.probabilities") is None  # not requested
