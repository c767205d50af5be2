"""The real packaged zips, run the way Lambda runs them: function in task/ (/var/task),
layer in opt/ (/opt), a fresh `python3.12 -I -S` with only those, the standard library
and boto3 importable; the model in the moto S3 server. Both runtime flavors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from layer_build.lambda_like import LambdaLayout, invoke, unpack
from localdev.apigw_events import proxy_event
from localdev.servers import MotoServer, s3_env
from modelops.examples import holdout_records
from modelops.publish import build_bundle, upload_bundle
from tests.conftest import PublishedModel
from tests.emf_spec import emf_lines, metric_values
from tests.model_kinds import FEATURES, as_records, keras_outputs, sample_rows, tiny_model

pytestmark = pytest.mark.lambda_like


@pytest.fixture(scope="module", params=["lite", "tensorflow"])
def layout(
    request: pytest.FixtureRequest, packaged: Callable[[str], Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[str, LambdaLayout]:  # fmt: skip
    name = request.param
    return name, unpack(packaged(name), tmp_path_factory.mktemp(f"{name}-unpacked"))


def run(layout: LambdaLayout, s3: MotoServer, tmp: Path, events: list[dict[str, Any]]) -> Any:
    env = s3_env(s3.url) | {"MODEL_CACHE_DIR": str(tmp / "cache"),
                            "RUNTIME_UNPACK_DIR": str(tmp)}  # fmt: skip
    return invoke(layout, events, env)


def test_packaged_function_serves_like_keras(
    layout: tuple[str, LambdaLayout], published: PublishedModel, s3_server: MotoServer,
    keras_model: Any, tmp_path: Path,
) -> None:  # fmt: skip
    flavor, lambda_layout = layout
    records, _ = holdout_records(published.model_dir, 200)
    report = run(lambda_layout, s3_server, tmp_path, [
        proxy_event("GET", "/health"),
        proxy_event("POST", "/predict", {"instances": records}),
        proxy_event("GET", "/model"),
        proxy_event("POST", "/predict", [records[0] | {"dti": "high"}]),
        proxy_event("GET", "/health"),
    ])  # fmt: skip
    health, predict, model, bad, health_after = (r["response"] for r in report["results"])
    assert [health["statusCode"], predict["statusCode"], model["statusCode"]] == [200] * 3
    assert json.loads(health["body"])["model_loaded"] is False
    assert json.loads(health_after["body"])["model_loaded"] is True
    info = json.loads(model["body"])
    assert info["version"] == published.version
    assert info["engine"] == ("keras" if flavor == "tensorflow" else "litert")

    from modelops.examples import encode_records

    encoded = encode_records(published.model_dir, records)
    expected = np.asarray(keras_model(np.array([list(r.values()) for r in encoded], np.float32)))
    served = np.array([list(p["probabilities"].values())
                       for p in json.loads(predict["body"])["predictions"]])  # fmt: skip
    assert np.abs(served - expected).max() <= 1e-5

    assert bad["statusCode"] == 400
    assert json.loads(bad["body"])["error"]["details"][0]["field"] == "dti"

    # What the function printed is JSON lines, and its metrics valid EMF: a cold start
    # with the model load, then one line per request (statuses 200 and 400).
    assert report["stdout"] and all(line.startswith("{") for line in report["stdout"])
    metrics = emf_lines(report["stdout"])
    (load,) = [m for m in metrics if "ModelLoadSeconds" in metric_values(m)]
    assert metric_values(load)["ColdStart"] == 1 and load["Version"] == published.version
    requests = [m for m in metrics if "Requests" in metric_values(m)]
    assert [m["status"] for m in requests] == [200, 400]
    assert metric_values(requests[0])["Records"] == 200
    logged = [json.loads(line) for line in report["stdout"] if '"event":"request"' in line]
    assert [line["cold_start"] for line in logged] == [True, False]
    # Isolation: nothing from the development virtualenv was importable.
    leaked = [
        p
        for p in report["sys_path"]
        if ".venv" in p or ("site-packages" in p and not p.startswith(str(lambda_layout.opt)))
    ]
    assert not leaked  # fmt: skip


def test_a_keras_only_bundle_is_served_by_the_tensorflow_flavor_only(
    layout: tuple[str, LambdaLayout], published: PublishedModel, s3_server: MotoServer,
    tmp_path: Path,
) -> None:  # fmt: skip
    import boto3

    from modelops.model_zoo import lookup_model
    from modelops.publish import build_bundle, upload_bundle

    flavor, lambda_layout = layout
    model = lookup_model()
    model.save(tmp_path / "lookup.keras")
    built = build_bundle(tmp_path / "lookup.keras", name="lookup", version="1",
                         feature_names=["x0", "x1", "x2"])  # fmt: skip
    assert built.lite_problem is not None  # Keras-only
    prefix = f"models/lookup-{flavor}"
    upload_bundle(built, boto3.client("s3"), published.bucket, prefix, overwrite=True)
    rows = np.random.default_rng(2).choice([3, 5, 7, 11, 4], (20, 3)).astype(np.int64)
    records = [{f"x{i}": int(v) for i, v in enumerate(row)} for row in rows]
    env = s3_env(s3_server.url) | {
        "MODEL_CACHE_DIR": str(tmp_path / "cache"),
        "RUNTIME_UNPACK_DIR": str(tmp_path),
        "MODEL_PREFIX": prefix,
    }
    report = invoke(lambda_layout, [proxy_event("POST", "/predict", records)], env)  # fmt: skip
    (answer,) = (r["response"] for r in report["results"])
    if flavor == "lite":
        assert answer["statusCode"] == 503
        error = json.loads(answer["body"])["error"]
        assert "needs the tensorflow runtime flavor (MODEL_ENGINE=keras" in error["message"]
        return
    assert answer["statusCode"] == 200, answer["body"]
    served = np.array([list(p["probabilities"].values())
                       for p in json.loads(answer["body"])["predictions"]])  # fmt: skip
    assert np.abs(served - np.asarray(model(rows))).max() <= 1e-5


KINDS: dict[str, dict[str, Any]] = {
    "binary": {"labels": ["good", "bad"]},
    "regression": {"task": "regression", "outputs": ["loss", "recovery"]},
}


@pytest.fixture(scope="module")
def kinds_bucket(
    s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """A binary and a regression model published to their own prefixes; their Keras files."""
    import boto3

    s3, bucket, paths = boto3.client("s3"), "model-kinds", {}
    s3.create_bucket(Bucket=bucket)
    for kind, options in KINDS.items():
        path = tiny_model(kind, tmp_path_factory.mktemp(kind) / "model.keras")
        built = build_bundle(path, name=kind, version="1", feature_names=FEATURES, **options)
        upload_bundle(built, s3, bucket, f"models/{kind}", overwrite=True)
        paths[kind] = path
    return paths


@pytest.mark.parametrize("kind", KINDS)
def test_packaged_function_serves_each_model_kind_like_keras(
    kind: str, layout: tuple[str, LambdaLayout], kinds_bucket: dict[str, Path],
    s3_server: MotoServer, tmp_path: Path,
) -> None:  # fmt: skip
    _, lambda_layout = layout
    rows = sample_rows(50)
    env = s3_env(s3_server.url) | {
        "MODEL_BUCKET": "model-kinds", "MODEL_PREFIX": f"models/{kind}",
        "MODEL_CACHE_DIR": str(tmp_path / "cache"), "RUNTIME_UNPACK_DIR": str(tmp_path),
    }  # fmt: skip
    report = invoke(lambda_layout, [proxy_event("POST", "/predict", as_records(rows))], env)
    response = report["results"][0]["response"]
    assert response["statusCode"] == 200, response["body"]
    predictions = json.loads(response["body"])["predictions"]
    expected = keras_outputs(kinds_bucket[kind], rows)
    if kind == "binary":
        served = np.array([[p["probabilities"]["good"], p["probabilities"]["bad"]]
                           for p in predictions])  # fmt: skip
        assert np.abs(served - np.hstack([1 - expected, expected])).max() <= 1e-5
    else:
        served = np.array([[p["values"]["loss"], p["values"]["recovery"]] for p in predictions])
        assert (np.abs(served - expected) <= 1e-5 * np.abs(expected).max(axis=0)).all()
