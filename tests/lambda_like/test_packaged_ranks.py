"""Sequence inputs and several outputs served by the packaged lite zip run Lambda-like:
a Conv1D over a real [rows, 10, 4] input (LiteRT), an LSTM over one (ONNX Runtime, which
LiteRT cannot convert) and a two-headed model (softmax 3 + sigmoid), each published with
the publisher's engine choice and answered within 1e-5 of Keras."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest

from layer_build.lambda_like import LambdaLayout, invoke, unpack
from localdev.apigw_events import proxy_event
from localdev.servers import MotoServer, s3_env
from modelops.publish import build_bundle, upload_bundle

pytestmark = pytest.mark.lambda_like

BUCKET = "model-ranks"
PARITY = 1e-5


def conv1d() -> Any:
    import keras

    keras.utils.set_random_seed(31)
    seq = keras.Input((10, 4), name="seq")
    hidden = keras.layers.GlobalAveragePooling1D()(
        keras.layers.Conv1D(6, 3, activation="relu")(seq)
    )
    return keras.Model(seq, keras.layers.Dense(3, activation="softmax")(hidden))


def lstm() -> Any:
    import keras

    keras.utils.set_random_seed(32)
    seq = keras.Input((10, 4), name="seq")
    return keras.Model(seq, keras.layers.Dense(3, activation="softmax")(keras.layers.LSTM(6)(seq)))


def two_heads() -> Any:
    import keras

    keras.utils.set_random_seed(33)
    given = keras.Input((10, 4), name="seq")
    hidden = keras.layers.Flatten()(given)
    grade = keras.layers.Dense(3, activation="softmax", name="grade")(hidden)
    default = keras.layers.Dense(1, activation="sigmoid", name="default")(hidden)
    return keras.Model(given, [grade, default])


MODELS = {"conv1d": (conv1d, "litert"), "lstm": (lstm, "onnx"), "heads": (two_heads, "litert")}


@pytest.fixture(scope="module")
def lite(packaged: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> LambdaLayout:
    return unpack(packaged("lite"), tmp_path_factory.mktemp("lite-unpacked"))


@pytest.mark.parametrize("name", list(MODELS))
def test_the_lite_zip_serves_sequences_and_heads_like_keras(
    name: str, lite: LambdaLayout, s3_server: MotoServer, tmp_path: Path
) -> None:
    build, engine = MODELS[name]
    model = build()
    model.save(tmp_path / "model.keras")
    built = build_bundle(tmp_path / "model.keras", name=name, version="1")
    assert built.engine == engine
    s3 = boto3.client("s3")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    upload_bundle(built, s3, BUCKET, f"models/{name}", overwrite=True)
    rows = np.random.default_rng(4).normal(size=(16, 10, 4)).astype(np.float32)
    env = s3_env(s3_server.url) | {"MODEL_BUCKET": BUCKET, "MODEL_PREFIX": f"models/{name}",
                                   "MODEL_CACHE_DIR": str(tmp_path / "cache")}  # fmt: skip
    records = [{"seq": row.tolist()} for row in rows]
    report = invoke(lite, [proxy_event("POST", "/predict", records)], env)
    (predict,) = [r["response"] for r in report["results"]]
    assert predict["statusCode"] == 200, predict["body"]
    predictions = json.loads(predict["body"])["predictions"]
    expected = model.predict(rows, verbose=0)
    if name == "heads":
        grade, default = expected
        served = np.array([list(p["grade"]["probabilities"].values()) for p in predictions])
        served_default = np.array([p["default"]["probabilities"]["1"] for p in predictions])
        assert np.abs(served_default - default[:, 0]).max() <= PARITY
        expected = grade
    else:
        served = np.array([list(p["probabilities"].values()) for p in predictions])
    assert np.abs(served - expected).max() <= PARITY
