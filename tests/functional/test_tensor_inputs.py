"""Inputs of any rank: a Conv1D over a sequence [rows, 10, 4] and a Conv2D +
BatchNormalization over an image [rows, 8, 8, 2], published for real (moto S3, LiteRT
conversion) with their record shape in the manifest, served through /predict (a nested
list per record), V2 JSON, V2 binary (tritonclient's own encoder and decoder) and a
batch JSON Lines job, each within 1e-5 of Keras. Wrong shapes and types are a 400
naming record and field, never echoing a value; a CSV job is refused saying to send
JSON Lines."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from tritonclient.http._infer_result import InferResult
from tritonclient.http._utils import _get_inference_request

from chalicelib.service import PredictionService
from chalicelib.surfaces import rest, v2
from localdev.servers import MotoServer
from modelops.publish import BuiltBundle, build_bundle, upload_bundle
from tests.functional.test_batch import Batch, _batch, local_env

TOLERANCE = 1e-5
SHAPES = {"sequence": ("seq", (10, 4)), "image": ("img", (8, 8, 2))}
SECRET = 987654.125


def keras_model(kind: str) -> Any:
    import keras

    keras.utils.set_random_seed(11)
    name, shape = SHAPES[kind]
    given = keras.Input(shape, name=name)
    if kind == "sequence":
        hidden = keras.layers.Conv1D(6, 3, activation="relu")(given)
        hidden = keras.layers.GlobalAveragePooling1D()(hidden)
    else:
        hidden = keras.layers.Conv2D(4, 3, activation="relu")(given)
        hidden = keras.layers.BatchNormalization()(hidden)
        hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    return keras.Model(given, keras.layers.Dense(3, activation="softmax")(hidden))


@pytest.fixture(scope="module", params=sorted(SHAPES))
def published(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    kind: str = request.param
    path = tmp_path_factory.mktemp(kind) / f"{kind}.keras"
    model = keras_model(kind)
    model.save(path)
    built = build_bundle(path, name=kind, version="1", labels=["a", "b", "c"])
    return kind, model, built


def batch_of(kind: str, rows: int = 6) -> np.ndarray:
    return np.random.default_rng(5).normal(size=(rows, *SHAPES[kind][1])).astype(np.float32)


def served(built: BuiltBundle, bucket: str, service_for: Callable[..., PredictionService]) -> Any:
    upload_bundle(built, boto3.client("s3"), bucket, "m", overwrite=True)
    return service_for(bucket, engine="litert")


def predict(service: PredictionService, body: Any) -> tuple[int, Any]:
    answer = rest.predict(lambda: service, lambda: json.dumps(body).encode(), "application/json")
    return answer.status, json.loads(answer.body)


def infer(service: PredictionService, name: str, array: np.ndarray, binary: bool) -> Any:
    """V2 infer as tritonclient.http frames it; the answer decoded by tritonclient."""
    given = triton.InferInput(SHAPES[name][0], list(array.shape), "FP32")
    given.set_data_from_numpy(array, binary_data=binary)
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
    body, json_size = _get_inference_request(
        inputs=[given], request_id="", outputs=outputs, sequence_id=0, sequence_start=False,
        sequence_end=False, priority=0, timeout=None, custom_parameters=None,
    )  # fmt: skip
    headers = {} if json_size is None else {"inference-header-content-length": str(json_size)}
    headers["accept"] = "application/octet-stream, application/json"
    data = body if isinstance(body, bytes) else body.encode()
    return v2.infer(lambda: service, name, None, lambda: data, headers)


def test_publish_records_each_inputs_full_shape(published: Any) -> None:
    kind, _, built = published
    name, shape = SHAPES[kind]
    assert built.lite_problem is None
    assert built.manifest.to_json()["inputs"] == [
        {"name": name, "dtype": "float32", "features": [name], "shape": list(shape)}
    ]
    assert built.manifest.public_json()["inputs"][0]["shape"] == list(shape)


@pytest.mark.parametrize("surface", ["predict", "v2-json", "v2-binary"])
def test_every_surface_scores_nested_inputs_as_keras_does(
    published: Any, fresh_bucket: str, service_for: Callable[..., PredictionService],
    surface: str,
) -> None:  # fmt: skip
    kind, model, built = published
    service = served(built, fresh_bucket, service_for)
    array = batch_of(kind)
    expected = model.predict(array, verbose=0)
    if surface == "predict":
        name = SHAPES[kind][0]
        status, answer = predict(service, {"instances": [{name: row.tolist()} for row in array]})
        assert status == 200
        got = np.array([list(p["probabilities"].values()) for p in answer["predictions"]])
    else:
        answer = infer(service, kind, array, binary=surface == "v2-binary")
        assert answer.status == 200, answer.body
        body = answer.body.encode() if isinstance(answer.body, str) else answer.body
        length = answer.headers.get("Inference-Header-Content-Length")
        result = InferResult.from_response_body(body, header_length=int(length) if length else None)
        got = result.as_numpy("probabilities")
    assert np.abs(got - expected).max() <= TOLERANCE


def test_wrong_shapes_and_types_are_400s_naming_record_and_field(
    published: Any, fresh_bucket: str, service_for: Callable[..., PredictionService]
) -> None:
    kind, _, built = published
    name, shape = SHAPES[kind]
    service = served(built, fresh_bucket, service_for)
    rows = [{name: row.tolist()} for row in batch_of(kind, 5)]
    rows[1][name] = rows[1][name][:-1]  # one step (or image row) short
    rows[2][name] = SECRET  # a number, not a nested list
    text = json.loads(json.dumps(rows[3][name]).replace("0.", "1.", 1))
    cell: Any = text
    while type(cell[0]) is list:
        cell = cell[0]
    cell[0] = "secret-text"
    rows[3][name] = text
    status, answer = predict(service, {"instances": rows})
    assert status == 400
    details = answer["error"]["details"]
    assert [(d["record"], d["field"]) for d in details] == [(1, name), (2, name)]
    assert f"nested as shape {list(shape)}" in details[0]["problem"]
    status, answer = predict(service, {"instances": [rows[0], rows[3]]})
    assert status == 400
    [detail] = answer["error"]["details"]
    assert (detail["record"], detail["field"], detail["problem"]) == (
        1, name, "must be a number, not text")  # fmt: skip
    assert "secret" not in json.dumps(answer) and str(SECRET) not in json.dumps(answer)

    flat = batch_of(kind).reshape(6, -1)  # V2: the shape must be the manifest's exactly
    answer = infer(service, kind, flat, binary=True)
    assert answer.status == 400
    expected_shape = ", ".join(map(str, shape))
    assert f"must be FP32 of shape [n, {expected_shape}]" in orjson.loads(answer.body)["error"]


@pytest.fixture
def batch_env(
    s3_server: MotoServer, fresh_bucket: str, tmp_path: Path, monkeypatch: Any
) -> Iterator[Batch]:
    """A batch path of its own serving the model under fresh_bucket/m."""
    tag = uuid.uuid4().hex[:8]
    env = local_env(s3_server.url, "dev") | {
        "MODEL_BUCKET": fresh_bucket, "MODEL_PREFIX": "m",
        "BATCH_ROWS_PER_CHUNK": "4", "BATCH_PREDICT_ROWS": "50",
        "BATCH_INPUT_PREFIX": f"batch/in-{tag}/", "BATCH_OUTPUT_PREFIX": f"batch/out-{tag}/",
        "BATCH_CHUNK_QUEUE": f"chunks-{tag}", "BATCH_DEAD_LETTER_QUEUE": f"dlq-{tag}",
        "BATCH_EVENTS_QUEUE": f"events-{tag}", "MODEL_CACHE_DIR": str(tmp_path / "cache"),
    }  # fmt: skip
    yield from _batch(env, monkeypatch)


def test_a_jsonl_batch_job_scores_nested_records_and_csv_is_refused(
    published: Any, fresh_bucket: str, batch_env: Batch
) -> None:
    kind, model, built = published
    upload_bundle(built, boto3.client("s3"), fresh_bucket, "m", overwrite=True)
    name = SHAPES[kind][0]
    array = batch_of(kind, 9)
    lines = [orjson.dumps({name: row.tolist()}) for row in array]
    lines.insert(4, orjson.dumps({name: [[SECRET]]}))
    key = batch_env.upload("rows.jsonl", b"\n".join(lines) + b"\n")
    job = batch_env.jobs.start(batch_env.bucket, key)
    summary = batch_env.drain(job)
    parts, errors, text = batch_env.outputs(job)
    assert (summary["status"], summary["scored"], summary["rejected"]) == ("completed", 9, 1)
    assert [(e["row"], e["field"]) for e in errors] == [(4, name)]
    assert str(SECRET) not in text
    got = np.array(
        [list(p["probabilities"].values()) for p in sorted(parts, key=lambda p: p["row"])]
    )
    assert np.abs(got - model.predict(array, verbose=0)).max() <= TOLERANCE

    key = batch_env.upload("rows.csv", f"{name}\n1\n".encode())
    summary = batch_env.jobs.progress(batch_env.jobs.start(batch_env.bucket, key))
    assert summary["status"] == "failed"
    assert "send the rows as JSON Lines" in summary["reason"]


@pytest.mark.slow  # two conversions, ~2 s
def test_an_unrolled_gru_and_an_integer_tensor_input_convert_and_serve(
    tmp_path: Path, fresh_bucket: str, service_for: Callable[..., PredictionService]
) -> None:
    """A GRU with unroll=True converts to LiteRT; an int32 [rows, 6, 3] input into an
    Embedding(7) gets its index range, and an index outside it is named, not echoed."""
    import keras

    keras.utils.set_random_seed(2)
    seq = keras.Input((10, 4), name="seq")
    tok = keras.Input((6, 3), name="tok", dtype="int32")
    tokens = keras.layers.Flatten()(keras.layers.Embedding(7, 2)(keras.layers.Reshape((18,))(tok)))
    hidden = keras.layers.Concatenate()([keras.layers.GRU(5, unroll=True)(seq), tokens])
    model = keras.Model([seq, tok], keras.layers.Dense(2, activation="softmax")(hidden))
    model.save(tmp_path / "gru.keras")
    built = build_bundle(tmp_path / "gru.keras", name="gru", version="1", labels=["no", "yes"])
    assert built.lite_problem is None
    assert built.manifest.inputs[1].index_range == (0, 6)
    service = served(built, fresh_bucket, service_for)
    rng = np.random.default_rng(1)
    steps = rng.normal(size=(4, 10, 4)).astype(np.float32)
    codes = rng.integers(0, 7, size=(4, 6, 3)).astype(np.int32)
    rows = [{"seq": s.tolist(), "tok": c.tolist()} for s, c in zip(steps, codes, strict=True)]
    status, answer = predict(service, {"instances": rows})
    assert status == 200
    got = np.array([list(p["probabilities"].values()) for p in answer["predictions"]])
    assert np.abs(got - model.predict([steps, codes], verbose=0)).max() <= TOLERANCE
    rows[2]["tok"][5][2] = 7
    status, answer = predict(service, {"instances": rows})
    assert status == 400
    [detail] = answer["error"]["details"]
    assert (detail["record"], detail["field"]) == (2, "tok") and "from 0 to 6" in detail["problem"]


@pytest.mark.slow  # an ONNX conversion, ~1.7 s
def test_an_lstm_over_a_sequence_serves_on_onnx_runtime(
    tmp_path: Path, fresh_bucket: str, service_for: Callable[..., PredictionService]
) -> None:
    """An LSTM without unroll does not convert to LiteRT; publish picks ONNX Runtime,
    which serves the nested records within 1e-5 of Keras."""
    import keras

    keras.utils.set_random_seed(3)
    seq = keras.Input((10, 4), name="seq")
    model = keras.Model(seq, keras.layers.Dense(3, activation="softmax")(keras.layers.LSTM(6)(seq)))
    model.save(tmp_path / "lstm.keras")
    built = build_bundle(tmp_path / "lstm.keras", name="lstm", version="1", labels=["a", "b", "c"])
    assert built.engine == "onnx"
    upload_bundle(built, boto3.client("s3"), fresh_bucket, "m", overwrite=True)
    service = service_for(fresh_bucket, engine="onnx")
    array = batch_of("sequence")
    status, answer = predict(service, {"instances": [{"seq": row.tolist()} for row in array]})
    assert status == 200
    got = np.array([list(p["probabilities"].values()) for p in answer["predictions"]])
    assert np.abs(got - model.predict(array, verbose=0)).max() <= TOLERANCE


def test_a_sample_for_a_nested_input_model_is_one_line_saying_what_to_drop(
    tmp_path: Path, fresh_bucket: str, capfd: pytest.CaptureFixture[str]
) -> None:
    from modelops.publish import main

    keras_model("sequence").save(tmp_path / "seq.keras")
    sample = tmp_path / "train.jsonl"
    sample.write_text("".join(orjson.dumps({"seq": r.tolist()}).decode() + "\n"
                              for r in batch_of("sequence", 3)))  # fmt: skip
    code = main(["--model", str(tmp_path / "seq.keras"), "--name", "seq", "--version", "1",
                 "--bucket", fresh_bucket, "--sample", str(sample)])  # fmt: skip
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "without --sample/--feature-stats (make serve: without SAMPLE=)" in err
