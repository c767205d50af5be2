"""Every model kind of modelops.model_zoo published with the publisher's engine choice, and
again with ONNX Runtime forced, then served by the packaged lite zip run Lambda-like: each
answer within 1e-5 of Keras, each from the engine the publisher chose. A model no lite
engine converts is Keras-only, and the lite runtime says which runtime it needs."""

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
from modelops.model_zoo import ZOO, keras_outputs, lookup_model, served_outputs
from modelops.publish import build_bundle, upload_bundle

pytestmark = pytest.mark.lambda_like

BUCKET = "model-zoo"
PARITY = 1e-5
#: What the publisher picks when free to (LiteRT first; ONNX Runtime where LiteRT fails).
EXPECTED_ENGINE = {"lstm": "onnx", "bilstm": "onnx", "masked-gru": "onnx"}


@pytest.fixture(scope="module")
def lite(packaged: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> LambdaLayout:
    return unpack(packaged("lite"), tmp_path_factory.mktemp("lite-unpacked"))


@pytest.fixture(scope="module")
def zoo(s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each zoo model published twice (the publisher's choice; ONNX Runtime forced) under
    models/<name>-<auto|onnx>; the Keras models by name."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    models = {}
    for name, entry in ZOO.items():
        model = entry.build()
        path = tmp_path_factory.mktemp(name) / "model.keras"
        model.save(path)
        for choice, engine in (("auto", None), ("onnx", "onnx")):
            built = build_bundle(path, name=name, version="1", feature_names=entry.features,
                                 engine=engine)  # fmt: skip
            assert built.engine == (engine or EXPECTED_ENGINE.get(name, "litert")), name
            upload_bundle(built, s3, BUCKET, f"models/{name}-{choice}", overwrite=True)
        models[name] = model
    return models


def serve(layout: LambdaLayout, s3: MotoServer, tmp: Path, prefix: str, records: Any) -> Any:
    env = s3_env(s3.url) | {"MODEL_BUCKET": BUCKET, "MODEL_PREFIX": prefix,
                            "MODEL_CACHE_DIR": str(tmp / "cache")}  # fmt: skip
    report = invoke(layout, [proxy_event("POST", "/predict", records),
                             proxy_event("GET", "/model")], env)  # fmt: skip
    return [r["response"] for r in report["results"]]


@pytest.mark.parametrize("choice", ["auto", "onnx"])
@pytest.mark.parametrize("name", list(ZOO))
def test_each_model_kind_is_served_by_the_lite_zip_like_keras(
    name: str, choice: str, lite: LambdaLayout, zoo: dict[str, Any], s3_server: MotoServer,
    tmp_path: Path,
) -> None:  # fmt: skip
    entry = ZOO[name]
    rows = entry.rows(64)
    predict, model = serve(lite, s3_server, tmp_path, f"models/{name}-{choice}",
                           entry.records(rows))  # fmt: skip
    assert predict["statusCode"] == 200, predict["body"]
    served = served_outputs(zoo[name], json.loads(predict["body"])["predictions"])
    expected = keras_outputs(zoo[name], rows)
    assert np.abs(served - expected).max() <= PARITY
    engine = "onnx" if choice == "onnx" else EXPECTED_ENGINE.get(name, "litert")
    assert json.loads(model["body"])["engine"] == engine


def test_a_model_no_lite_engine_converts_gets_a_503_naming_the_runtime(
    lite: LambdaLayout, s3_server: MotoServer, tmp_path: Path
) -> None:
    s3 = boto3.client("s3")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    lookup_model().save(tmp_path / "lookup.keras")
    built = build_bundle(tmp_path / "lookup.keras", name="lookup", version="1",
                         feature_names=["a", "b", "c"])  # fmt: skip
    assert built.engine == "keras" and built.lite_problem is not None
    assert "LookupTableFindV2" in built.lite_problem
    upload_bundle(built, s3, BUCKET, "models/lookup", overwrite=True)
    (predict, _) = serve(lite, s3_server, tmp_path, "models/lookup", [{"a": 3, "b": 5, "c": 7}])
    assert predict["statusCode"] == 503
    assert "needs the tensorflow runtime flavor" in json.loads(predict["body"])["error"]["message"]
