"""Models beyond the demo's shape, published for real and served from moto S3 over HTTP:
several inputs (float + an integer embedding index), an LSTM LiteRT cannot convert
(ONNX Runtime serves it on the lite runtime), a model no lite engine converts (Keras-only
bundle: the lite runtime answers 503 naming the runtime it needs, the Keras engine serves
it), and a custom layer from chalicelib.custom_objects."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from chalicelib.errors import InvalidRecords
from chalicelib.service import PredictionService
from chalicelib.surfaces import rest
from modelops.publish import PublishError, build_bundle, main, upload_bundle
from modelops.signature import integer_bound
from tests.keras_models import custom_layer_model, erfinv_model, lstm_model, two_input_model

PARITY = 1e-5
FEATURES = {"numbers": ["amount", "rate", "term"], "codes": ["region", "product"]}
RUNTIME = "needs the tensorflow runtime flavor (MODEL_ENGINE=keras, stage dev-tensorflow/"


def probabilities(answer: dict[str, Any]) -> np.ndarray:
    return np.array([list(p["probabilities"].values()) for p in answer["predictions"]])


def publish(model: Any, path: Path, bucket: str, **options: Any) -> Any:
    model.save(path)
    built = build_bundle(path, name=path.stem, version="1", **options)
    upload_bundle(built, boto3.client("s3"), bucket, "m")
    return built


def rest_predict(service: PredictionService, records: list[dict[str, Any]]) -> rest.HttpAnswer:
    return rest.predict(lambda: service, lambda: json.dumps(records).encode(), "application/json")


@pytest.fixture
def loan_records() -> list[dict[str, Any]]:
    rng = np.random.default_rng(1)
    return [
        {"rate": float(rng.uniform(0, 0.3)), "amount": float(rng.normal()), "term": 1.0,
         "product": int(rng.integers(0, 10)), "region": int(rng.integers(0, 10))}
        for _ in range(40)
    ]  # fmt: skip


@pytest.mark.parametrize("engine", ["litert", "keras"])
def test_a_two_input_model_is_served_like_keras_by_both_engines(
    engine: str, fresh_bucket: str, service_for: Callable[..., PredictionService],
    tmp_path: Path, loan_records: list[dict[str, Any]],
) -> None:  # fmt: skip
    model = two_input_model()
    built = publish(model, tmp_path / "two.keras", fresh_bucket, labels=["low", "mid", "high"],
                    feature_names=FEATURES)  # fmt: skip
    assert built.lite_problem is None and built.parity_max_difference <= PARITY
    assert built.engine == "litert"
    assert integer_bound(model, "codes") == 10  # the parity sample indexes the Embedding
    service = service_for(fresh_bucket, engine=engine)
    expected = np.asarray(model([
        np.array([[r[f] for f in FEATURES["numbers"]] for r in loan_records], np.float32),
        np.array([[r[f] for f in FEATURES["codes"]] for r in loan_records], np.int32),
    ]))  # fmt: skip
    assert np.abs(probabilities(service.predict(loan_records)) - expected).max() <= PARITY
    inputs = service.model_info()["inputs"]
    assert [(i["name"], i["dtype"], i["features"]) for i in inputs] == [
        ("numbers", "float32", FEATURES["numbers"]), ("codes", "int32", FEATURES["codes"]),
    ]  # fmt: skip


def test_a_fractional_embedding_index_is_refused_naming_record_and_field(
    fresh_bucket: str, service_for: Callable[..., PredictionService], tmp_path: Path,
    loan_records: list[dict[str, Any]],
) -> None:  # fmt: skip
    publish(two_input_model(), tmp_path / "two.keras", fresh_bucket, feature_names=FEATURES)
    loan_records[3] = loan_records[3] | {"region": 2.5}
    answer = rest_predict(service_for(fresh_bucket), loan_records)
    assert answer.status == 400
    error = json.loads(answer.body)["error"]
    assert [(d["record"], d["field"]) for d in error["details"]] == [(3, "region")]
    assert "2.5" not in answer.body
    with pytest.raises(InvalidRecords):  # the same through the core
        service_for(fresh_bucket, engine="keras").predict(loan_records)


def test_features_must_name_each_input_of_a_multi_input_model(tmp_path: Path) -> None:
    path = tmp_path / "two.keras"
    two_input_model().save(path)
    with pytest.raises(PublishError, match=r"the model has 2 inputs \(numbers, codes\)"):
        build_bundle(path, name="two", version="1", feature_names=["a", "b", "c", "d", "e"])
    with pytest.raises(PublishError, match=r"input 'codes' takes 2 features but 3"):
        build_bundle(path, name="two", version="1",
                     feature_names=FEATURES | {"codes": ["a", "b", "c"]})  # fmt: skip


@pytest.mark.slow  # an ONNX conversion, ~1.5 s
def test_an_lstm_litert_cannot_convert_is_served_by_onnx_runtime_on_the_lite_runtime(
    fresh_bucket: str, service_for: Callable[..., PredictionService], tmp_path: Path,
) -> None:  # fmt: skip
    model = lstm_model()
    built = publish(model, tmp_path / "lstm.keras", fresh_bucket, labels=["no", "yes"])
    assert built.engine == "onnx" and built.lite_problem is None
    assert "LiteRT cannot convert this model: it needs TensorList ops" in built.passed_over[0]
    assert sorted(built.files) == ["model.keras", "model.onnx"]
    assert built.manifest.public_json()["engines"] == ["onnx", "keras"]
    rows = np.random.default_rng(2).standard_normal((30, 6)).astype(np.float32)
    records = [{f"x{i}": float(v) for i, v in enumerate(row)} for row in rows]
    for engine in ("litert", "onnx", "keras"):  # the lite runtime's preference, forced, Keras
        service = service_for(fresh_bucket, engine=engine)
        served = service.predict(records)
        assert np.abs(probabilities(served) - np.asarray(model(rows))).max() <= PARITY
        assert service.model_info()["engine"] == ("keras" if engine == "keras" else "onnx")


def test_a_model_no_lite_engine_converts_is_published_keras_only(
    fresh_bucket: str, service_for: Callable[..., PredictionService], tmp_path: Path,
) -> None:  # fmt: skip
    model = erfinv_model()
    built = publish(model, tmp_path / "erfinv.keras", fresh_bucket, labels=["no", "yes"])
    assert built.engine == "keras" and built.lite_problem is not None
    assert "LiteRT cannot convert this model: ops LiteRT's builtins lack: Erfinv" in (
        built.lite_problem
    )
    assert "ONNX Runtime cannot convert this model: ops ONNX has no equivalent for: Erfinv" in (
        built.lite_problem
    )
    assert sorted(built.files) == ["model.keras"]
    assert built.manifest.public_json()["engines"] == ["keras"]
    rows = np.random.default_rng(2).standard_normal((30, 6)).astype(np.float32)
    records = [{f"x{i}": float(v) for i, v in enumerate(row)} for row in rows]

    lite = rest_predict(service_for(fresh_bucket, engine="litert"), records)
    assert lite.status == 503
    error = json.loads(lite.body)["error"]
    assert error["code"] == "model_unavailable" and RUNTIME in error["message"]
    assert not any((tmp_path / "cache").glob("*model*"))  # nothing big was downloaded

    served = service_for(fresh_bucket, engine="keras").predict(records)
    assert np.abs(probabilities(served) - np.asarray(model(rows))).max() <= PARITY


def test_require_lite_refuses_a_keras_only_bundle(tmp_path: Path) -> None:
    erfinv_model().save(tmp_path / "erfinv.keras")
    with pytest.raises(PublishError, match=r"lack: Erfinv.*; --require-lite refuses"):
        build_bundle(tmp_path / "erfinv.keras", name="e", version="1", require_lite=True)


def test_a_forced_engine_that_cannot_serve_the_model_is_refused(tmp_path: Path) -> None:
    lstm_model().save(tmp_path / "lstm.keras")
    with pytest.raises(PublishError, match=r"TensorList ops.*; --engine litert refuses"):
        build_bundle(tmp_path / "lstm.keras", name="lstm", version="1", engine="litert")
    keras_only = build_bundle(tmp_path / "lstm.keras", name="lstm", version="1", engine="keras")
    assert sorted(keras_only.files) == ["model.keras"]


def test_the_console_says_the_bundle_is_keras_only_and_what_to_deploy(
    fresh_bucket: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    erfinv_model().save(tmp_path / "erfinv.keras")
    code = main(["--model", str(tmp_path / "erfinv.keras"), "--name", "e", "--version", "1",
                 "--bucket", fresh_bucket, "--prefix", "m"])  # fmt: skip
    out, err = capfd.readouterr()
    assert code == 0
    assert "error" not in err  # the converters' own chatter is kept off the console
    assert "==> Keras-only bundle: LiteRT cannot convert this model: ops LiteRT's" in out
    assert "Serve it with the tensorflow runtime flavor (MODEL_ENGINE=keras" in out


def test_an_unregistered_custom_layer_is_one_line_saying_how_to_register_it(
    fresh_bucket: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import keras

    class Unregistered(keras.layers.Layer):  # saved, but unknown to a fresh load
        def call(self, inputs: Any) -> Any:
            return inputs * 2.0

    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, "softmax")(Unregistered()(inputs)))
    model.save(tmp_path / "u.keras")
    code = main(["--model", str(tmp_path / "u.keras"), "--name", "u", "--version", "1",
                 "--bucket", fresh_bucket, "--prefix", "m"])  # fmt: skip
    _, err = capfd.readouterr()
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error: ") and "Unregistered" in line
    assert "chalicelib/custom_objects.py" in line and "register_keras_serializable" in line


@pytest.mark.parametrize("engine", ["keras", "litert"])
def test_a_custom_layer_is_published_and_served(
    engine: str, fresh_bucket: str, service_for: Callable[..., PredictionService], tmp_path: Path,
) -> None:  # fmt: skip
    model = custom_layer_model()
    built = publish(model, tmp_path / "custom.keras", fresh_bucket)
    assert built.engine == "litert"  # ScaleShift's ops are LiteRT builtins
    rows = np.random.default_rng(6).standard_normal((20, 4)).astype(np.float32)
    records = [{f"x{i}": float(v) for i, v in enumerate(row)} for row in rows]
    served = service_for(fresh_bucket, engine=engine).predict(records)
    assert np.abs(probabilities(served) - np.asarray(model(rows))).max() <= PARITY


@pytest.mark.parametrize(
    ("converter_result", "problem"),
    [
        (b"not a flatbuffer", "LiteRT cannot run its conversion: "),
        (RuntimeError("... ERROR_NEEDS_CUSTOM_OPS ..."), "it needs custom ops, which LiteRT"),
        (
            ValueError("first line\nsecond"),
            "LiteRT cannot convert this model: ValueError: first line",
        ),
    ],
)
def test_every_litert_failure_passes_over_to_onnx_runtime_with_a_one_line_reason(
    converter_result: bytes | Exception, problem: str, tmp_path: Path
) -> None:
    def converter(_: Path) -> bytes:
        if isinstance(converter_result, Exception):
            raise converter_result
        return converter_result

    custom_layer_model().save(tmp_path / "m.keras")
    built = build_bundle(tmp_path / "m.keras", name="m", version="1",
                         converters={"litert": converter})  # fmt: skip
    (reason,) = built.passed_over
    assert problem in reason and "\n" not in reason
    assert built.engine == "onnx" and sorted(built.files) == ["model.keras", "model.onnx"]
    assert (built.manifest.metrics or {})["engines_passed_over"] == [reason]


@pytest.mark.slow  # an ONNX conversion, ~2 s
def test_a_gru_without_unroll_over_a_sequence_publishes_on_onnx_runtime(tmp_path: Path) -> None:
    """LiteRT cannot convert a GRU without unroll (TensorList ops); ONNX Runtime can, so
    the sequence model gets the lite runtime still, its record shape in the manifest."""
    import keras

    inputs = keras.Input((10, 4), name="seq")
    model = keras.Model(inputs, keras.layers.Dense(2, "softmax")(keras.layers.GRU(3)(inputs)))
    model.save(tmp_path / "seq.keras")
    built = build_bundle(tmp_path / "seq.keras", name="seq", version="1")
    assert built.engine == "onnx" and built.lite_problem is None
    assert built.manifest.inputs[0].shape == (10, 4)
    assert built.parity_max_difference is not None and built.parity_max_difference <= 1e-5
