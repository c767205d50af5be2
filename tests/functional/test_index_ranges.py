"""Inputs that would make the engine fail, or get a confident answer for an absurd
value, are refused before it: a model with an `Embedding(input_dim=12)` published for
real (moto S3), served by both engines. The index range is found in the model at
publish and recorded; index 12 and -1 are a 400 naming record and field on /predict,
V2 and the batch path. An engine failure that still slips through (a manifest that
records no range) is a 422 `engine_refused`, never a 500, for each engine. With
`--sample`, encoded values far outside the training sample are refused; without one
the publisher and GET /model say the range check is off."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pytest

from chalicelib.core import Records, score_each
from chalicelib.service import PredictionService
from chalicelib.surfaces import rest, v2
from modelops.examples import encode_records, holdout_records
from modelops.publish import BuiltBundle, build_bundle, main, upload_bundle
from tests.conftest import PublishedModel

NUMBERS = ["numbers_0", "numbers_1", "numbers_2"]
CODES = ["codes_0", "codes_1"]


def embedding_model() -> Any:
    """A float input and two int32 indexes into an Embedding(12, 4)."""
    import keras

    keras.utils.set_random_seed(7)
    numbers = keras.Input((3,), name="numbers")
    codes = keras.Input((2,), name="codes", dtype="int32")
    embedded = keras.layers.Flatten()(keras.layers.Embedding(12, 4)(codes))
    hidden = keras.layers.Dense(8, activation="relu")(
        keras.layers.Concatenate()([numbers, embedded])
    )
    return keras.Model([numbers, codes], keras.layers.Dense(3, activation="softmax")(hidden))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("embedding") / "embedding.keras"
    embedding_model().save(path)
    return path


@pytest.fixture(scope="module")
def built(model_file: Path) -> BuiltBundle:
    return build_bundle(model_file, name="embedding", version="1", labels=["a", "b", "c"])


def records(count: int = 4) -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    return [
        dict(zip(NUMBERS, map(float, rng.normal(size=3)), strict=True))
        | {"codes_0": int(rng.integers(0, 12)), "codes_1": int(rng.integers(0, 12))}
        for _ in range(count)
    ]


def served(bundle: BuiltBundle, bucket: str, service_for: Callable[..., PredictionService],
           engine: str = "litert") -> PredictionService:  # fmt: skip
    upload_bundle(bundle, boto3.client("s3"), bucket, "m", overwrite=True)
    return service_for(bucket, engine=engine)


def predict(service: PredictionService, body: list[dict[str, Any]]) -> tuple[int, Any]:
    answer = rest.predict(lambda: service, lambda: json.dumps(body).encode(), "application/json")
    return answer.status, json.loads(answer.body)


def infer(service: PredictionService, body: list[dict[str, Any]]) -> tuple[int, Any]:
    tensors = [
        {"name": name, "datatype": datatype, "shape": [len(body), len(fields)],
         "data": [[record[f] for f in fields] for record in body]}
        for name, datatype, fields in (("numbers", "FP32", NUMBERS), ("codes", "INT32", CODES))
    ]  # fmt: skip
    request = orjson.dumps({"inputs": tensors})
    answer = v2.infer(lambda: service, "embedding", None, lambda: request, {})
    return answer.status, orjson.loads(answer.body)


def test_publish_records_the_embeddings_index_range(built: BuiltBundle) -> None:
    codes = next(i for i in built.manifest.inputs if i.name == "codes")
    assert codes.index_range == (0, 11)
    public = built.manifest.public_json()
    assert public["range_checks"] == {"encoded": False, "index_ranges": {"codes": [0, 11]}}
    assert {"name": "codes", "dtype": "int32", "features": CODES, "range": [0, 11]} in public[
        "inputs"
    ]


@pytest.mark.parametrize("index", [12, -1])
@pytest.mark.parametrize("surface", ["predict", "v2", "batch"])
def test_an_index_outside_the_embedding_is_a_400_naming_record_and_field(
    built: BuiltBundle, fresh_bucket: str, service_for: Callable[..., PredictionService],
    surface: str, index: int,
) -> None:  # fmt: skip
    service = served(built, fresh_bucket, service_for)
    body = records()
    body[2]["codes_1"] = index
    if surface == "batch":  # the batch worker's call: the other rows are scored
        scores = score_each(service.snapshot(), Records(body))
        assert [i for i, _ in scores.indexed()] == [0, 1, 3]
        [problem] = scores.problems[2]
        assert (problem.record, problem.field) == (2, "codes_1")
        assert "from 0 to 11" in problem.problem
        return
    status, answer = (predict if surface == "predict" else infer)(service, body)
    assert status == 400
    if surface == "predict":
        details = answer["error"]["details"]
        assert [(d["record"], d["field"]) for d in details] == [(2, "codes_1")]
        assert "from 0 to 11" in details[0]["problem"]
    else:
        assert "row 2, field codes_1: must be a whole number from 0 to 11" in answer["error"]
    assert str(index) not in json.dumps(answer).replace("from 0 to 11", "")


@pytest.mark.parametrize("engine", ["litert", "keras"])
def test_an_engine_failure_on_inputs_is_a_422_never_a_500(
    built: BuiltBundle, fresh_bucket: str, service_for: Callable[..., PredictionService],
    engine: str,
) -> None:  # fmt: skip
    """A manifest without the range (as published before it was recorded): index 12
    reaches the engine, which fails; the client gets engine_refused."""
    inputs = tuple(replace(i, index_range=None) for i in built.manifest.inputs)
    unguarded = replace(built, manifest=replace(built.manifest, inputs=inputs))
    service = served(unguarded, fresh_bucket, service_for, engine)
    assert predict(service, records())[0] == 200
    body = records()
    body[1]["codes_0"] = 12
    status, answer = predict(service, body)
    if engine == "litert" and status == 200:
        pytest.fail("LiteRT scored an index beyond its embedding")
    assert (status, answer["error"]["code"]) == (422, "engine_refused")
    status, answer = infer(service, body)
    assert status == 422 and "engine refused" in answer["error"]
    assert "12" not in json.dumps(answer)
    # The batch worker's call: only the refused row is lost, the chunk's others score.
    scores = score_each(service.snapshot(), Records(body))
    if engine == "litert" and not scores.problems:
        pytest.fail("LiteRT scored an index beyond its embedding")
    assert [i for i, _ in scores.indexed()] == [0, 2, 3]
    [problem] = scores.problems[1]
    assert (problem.record, problem.field) == (1, None) and "engine" in problem.problem
    expected = score_each(service.snapshot(), Records([body[0], body[2], body[3]]))
    for (_, alone), (_, together) in zip(scores.indexed(), expected.indexed(), strict=True):
        assert alone["label"] == together["label"]
        assert alone["probabilities"] == pytest.approx(together["probabilities"], abs=1e-6)


def write_sample(path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records(200)))
    return path


@pytest.mark.parametrize("sampled", [True, False])
def test_with_a_sample_a_value_far_outside_it_is_refused(
    model_file: Path, fresh_bucket: str, service_for: Callable[..., PredictionService],
    tmp_path: Path, capfd: pytest.CaptureFixture[str], sampled: bool,
) -> None:  # fmt: skip
    sample = ["--sample", str(write_sample(tmp_path / "train.jsonl"))] if sampled else []
    code = main(["--model", str(model_file), "--name", "embedding", "--version", "1",
                 "--labels", "a,b,c", "--bucket", fresh_bucket, "--prefix", "m",
                 *sample])  # fmt: skip
    out = capfd.readouterr().out
    assert code == 0
    assert "index range of input 'codes': 0 to 11" in out
    service = service_for(fresh_bucket)
    body = records()
    body[1]["numbers_0"] = 1e9
    status, answer = predict(service, body)
    checks = service.model_info()["range_checks"]
    if sampled:
        assert "range checks: on for encoded records (the --sample's statistics)" in out
        assert checks["encoded"] is True
        assert (status, answer["error"]["code"]) == (422, "unscorable_records")
        assert [(d["record"], d["field"]) for d in answer["error"]["details"]] == [(1, "numbers_0")]
        assert predict(service, records())[0] == 200
    else:
        assert "range checks: OFF for encoded records (no --sample given)" in out
        assert checks["encoded"] is False
        assert status == 200  # what "off" means, said plainly above


def test_a_sample_that_does_not_fit_the_model_is_one_error_line(
    model_file: Path, fresh_bucket: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    bad = records(3)
    bad[2]["codes_0"] = "x"
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in bad))
    code = main(["--model", str(model_file), "--name", "embedding", "--version", "1",
                 "--bucket", fresh_bucket, "--prefix", "m", "--sample", str(path)])  # fmt: skip
    err = capfd.readouterr().err
    assert code == 2
    assert "error: --sample: the records do not fit the model: row 2, field codes_0" in err


def test_a_csv_sample_of_raw_training_records_turns_the_encoded_check_on(
    published: PublishedModel, fresh_bucket: str,
    service_for: Callable[..., PredictionService], capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The demo model with its holdout CSV (raw fields and the grade label) as the sample:
    an encoded one-hot column at 3.4e38, a 200 with a confident class without statistics,
    is refused."""
    model_dir = published.model_dir
    code = main(["--model", str(model_dir / "model.keras"), "--name", "loan-grade",
                 "--version", "1", "--bucket", fresh_bucket, "--prefix", "m",
                 "--labels", str(model_dir / "labels.json"),
                 "--preprocessing", str(model_dir / "preprocessing.json"),
                 "--sample", str(model_dir / "holdout.csv")])  # fmt: skip
    assert code == 0, capfd.readouterr().err
    service = service_for(fresh_bucket)
    records, _ = holdout_records(model_dir, 3)
    encoded = encode_records(model_dir, records)
    one_hot = service.manifest().preprocessing.categorical[0].categories[0]  # type: ignore[union-attr]
    encoded[1][one_hot] = 3.4e38
    status, answer = predict(service, encoded)
    assert (status, answer["error"]["code"]) == (422, "unscorable_records")
    assert [(d["record"], d["field"]) for d in answer["error"]["details"]] == [(1, one_hot)]
    assert predict(service, encode_records(model_dir, records))[0] == 200
    assert service.model_info()["range_checks"] == {"encoded": True, "raw": True}
